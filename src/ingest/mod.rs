//! Sign-in ingest: reads exports into normalized `SignIn`s, counting every record it cannot read.
//!
//! In: files and folders (recursively). Out: sign-ins plus an `IngestReport` (files, records
//! read, skipped with reasons, duplicates). Readers: Graph `signIn` JSON (arrays, Graph pages,
//! NDJSON, diagnostic-settings envelopes) and ca-replay's own Parquet / Arrow IPC files
//! (`columnar`, detected by magic bytes); other formats plug in beside them.

pub mod columnar;
pub mod graph;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::signin::SignIn;
use crate::source::{self, SourceError};

/// A record that could not be read: where, which field, its value and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based record number (the line for NDJSON).
    pub record: usize,
    pub field: String,
    pub value: String,
    pub why: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} record {}: `{}` = {}: {}",
            self.file.display(),
            self.record,
            self.field,
            self.value,
            self.why
        )
    }
}

#[derive(Debug, Clone, Default)]
pub struct IngestReport {
    pub files: Vec<(PathBuf, usize)>,
    pub records: usize,
    pub skipped: Vec<Diagnostic>,
    pub duplicates: usize,
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
    #[error(transparent)]
    Columnar(#[from] columnar::ColumnarError),
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
            // Parquet and Arrow IPC, by magic bytes (ca-replay's own schema).
            if let Some(n) = columnar::ingest(&file, options, &mut out, &mut seen, &mut report)? {
                report.files.push((file, n));
                continue;
            }
            let name = file.to_string_lossy().to_ascii_lowercase();
            if !(name.ends_with(".json")
                || name.ends_with(".json.gz")
                || name.ends_with(".ndjson")
                || name.ends_with(".ndjson.gz")
                || name.ends_with(".jsonl"))
            {
                continue;
            }
            let before = out.len();
            read_file(&file, options, &mut out, &mut seen, &mut report)?;
            report.files.push((file, out.len() - before));
        }
    }
    Ok((out, report))
}

fn read_file(
    path: &Path,
    options: IngestOptions,
    out: &mut Vec<SignIn>,
    seen: &mut HashSet<String>,
    report: &mut IngestReport,
) -> Result<(), IngestError> {
    let text = source::read_text(path)?;
    let mut records = source::parse_json_records(path, &text)?;
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
    let looks_like = |v: &Value| {
        v.get("createdDateTime").is_some()
            || v.get("properties").is_some()
            || v.get("userPrincipalName").is_some()
            || v.get("appliedConditionalAccessPolicies").is_some()
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
    for r in records {
        report.records += 1;
        let (body, category) = match r.value.get("properties") {
            Some(p @ Value::Object(_)) => (p, r.value.get("category").and_then(Value::as_str)),
            _ => (&r.value, None),
        };
        match graph::parse_signin(body, category) {
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
                    record: r.index,
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
