//! Sign-in ingest: reads exports into normalized `SignIn`s, counting every record it cannot read.
//!
//! In: files and folders (recursively). Out: sign-ins plus an `IngestReport` (files, records
//! read, skipped with reasons, duplicates). This reader is Graph `signIn` JSON (arrays,
//! Graph pages, NDJSON, diagnostic-settings envelopes); other formats plug in beside it.

pub mod graph;
mod split;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
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
    /// Stop when more than this many records are bad.
    pub max_bad_rows: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("{0}\nhint: drop --strict to skip bad records and count them")]
    Strict(Diagnostic),
    #[error("more than {limit} bad records ({count} so far; the first: {first})\nhint: raise --max-bad-rows, or fix the export")]
    TooManyBad {
        limit: usize,
        count: usize,
        first: Diagnostic,
    },
    #[error("`{path}` is not a sign-in export: {looked_like}")]
    NotSignIns { path: PathBuf, looked_like: String },
}

/// Reads every sign-in file under the given paths. Files are read and parsed in parallel; the
/// result keeps file order, and duplicate ids across files count once (the first wins).
pub fn read_signins(
    paths: &[PathBuf],
    options: IngestOptions,
) -> Result<(Vec<SignIn>, IngestReport), IngestError> {
    let mut files = Vec::new();
    for root in paths {
        for file in source::files_under(root)? {
            let name = file.to_string_lossy().to_ascii_lowercase();
            if name.ends_with(".json")
                || name.ends_with(".json.gz")
                || name.ends_with(".ndjson")
                || name.ends_with(".ndjson.gz")
                || name.ends_with(".jsonl")
                || name.ends_with(".jsonl.gz")
            {
                files.push(file);
            }
        }
    }
    let read: Vec<Result<FileRead, IngestError>> = files.par_iter().map(|f| read_file(f)).collect();

    let mut report = IngestReport::default();
    let mut out = Vec::with_capacity(read.iter().flatten().map(|r| r.signins.len()).sum());
    let mut seen = HashSet::with_capacity(out.capacity());
    for (file, result) in files.into_iter().zip(read) {
        let r = result?;
        report.records += r.records;
        if let (true, Some(d)) = (options.strict, r.skipped.first()) {
            return Err(IngestError::Strict(d.clone()));
        }
        report.skipped.extend(r.skipped);
        if let Some(limit) = options.max_bad_rows {
            if report.skipped.len() > limit {
                return Err(IngestError::TooManyBad {
                    limit,
                    count: report.skipped.len(),
                    first: report.skipped[0].clone(),
                });
            }
        }
        let before = out.len();
        for s in r.signins {
            if seen.insert(s.id.clone()) {
                out.push(s);
            } else {
                report.duplicates += 1;
            }
        }
        report.files.push((file, out.len() - before));
    }
    Ok((out, report))
}

/// What one file gave. Every record is either a sign-in or a diagnostic:
/// `records == signins.len() + skipped.len()`.
#[derive(Debug)]
pub struct FileRead {
    pub records: usize,
    pub signins: Vec<SignIn>,
    pub skipped: Vec<Diagnostic>,
}

fn read_file(path: &Path) -> Result<FileRead, IngestError> {
    let text = source::read_text(path)?;
    read_json_text(path, &text)
}

/// Reads sign-ins from JSON or NDJSON text already decoded; `path` names it in diagnostics.
pub fn read_json_text(path: &Path, text: &str) -> Result<FileRead, IngestError> {
    let diagnostic = |record: usize, field: &str, value: String, why: String| Diagnostic {
        file: path.to_path_buf(),
        record,
        field: field.to_owned(),
        value,
        why,
    };
    let doc = split::records(text);
    let mut skipped = Vec::new();
    if doc.records.is_empty() {
        match doc.broken {
            None if doc.empty => skipped.push(diagnostic(
                0,
                "(file)",
                String::new(),
                "the file is empty: no sign-ins in it".into(),
            )),
            None => {}
            Some(b) => {
                return Err(IngestError::Source(SourceError::Json {
                    path: path.to_path_buf(),
                    message: format!("line {}: {}", b.line, b.why),
                    hint: String::new(),
                }))
            }
        }
        return Ok(FileRead {
            // An empty file counts as one unreadable record, so the totals still add up.
            records: skipped.len(),
            signins: Vec::new(),
            skipped,
        });
    }
    let parsed: Vec<Result<SignIn, graph::FieldError>> = doc
        .records
        .par_iter()
        .map(|r| graph::parse_signin_text(r.text, None))
        .collect();
    if parsed.iter().all(Result::is_err) {
        if let Some(looked_like) = not_signins(&doc.records) {
            return Err(IngestError::NotSignIns {
                path: path.to_path_buf(),
                looked_like,
            });
        }
    }
    let mut signins = Vec::with_capacity(parsed.len());
    for (r, p) in doc.records.iter().zip(parsed) {
        match p {
            Ok(s) => signins.push(s),
            Err(e) => skipped.push(diagnostic(r.index, &e.field, e.value, e.why)),
        }
    }
    let mut records = doc.records.len();
    if let Some(b) = doc.broken {
        // The file stops being JSON after the records above: count what cannot be read.
        records += 1;
        skipped.push(diagnostic(
            doc.records.len() + 1,
            "(record)",
            b.near,
            format!(
                "line {}: {}; nothing after this point in the file is read (truncated?)",
                b.line, b.why
            ),
        ));
    }
    Ok(FileRead {
        records,
        signins,
        skipped,
    })
}

/// When no record of a file reads as a sign-in: what the file looks like, if it is not a sign-in
/// export at all (`None` when it does look like one and its records are merely bad).
fn not_signins(records: &[split::Rec<'_>]) -> Option<String> {
    let values: Vec<Value> = records
        .iter()
        .take(20)
        .filter_map(|r| serde_json::from_str::<Value>(r.text).ok())
        .map(source::normalize_keys)
        .collect();
    let looks_like = |v: &Value| {
        [
            "createdDateTime",
            "properties",
            "userPrincipalName",
            "appliedConditionalAccessPolicies",
        ]
        .iter()
        .any(|k| v.get(k).is_some())
    };
    if values.iter().any(looks_like) {
        return None;
    }
    Some(match values.first() {
        Some(Value::Object(m)) => format!(
            "records with keys {}",
            m.keys().take(5).cloned().collect::<Vec<_>>().join(", ")
        ),
        Some(other) => format!(
            "records like `{}`",
            other.to_string().chars().take(40).collect::<String>()
        ),
        None => "no JSON records".into(),
    })
}
