//! ca-replay: replays historical Entra ID sign-ins against candidate Conditional Access and
//! Identity Protection policies, offline, and reports what enforcement would have done.
//!
//! The pipeline (design.md): `source`/`ingest` read exports → `directory` and `policy` load and
//! compile the tenant → `engine` evaluates (pure) → `replay` drives it in parallel → `report`
//! writes the results.

pub mod checks;
pub mod cli;
pub mod config;
pub mod directory;
pub mod domain;
pub mod engine;
pub mod generate;
pub mod ingest;
pub mod policy;
pub mod privacy;
pub mod replay;
pub mod report;
pub mod signin;
pub mod source;
pub mod tenant;
