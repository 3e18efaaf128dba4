//! Integration tests in one binary (build.md: one test binary links once): property tests of
//! the engine's invariants, the device filter round-trip, and the real policy sets of
//! `../shared/fixtures/policies/`, sign-in ingest across every format (Parquet and Arrow IPC too),
//! and `summary.json` against its documented schema (`docs/summary.schema.json`).

#[path = "../common/mod.rs"]
mod common;

mod breakglass;
mod checks;
mod columnar;
mod device_filter;
mod diff;
mod examples;
mod explain;
mod fixtures;
mod formats;
mod gates;
mod ingest;
mod ingest_json;
mod privacy;
mod properties;
mod reports;
mod schema;
