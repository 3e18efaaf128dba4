//! Sign-in ingest: reads exports into normalized `SignIn`s, counting every record it cannot read.
//!
//! In: files and folders (recursively). Out: sign-ins plus an `IngestReport` (files, records
//! read, skipped with reasons, duplicates). Formats, told apart by content ([`parse_text`]):
//! Graph `signIn` JSON (arrays, Graph pages, NDJSON, diagnostic-settings envelopes), Log Analytics
//! rows as JSON or as the CSV of a query (`log_analytics`), and the portal's CSV download
//! (`portal_csv`).

pub mod detect;
pub mod graph;
mod lines;
pub mod log_analytics;
pub mod portal_csv;
pub mod table;

pub use detect::{parse_text, Format, Parsed};

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use crate::signin::SignIn;
use crate::source::{self, SourceError};

/// A record that could not be read: where, which field, its value and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based record number (the data row for CSV).
    pub record: usize,
    /// 1-based line the record starts on; `None` only for rows of a Log Analytics query API result.
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

fn read_file(
    path: &Path,
    options: IngestOptions,
    out: &mut Vec<SignIn>,
    seen: &mut HashSet<String>,
    report: &mut IngestReport,
) -> Result<(), IngestError> {
    let text = source::read_text(path)?;
    let (format, parsed) = parse_text(path, &text)?;
    report.notes.extend(detect::notes(format, path));
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
