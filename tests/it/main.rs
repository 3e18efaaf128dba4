//! Integration tests in one binary (build.md: one test binary links once): property tests of
//! the engine's invariants, the device filter round-trip, and the real policy sets of
//! `../shared/fixtures/policies/`; Parquet and Arrow IPC sign-in files.

#[path = "../common/mod.rs"]
mod common;

mod columnar;
mod device_filter;
mod fixtures;
mod properties;
