//! `ca-replay convert`: sign-in exports in any format `run` reads into one Parquet or Arrow IPC
//! file of ca-replay's normalized schema (the fast path for repeated runs).
//!
//! In: files and folders of sign-ins, and the file to write (its extension picks the format).
//! Out: the file (streamed, one input file in memory at a time), and a one-screen summary on
//! stderr: sign-ins, skipped records by reason, duplicates, bytes written and time.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;

use super::{ConvertArgs, ExitCode};
use crate::ingest::columnar::{Format, SignInWriter, Written};
use crate::ingest::{self, IngestOptions, IngestReport};
use crate::source;

/// What one conversion did.
#[derive(Debug, Clone)]
pub struct Converted {
    pub format: Format,
    pub report: IngestReport,
    pub written: Written,
    pub seconds: f64,
}

pub fn convert(a: &ConvertArgs) -> anyhow::Result<ExitCode> {
    let c = convert_files(a)?;
    for line in summary(a, &c) {
        eprintln!("{line}");
    }
    Ok(ExitCode::Ok)
}

/// Reads the inputs one file at a time and streams them into the output file; prints nothing.
/// One file's sign-ins are in memory at a time (ids are remembered across files for the
/// duplicate check), so the output can be larger than what `run` could hold.
pub fn convert_files(a: &ConvertArgs) -> anyhow::Result<Converted> {
    let started = Instant::now();
    let format = Format::from_extension(&a.out).ok_or_else(|| {
        anyhow::anyhow!(
            "cannot tell the format of `{}` from its extension\nhint: name it `.parquet`, or `.arrow` (also `.arrows`, `.ipc`) for Arrow IPC",
            a.out.display()
        )
    })?;
    let options = IngestOptions {
        strict: a.strict,
        ..IngestOptions::default()
    };
    let mut report = IngestReport::default();
    let mut seen = HashSet::new();
    let mut w = SignInWriter::create(&a.out, format)?;
    for file in input_files(a)? {
        let (mut signins, r) = ingest::read_signins(std::slice::from_ref(&file), options)?;
        let before = signins.len();
        signins.retain(|s| seen.insert(s.id.clone()));
        report.duplicates += r.duplicates + (before - signins.len());
        report.records += r.records;
        report.skipped.extend(r.skipped);
        report
            .files
            .extend(r.files.into_iter().map(|(f, _)| (f, signins.len())));
        w.write(&signins)?;
    }
    let written = w
        .finish()
        .with_context(|| format!("writing `{}`", a.out.display()))?;
    Ok(Converted {
        format,
        report,
        written,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The files under the inputs, in `read_signins` order, without an earlier version of the output.
fn input_files(a: &ConvertArgs) -> anyhow::Result<Vec<PathBuf>> {
    let out = std::fs::canonicalize(&a.out).ok();
    let mut files = Vec::new();
    for root in &a.inputs {
        for f in source::files_under(root)? {
            if out.is_none() || std::fs::canonicalize(&f).ok() != out {
                files.push(f);
            }
        }
    }
    Ok(files)
}

/// The lines printed after a conversion.
pub fn summary(a: &ConvertArgs, c: &Converted) -> Vec<String> {
    let mut lines = vec![format!(
        "converted {} sign-ins from {} files ({} records) to {} ({}, {:.1} MB) in {:.2}s",
        c.written.rows,
        c.report.files.len(),
        c.report.records,
        a.out.display(),
        c.format.name(),
        c.written.bytes as f64 / 1e6,
        c.seconds
    )];
    lines.push(format!(
        "duplicates: {} (same id seen again, kept once)",
        c.report.duplicates
    ));
    let mut reasons: BTreeMap<(String, String), usize> = BTreeMap::new();
    for d in &c.report.skipped {
        *reasons.entry((d.field.clone(), d.why.clone())).or_default() += 1;
    }
    lines.push(format!("skipped: {} records", c.report.skipped.len()));
    for ((field, why), n) in reasons {
        lines.push(format!("  {n:>8}  `{field}`: {why}"));
    }
    for d in c.report.skipped.iter().take(3) {
        lines.push(format!("  e.g. {d}"));
    }
    lines
}
