//! Sign-in ingest: reads exports into normalized `SignIn`s, counting every record it cannot read.
//!
//! In: files and folders (recursively). Out: sign-ins plus an `IngestReport` (files, records
//! read, skipped with reasons, duplicates, notes). Formats are told apart by content: JSON text
//! (Graph `signIn` records, arrays, Graph pages, NDJSON, diagnostic-settings envelopes, Log
//! Analytics rows and query API results) is split into records and parsed in parallel
//! ([`read_json_text`]); CSV is the portal's download or a Log Analytics query's export
//! (`detect`); ca-replay's own Parquet and Arrow IPC files are told by their magic bytes
//! (`columnar`). Files are read in parallel and merged in order.

mod blocks;
pub mod columnar;
pub mod detect;
pub mod graph;
pub mod log_analytics;
pub mod portal_csv;
mod split;
pub mod table;

pub use detect::{Format, Parsed};

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde_json::Value;

use crate::signin::SignIn;
use crate::source::{self, SourceError};

/// A record that could not be read: where, which field, its value and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based record number (the data row for CSV, the line for NDJSON; 0 for the file itself).
    pub record: usize,
    /// 1-based line the record starts on; `None` where the layout does not say (rows of a Log
    /// Analytics query API result).
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
    /// Sign-ins read but left out by the run's time window (`--from`, `--to`), and the window.
    pub outside_window: usize,
    pub window: (
        Option<chrono::DateTime<chrono::Utc>>,
        Option<chrono::DateTime<chrono::Utc>>,
    ),
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
    Strict(Box<Diagnostic>),
    #[error("more than {limit} bad records ({count} so far; the first: {first})\nhint: raise --max-bad-rows, or fix the export")]
    TooManyBad {
        limit: usize,
        count: usize,
        first: Box<Diagnostic>,
    },
    #[error("`{path}` is not a sign-in export: {looked_like}")]
    NotSignIns { path: PathBuf, looked_like: String },
    #[error(transparent)]
    Columnar(#[from] columnar::ColumnarError),
    /// The consumer of [`stream`] stopped (it could not write what it made of the sign-ins).
    #[error("{0}")]
    Sink(SinkError),
}

/// Reads every sign-in file under the given paths. Files are read and parsed in parallel; the
/// result keeps file order, and duplicate ids across files count once (the first wins).
pub fn read_signins(
    paths: &[PathBuf],
    options: IngestOptions,
) -> Result<(Vec<SignIn>, IngestReport), IngestError> {
    read_files_observed(signin_files(paths)?, options, &|_, _| {})
}

/// The files [`read_signins`] would read under `paths`, each with its size in bytes.
pub fn signin_files(paths: &[PathBuf]) -> Result<Vec<(PathBuf, u64)>, IngestError> {
    let mut files = Vec::new();
    for root in paths {
        for file in source::files_under(root)? {
            // A file named on the command line is read whatever its name; under a folder,
            // only the extensions exports come with (README.md, notes.txt are not sign-ins).
            if &file == root || is_export_name(&file) || columnar::Format::sniff(&file)?.is_some() {
                let bytes = std::fs::metadata(&file).map_or(0, |m| m.len());
                files.push((file, bytes));
            }
        }
    }
    Ok(files)
}

/// Reads the files [`signin_files`] listed, calling `on_file(path, bytes)` as each is read (from
/// any thread), for a progress display.
pub fn read_files_observed(
    files: Vec<(PathBuf, u64)>,
    options: IngestOptions,
    on_file: &(dyn Fn(&Path, u64) + Sync),
) -> Result<(Vec<SignIn>, IngestReport), IngestError> {
    let mut out = Vec::new();
    let report = stream(&files, options, on_file, &mut |batch| {
        out.extend(batch);
        Ok(())
    })?;
    Ok((out, report))
}

/// Why a [`stream`] consumer stopped the reading.
pub type SinkError = Box<dyn std::error::Error + Send + Sync>;

/// Reads the files [`signin_files`] listed and hands their sign-ins to `sink` in batches, in
/// file order (and record order within a file), each sign-in once: a duplicate id counts in the
/// report and is not handed on. Memory stays bounded by a few batches: ca-replay's own
/// columnar files go by row groups, NDJSON files by blocks of lines (`blocks`), other text
/// files a few at a time (each parsed in parallel).
/// `on_file(path, bytes)` is called as each file has been read.
pub fn stream(
    files: &[(PathBuf, u64)],
    options: IngestOptions,
    on_file: &(dyn Fn(&Path, u64) + Sync),
    sink: &mut dyn FnMut(Vec<SignIn>) -> Result<(), SinkError>,
) -> Result<IngestReport, IngestError> {
    let mut st = Streaming {
        options,
        report: IngestReport::default(),
        seen: SeenIds::default(),
        sink,
    };
    let window = rayon::current_num_threads().max(1);
    let mut i = 0;
    while i < files.len() {
        let (file, bytes) = &files[i];
        if columnar::Format::sniff(file)?.is_some() {
            let mut kept = 0;
            columnar::read_parts(file, &mut |part: columnar::Decoded| {
                kept += st.add(FileRead {
                    records: part.rows,
                    signins: part.signins,
                    skipped: part.skipped,
                    notes: Vec::new(),
                })?;
                Ok::<(), IngestError>(())
            })?;
            on_file(file, *bytes);
            st.report.files.push((file.clone(), kept));
            i += 1;
            continue;
        }
        if blocks::is_ndjson(file)? {
            let mut kept = 0;
            blocks::read(file, &mut |part| {
                kept += st.add(part)?;
                Ok(())
            })?;
            on_file(file, *bytes);
            st.report.files.push((file.clone(), kept));
            i += 1;
            continue;
        }
        // A run of other text files, read in parallel a window at a time.
        let mut end = i;
        while end < files.len()
            && end - i < window
            && !is_columnar(&files[end].0)
            && (end == i || !blocks::is_ndjson(&files[end].0)?)
        {
            end += 1;
        }
        let read: Vec<Result<FileRead, IngestError>> = files[i..end]
            .par_iter()
            .map(|(f, bytes)| {
                let r = read_file(f);
                on_file(f, *bytes);
                r
            })
            .collect();
        for ((file, _), r) in files[i..end].iter().zip(read) {
            let kept = st.add(r?)?;
            st.report.files.push((file.clone(), kept));
        }
        i = end;
    }
    Ok(st.report)
}

fn is_columnar(path: &Path) -> bool {
    matches!(columnar::Format::sniff(path), Ok(Some(_)))
}

/// The sign-in ids seen so far: GUIDs as 16 bytes, anything else as text.
#[derive(Default)]
struct SeenIds {
    guids: rustc_hash::FxHashSet<u128>,
    other: HashSet<String>,
}

impl SeenIds {
    /// Whether `id` is new (and now seen).
    fn insert(&mut self, id: &str) -> bool {
        // Ids compare exactly: only the canonical spelling (36 characters, lower case) of a
        // GUID goes to the numeric set, so `AB…` and ` ab…` stay distinct from `ab…`.
        let canonical = id.len() == 36 && !id.bytes().any(|b| b.is_ascii_uppercase());
        match crate::directory::parse_guid(id) {
            Some(g) if canonical => self.guids.insert(g),
            _ => self.other.insert(id.to_owned()),
        }
    }
}

struct Streaming<'a> {
    options: IngestOptions,
    report: IngestReport,
    seen: SeenIds,
    sink: &'a mut dyn FnMut(Vec<SignIn>) -> Result<(), SinkError>,
}

impl Streaming<'_> {
    /// Counts a part of a file, checks the bad-record limits, and hands its new sign-ins on;
    /// returns how many it handed on.
    fn add(&mut self, r: FileRead) -> Result<usize, IngestError> {
        let report = &mut self.report;
        report.records += r.records;
        if let (true, Some(d)) = (self.options.strict, r.skipped.first()) {
            return Err(IngestError::Strict(Box::new(d.clone())));
        }
        report.skipped.extend(r.skipped);
        report.notes.extend(r.notes);
        if let Some(limit) = self.options.max_bad_rows {
            if report.skipped.len() > limit {
                return Err(IngestError::TooManyBad {
                    limit,
                    count: report.skipped.len(),
                    first: Box::new(report.skipped[0].clone()),
                });
            }
        }
        let before = r.signins.len();
        let mut signins = r.signins;
        signins.retain(|s| self.seen.insert(&s.id));
        report.duplicates += before - signins.len();
        let kept = signins.len();
        if kept > 0 {
            (self.sink)(signins).map_err(IngestError::Sink)?;
        }
        Ok(kept)
    }
}

fn is_export_name(path: &Path) -> bool {
    let name = path.to_string_lossy().to_ascii_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    [".json", ".ndjson", ".jsonl", ".csv", ".tsv"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// What one file gave. Every record is either a sign-in or a diagnostic:
/// `records == signins.len() + skipped.len()`.
#[derive(Debug, Default)]
pub struct FileRead {
    pub records: usize,
    pub signins: Vec<SignIn>,
    pub skipped: Vec<Diagnostic>,
    pub notes: Vec<String>,
}

fn read_file(path: &Path) -> Result<FileRead, IngestError> {
    // ca-replay's own Parquet / Arrow IPC, by magic bytes; such a name without them is an error.
    if columnar::Format::sniff(path)?.is_some() {
        let d = columnar::read(path)?;
        return Ok(FileRead {
            records: d.rows,
            signins: d.signins,
            skipped: d.skipped,
            notes: Vec::new(),
        });
    }
    if let Some(f) = columnar::Format::from_extension(path) {
        return Err(columnar::not_columnar(path, f).into());
    }
    let text = source::read_text(path)?;
    read_text(path, &text)
}

/// Reads sign-ins from decoded text in any format, told by its content; `path` names it.
pub fn read_text(path: &Path, text: &str) -> Result<FileRead, IngestError> {
    let start = text.trim_start_matches('\u{feff}').trim_start();
    if start.is_empty() || start.starts_with(['[', '{']) {
        return read_json_text(path, text);
    }
    let (format, parsed) = detect::csv_records(path, text)?;
    let mut read = FileRead {
        records: parsed.len(),
        notes: detect::notes(format, path),
        ..FileRead::default()
    };
    for p in parsed {
        match p.signin {
            Ok(s) => read.signins.push(s),
            Err(e) => read.skipped.push(Diagnostic {
                file: path.to_path_buf(),
                record: p.record,
                line: p.line,
                field: e.field,
                value: e.value,
                why: e.why,
            }),
        }
    }
    Ok(read)
}

/// The 1-based line of `text` on which the subslice `part` starts.
fn line_of(text: &str, part: &str) -> Option<usize> {
    let offset = (part.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
    let before = text.get(..offset)?;
    Some(before.bytes().filter(|&b| b == b'\n').count() + 1)
}

/// One JSON record: a Graph sign-in in Graph's key case (the fast typed path), else, on the
/// key-normalized value, a Log Analytics row or the Graph reader (which names what is wrong).
fn parse_json_record(text: &str) -> Result<SignIn, graph::FieldError> {
    if let Some(done) = graph::parse_graph_text(text, None) {
        return done;
    }
    let v = graph::parse_value(text)?;
    if log_analytics::looks_like(&v) {
        log_analytics::read_json(v)
    } else {
        graph::parse_signin(&v, None)
    }
}

/// Reads sign-ins from JSON or NDJSON text already decoded; `path` names it in diagnostics.
pub fn read_json_text(path: &Path, text: &str) -> Result<FileRead, IngestError> {
    json_text(path, text, None)
}

/// [`read_json_text`] on a whole file (`block: None`), or on the `block`-th block of lines of
/// an NDJSON file (`blocks`): its lines are its records, numbered from 1 in the block; whether
/// the file is a sign-in export at all is told by its first block.
fn json_text(path: &Path, text: &str, block: Option<usize>) -> Result<FileRead, IngestError> {
    let diagnostic = |record: usize, line, field: &str, value: String, why: String| Diagnostic {
        file: path.to_path_buf(),
        record,
        line,
        field: field.to_owned(),
        value,
        why,
    };
    let doc = match block {
        None => split::records(text),
        Some(_) => split::lines(text),
    };
    let mut skipped = Vec::new();
    if doc.records.is_empty() {
        match doc.broken {
            None if doc.empty => skipped.push(diagnostic(
                0,
                None,
                "(file)",
                String::new(),
                "the file is empty: no sign-ins in it".into(),
            )),
            None => {}
            Some(b) => {
                return Err(IngestError::Source(SourceError::Json {
                    path: path.to_path_buf(),
                    message: format!(
                        "line {} column {}: {} (near `{}`)",
                        b.line, b.column, b.why, b.near
                    ),
                    hint: String::new(),
                }))
            }
        }
        return Ok(FileRead {
            // An empty file counts as one unreadable record, so the totals still add up.
            records: skipped.len(),
            signins: Vec::new(),
            skipped,
            notes: Vec::new(),
        });
    }
    // Log Analytics query API results: {"tables": [{"columns": [...], "rows": [[...]]}]}.
    if let [one] = doc.records.as_slice() {
        if let Ok(v) = serde_json::from_str::<Value>(one.text) {
            if let Some(rows) = log_analytics::query_result_rows(&source::normalize_keys(v)) {
                let mut read = FileRead {
                    records: rows.len(),
                    ..FileRead::default()
                };
                for r in rows {
                    match log_analytics::read_json(r.value) {
                        Ok(s) => read.signins.push(s),
                        Err(e) => read
                            .skipped
                            .push(diagnostic(r.index, None, &e.field, e.value, e.why)),
                    }
                }
                return Ok(read);
            }
        }
    }
    let parsed: Vec<Result<SignIn, graph::FieldError>> = doc
        .records
        .par_iter()
        .map(|r| parse_json_record(r.text))
        .collect();
    // A file that is no sign-in export is told by its first records when none reads as a
    // sign-in. Read in blocks, `blocks::read_in` tells it, over the whole file.
    if block.is_none() && parsed.iter().all(Result::is_err) {
        if let Some(looked_like) = not_signins(doc.records.iter().map(|r| r.text)) {
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
            Err(e) => skipped.push(diagnostic(
                r.index,
                line_of(text, r.text),
                &e.field,
                e.value,
                e.why,
            )),
        }
    }
    let mut records = doc.records.len();
    if let Some(b) = doc.broken {
        // The file stops being JSON after the records above: count what cannot be read.
        records += 1;
        skipped.push(diagnostic(
            doc.records.len() + 1,
            Some(b.line),
            "(record)",
            b.near,
            format!(
                "line {} column {}: {}; nothing after this point in the file is read (truncated?)",
                b.line, b.column, b.why
            ),
        ));
    }
    Ok(FileRead {
        records,
        signins,
        skipped,
        notes: Vec::new(),
    })
}

/// How many of a file's first records `not_signins` looks at.
const NOT_SIGNINS_LOOKED_AT: usize = 20;

/// When no record of a file reads as a sign-in: what the file looks like, if it is not a sign-in
/// export at all (`None` when it does look like one and its records are merely bad).
/// `records`: the texts of the file's records, in order (the first [`NOT_SIGNINS_LOOKED_AT`]
/// are read).
fn not_signins<'t>(records: impl Iterator<Item = &'t str>) -> Option<String> {
    let values: Vec<Value> = records
        .take(NOT_SIGNINS_LOOKED_AT)
        .filter_map(|r| serde_json::from_str::<Value>(r).ok())
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
    if values
        .iter()
        .any(|v| looks_like(v) || log_analytics::looks_like(v))
    {
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
