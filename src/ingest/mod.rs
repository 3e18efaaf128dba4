//! Sign-in ingest: reads exports into normalized `SignIn`s, counting every record it cannot read.
//!
//! In: files and folders (recursively). Out: sign-ins plus an `IngestReport` (files, records
//! read, skipped with reasons, duplicates). Formats, told apart by content ([`parse_text`]):
//! Graph `signIn` JSON (arrays, Graph pages, NDJSON, diagnostic-settings envelopes), Log Analytics
//! rows as JSON or as the CSV of a query (`log_analytics`), and the portal's CSV download
//! (`portal_csv`).

pub mod graph;
mod lines;
pub mod log_analytics;
pub mod portal_csv;
pub mod table;

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::signin::SignIn;
use crate::source::{self, SourceError};

/// A record that could not be read: where, which field, its value and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based record number (the data row for CSV).
    pub record: usize,
    /// 1-based line the record starts on, where the file's layout tells it (CSV, NDJSON).
    pub line: Option<usize>,
    pub field: String,
    pub value: String,
    pub why: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} record {}", self.file.display(), self.record)?;
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        write!(f, ": `{}` = {}: {}", self.field, self.value, self.why)
    }
}

#[derive(Debug, Clone, Default)]
pub struct IngestReport {
    pub files: Vec<(PathBuf, usize)>,
    pub records: usize,
    pub skipped: Vec<Diagnostic>,
    pub duplicates: usize,
    /// What the inputs could not carry (a portal CSV's missing columns), one line each, for
    /// every report to print.
    pub notes: BTreeSet<String>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct IngestOptions {
    /// The first bad record is fatal.
    pub strict: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("{0}\nhint: drop --strict to skip bad records and count them")]
    Strict(Diagnostic),
    #[error("`{path}` is not a sign-in export: {looked_like}")]
    NotSignIns { path: PathBuf, looked_like: String },
}

/// Reads every sign-in file under the given paths. Duplicate ids across files count once.
pub fn read_signins(
    paths: &[PathBuf],
    options: IngestOptions,
) -> Result<(Vec<SignIn>, IngestReport), IngestError> {
    let mut report = IngestReport::default();
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for root in paths {
        for file in source::files_under(root)? {
            // A file named on the command line is read whatever its name; under a folder,
            // only the extensions exports come with (README.md, notes.txt are not sign-ins).
            if &file != root && !is_export_name(&file) {
                continue;
            }
            let before = out.len();
            read_file(&file, options, &mut out, &mut seen, &mut report)?;
            report.files.push((file, out.len() - before));
        }
    }
    Ok((out, report))
}

fn is_export_name(path: &Path) -> bool {
    let name = path.to_string_lossy().to_ascii_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    [".json", ".ndjson", ".jsonl", ".csv", ".tsv"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// One record after its format's reader: where it was and what it gave.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// 1-based record number (the data row for CSV).
    pub record: usize,
    /// 1-based line the record starts on, when known.
    pub line: Option<usize>,
    pub signin: Result<SignIn, graph::FieldError>,
}

fn read_file(
    path: &Path,
    options: IngestOptions,
    out: &mut Vec<SignIn>,
    seen: &mut HashSet<String>,
    report: &mut IngestReport,
) -> Result<(), IngestError> {
    let text = source::read_text(path)?;
    let (format, parsed) = parse_text(path, &text)?;
    if format == Format::PortalCsv {
        report.notes.extend(portal_csv::notes(path));
    }
    for p in parsed {
        report.records += 1;
        match p.signin {
            Ok(s) => {
                if seen.insert(s.id.clone()) {
                    out.push(s);
                } else {
                    report.duplicates += 1;
                }
            }
            Err(e) => {
                let d = Diagnostic {
                    file: path.to_path_buf(),
                    record: p.record,
                    line: p.line,
                    field: e.field,
                    value: e.value,
                    why: e.why,
                };
                if options.strict {
                    return Err(IngestError::Strict(d));
                }
                report.skipped.push(d);
            }
        }
    }
    Ok(())
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
}

/// The dispatch on the detected format, by content whatever the extension: JSON (Graph records,
/// diagnostic-settings envelopes, Log Analytics rows) or CSV (the portal's header, or a Log
/// Analytics query's). Anything else is `NotSignIns`, saying what the file looked like.
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
