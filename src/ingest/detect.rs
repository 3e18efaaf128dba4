//! Which sign-in format a file holds, told by its content whatever its name, and the dispatch to
//! that format's reader.
//!
//! In: a file's decoded text. Out: the `Format` and one `Parsed` per record. JSON text (Graph
//! records, Graph pages, NDJSON, diagnostic-settings envelopes, Log Analytics rows and query API
//! results) is split and parsed in parallel by `ingest::read_json_text`, which asks
//! `log_analytics` about each record; CSV (the portal's header, or a Log Analytics query's) is
//! read here. Anything else is `NotSignIns`, saying what the file looked like.

use std::path::Path;

use super::{graph, log_analytics, portal_csv, table, IngestError};
use crate::signin::SignIn;
use crate::source;

/// One record after its format's reader: where it was and what it gave.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// 1-based record number (the data row for CSV).
    pub record: usize,
    /// 1-based line the record starts on, when known.
    pub line: Option<usize>,
    pub signin: Result<SignIn, graph::FieldError>,
}

/// The sign-in formats, as told apart by content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Graph `signIn` records, pages, NDJSON or diagnostic-settings envelopes.
    GraphJson,
    /// Log Analytics rows as JSON (a file may mix them with Graph records).
    LogAnalyticsJson,
    LogAnalyticsCsv,
    PortalCsv,
    /// The portal's authentication-details CSV: steps, not sign-ins; passed over with a note.
    PortalAuthDetails,
}

/// What a report must say about a file of this format: what the format could not carry.
pub fn notes(format: Format, path: &Path) -> Vec<String> {
    match format {
        Format::PortalCsv => portal_csv::notes(path),
        Format::PortalAuthDetails => vec![portal_csv::auth_details_note(path)],
        Format::GraphJson | Format::LogAnalyticsJson | Format::LogAnalyticsCsv => Vec::new(),
    }
}

/// Reads a CSV sign-in export (the portal's or a Log Analytics query's), told apart by its
/// header; anything else is `NotSignIns` (JSON text goes to `ingest::read_json_text` instead).
pub fn csv_records(path: &Path, text: &str) -> Result<(Format, Vec<Parsed>), IngestError> {
    let table = table::parse(text);
    if portal_csv::is_auth_details(path, &table.headers) {
        return Ok((Format::PortalAuthDetails, Vec::new()));
    }
    if portal_csv::matches(&table.headers) {
        return Ok((Format::PortalCsv, portal_csv::read(path, table)));
    }
    if log_analytics::matches_csv(&table.headers) {
        return Ok((Format::LogAnalyticsCsv, log_analytics::read_csv(table)));
    }
    let name = path.to_string_lossy().to_ascii_lowercase();
    if [".json", ".ndjson", ".jsonl"]
        .iter()
        .any(|e| name.trim_end_matches(".gz").ends_with(e))
    {
        // Named JSON but not JSON: the parser's message says where it broke.
        source::parse_json_records(path, text)?;
    }
    let first: Vec<&str> = table.headers.iter().take(5).map(String::as_str).collect();
    Err(IngestError::NotSignIns {
        path: path.to_path_buf(),
        looked_like: format!(
            "text whose first line has the fields `{}`\nhint: sign-in CSVs start with the portal's `Date (UTC),Request ID,…` or a Log Analytics `TimeGenerated [UTC],…` header",
            first.join("`, `")
        ),
    })
}
