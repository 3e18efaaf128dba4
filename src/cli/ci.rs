//! What every gated command does at its end: print the gates, write the JUnit file, append its
//! Markdown to `$GITHUB_STEP_SUMMARY` when GitHub Actions sets it, and choose the exit code.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use super::ExitCode;
use crate::checks::gates::{self, GateResult, JunitCase};

/// GitHub rejects a step summary over 1 MiB; ours stays under it with room for other steps.
const STEP_SUMMARY_MAX: usize = 900 * 1024;

/// Appends `markdown` to the file `$GITHUB_STEP_SUMMARY` names, when it is set. A report too
/// large for GitHub's limit is cut at a line boundary, saying so.
pub fn step_summary(markdown: &str) -> anyhow::Result<()> {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let text = if markdown.len() > STEP_SUMMARY_MAX {
        let mut end = STEP_SUMMARY_MAX;
        while !markdown.is_char_boundary(end) {
            end -= 1;
        }
        let mut cut = markdown[..end].to_owned();
        if let Some(i) = cut.rfind('\n') {
            cut.truncate(i + 1);
        }
        cut.push_str("\n*(cut to fit GitHub's step summary limit; the whole report is in the run's report folder)*\n");
        cut
    } else {
        markdown.to_owned()
    };
    let path = Path::new(&path);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening $GITHUB_STEP_SUMMARY `{}`", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.write_all(b"\n"))
        .with_context(|| format!("writing $GITHUB_STEP_SUMMARY `{}`", path.display()))
}

/// Prints each gate on stderr, writes the JUnit file when asked, and returns exit code 1 when
/// a gate was crossed (or an `extra` case failed), else 0.
pub fn conclude(
    suite: &str,
    results: &[GateResult],
    extra: &[JunitCase],
    junit: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    for r in results {
        eprintln!(
            "gate {}: {} ({})",
            r.gate,
            if r.passed { "pass" } else { "CROSSED" },
            r.message
        );
    }
    if let Some(path) = junit {
        crate::report::write_atomic(path, gates::junit(suite, results, extra).as_bytes())
            .with_context(|| format!("writing the JUnit file `{}`", path.display()))?;
    }
    let failed = gates::crossed(results) || extra.iter().any(|c| c.failure.is_some());
    Ok(if failed { ExitCode::Gate } else { ExitCode::Ok })
}
