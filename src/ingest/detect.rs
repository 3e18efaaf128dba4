//! Which sign-in format a file holds, told by its content whatever its name, and the dispatch to
//! that format's reader.
//!
//! In: a file's decoded text. Out: the `Format` and one `Parsed` per record: JSON (Graph records,
//! Graph pages, NDJSON, diagnostic-settings envelopes, Log Analytics rows and query API results)
//! or CSV (the portal's header, or a Log Analytics query's). Anything else is `NotSignIns`,
//! saying what the file looked like.

use std::path::Path;

use serde_json::Value;

use super::{graph, lines, log_analytics, portal_csv, table, IngestError};
use crate::signin::SignIn;
use crate::source::{self, SourceError};

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

/// Detects the format of one file's text and reads its records (see the module docs).
pub fn parse_text(path: &Path, text: &str) -> Result<(Format, Vec<Parsed>), IngestError> {
    let start = text.trim_start_matches('\u{feff}').trim_start();
    if start.is_empty() {
        return Err(SourceError::Empty {
            path: path.to_path_buf(),
        }
        .into());
    }
    if start.starts_with(['[', '{']) {
        return json_records(path, text);
    }
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

fn json_records(path: &Path, text: &str) -> Result<(Format, Vec<Parsed>), IngestError> {
    let mut records = source::parse_json_records(path, text)?;
    // Diagnostic-settings blobs: {"records": [...]}.
    if records.len() == 1 {
        if let Some(Value::Array(inner)) = records[0].value.get("records") {
            records = inner
                .iter()
                .enumerate()
                .map(|(i, v)| source::Record {
                    index: i + 1,
                    value: v.clone(),
                })
                .collect();
        }
    }
    // Log Analytics query API results: {"tables": [{"columns": [...], "rows": [[...]]}]}.
    let mut query_api = false;
    if records.len() == 1 {
        if let Some(rows) = log_analytics::query_result_rows(&records[0].value) {
            records = rows;
            query_api = true;
        }
    }
    let looks_like = |v: &Value| {
        v.get("createdDateTime").is_some()
            || v.get("properties").is_some()
            || v.get("userPrincipalName").is_some()
            || v.get("appliedConditionalAccessPolicies").is_some()
            || log_analytics::looks_like(v)
    };
    if !records.is_empty() && !records.iter().any(|r| looks_like(&r.value)) {
        let keys: Vec<String> = records[0]
            .value
            .as_object()
            .map(|m| m.keys().take(5).cloned().collect())
            .unwrap_or_default();
        return Err(IngestError::NotSignIns {
            path: path.to_path_buf(),
            looked_like: format!("records with keys {}", keys.join(", ")),
        });
    }
    let line_of = lines::json_line_of(text);
    let format = if query_api || records.iter().any(|r| log_analytics::looks_like(&r.value)) {
        Format::LogAnalyticsJson
    } else {
        Format::GraphJson
    };
    let parsed = records
        .into_iter()
        .map(|r| {
            let signin = if query_api || log_analytics::looks_like(&r.value) {
                log_analytics::read_json(r.value)
            } else {
                match r.value.get("properties") {
                    Some(p @ Value::Object(_)) => {
                        graph::parse_signin(p, r.value.get("category").and_then(Value::as_str))
                    }
                    _ => graph::parse_signin(&r.value, None),
                }
            };
            Parsed {
                record: r.index,
                // Query API rows sit inside nested arrays: their lines are not tracked.
                line: if query_api { None } else { line_of(r.index) },
                signin,
            }
        })
        .collect();
    Ok((format, parsed))
}
