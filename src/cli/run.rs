//! `ca-replay run`: load the tenant, read its sign-ins, replay, write the reports.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context;
use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{DetailsArg, ExitCode, RunArgs};
use crate::ingest::{self, IngestOptions, IngestReport};
use crate::policy::BuildOptions;
use crate::privacy::{self, Pseudonymizer};
use crate::replay::{self, Details, Finished, Replay, Replayer};
use crate::report::collect::{Collected, Collector};
use crate::signin::SignIn;
use crate::tenant::Tenant;

/// A progress bar on stderr: drawn only when stderr is a terminal and `--quiet` is off.
pub(super) fn progress(quiet: bool, len: u64, what: &str, counts: &str) -> ProgressBar {
    let target = if quiet {
        ProgressDrawTarget::hidden()
    } else {
        // indicatif hides a stderr target that is not a terminal (CI logs, pipes).
        ProgressDrawTarget::stderr()
    };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    let template = format!("{what:>9} [{{bar:32}}] {counts}, ETA {{eta}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Keeps the policies `--policy` names (by id, display name, or the name's part before a
/// colon, case-insensitively); a name that matches none is an error listing what there is.
fn select_policies(tenant: &mut Tenant, wanted: &[String]) -> anyhow::Result<()> {
    let matches = |p: &crate::policy::CompiledPolicy, w: &str| {
        let w = w.trim();
        p.id.eq_ignore_ascii_case(w)
            || p.display_name.eq_ignore_ascii_case(w)
            || p.display_name
                .split_once(':')
                .is_some_and(|(prefix, _)| prefix.trim().eq_ignore_ascii_case(w))
    };
    for w in wanted {
        if !tenant.set.policies.iter().any(|p| matches(p, w)) {
            let names: Vec<&str> = tenant
                .set
                .policies
                .iter()
                .map(|p| p.display_name.as_str())
                .collect();
            anyhow::bail!(
                "--policy `{w}` matches no policy of `{}`; there are: {}",
                tenant.root.display(),
                names.join("; ")
            );
        }
    }
    tenant.set.retain(|p| wanted.iter().any(|w| matches(p, w)));
    Ok(())
}

/// The tenant's `signins/` folder and the `--signins` given; an error when there is neither.
pub(super) fn signin_paths(tenant: &Tenant, extra: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    if tenant.signins_dir().exists() {
        paths.push(tenant.signins_dir());
    }
    paths.extend(extra.iter().cloned());
    if paths.is_empty() {
        anyhow::bail!(
            "`{}` has no signins/ folder and no --signins was given\nhint: put sign-in exports under {}/signins/",
            tenant.root.display(),
            tenant.root.display()
        );
    }
    Ok(paths)
}

/// `--run-name`, or the tenant folder's name and the date of the newest sign-in.
fn run_name(a: &RunArgs, tenant: &Tenant, newest: Option<DateTime<Utc>>) -> String {
    match &a.run_name {
        Some(name) => name.clone(),
        None => tenant_and_newest(tenant, newest),
    }
}

/// The tenant folder's name and the date of the newest sign-in (`contoso-2026-11-22`).
pub(super) fn tenant_and_date(tenant: &Tenant, signins: &[SignIn]) -> String {
    tenant_and_newest(tenant, signins.iter().map(|s| s.created_at).max())
}

fn tenant_and_newest(tenant: &Tenant, newest: Option<DateTime<Utc>>) -> String {
    let tenant_name = tenant
        .root
        .canonicalize()
        .unwrap_or_else(|_| tenant.root.clone())
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tenant".into());
    match newest {
        Some(t) => format!("{tenant_name}-{}", t.format("%Y-%m-%d")),
        None => format!("{tenant_name}-no-signins"),
    }
}

/// How `run` and `diff` read sign-ins.
pub(super) struct Reading<'a> {
    pub paths: Vec<PathBuf>,
    pub options: IngestOptions,
    pub quiet: bool,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Tenants whose MFA registration clocks are computed over every sign-in read, before the
    /// window is applied (the policy's clock still sees the prompts before it).
    pub clocks_for: &'a [&'a Tenant],
    /// With a key: pseudonymize (`--pseudonymize`). The pseudonymizer is built from the
    /// tenants of `clocks_for` and the sign-ins read, and what is printed goes through it.
    pub privacy: Option<privacy::Key>,
}

/// What [`read_signins`] read.
pub(super) struct SigninsRead {
    /// The sign-ins in the window.
    pub signins: Vec<SignIn>,
    pub report: IngestReport,
    /// Per tenant of `Reading::clocks_for`, its MFA registration clocks.
    pub clocks: Vec<HashMap<String, i64>>,
    /// With `Reading::privacy`: the pseudonymizer, knowing every value read.
    pub pz: Option<Pseudonymizer>,
}

/// Reads the sign-ins (a progress bar of bytes read), computes the registration clocks, keeps
/// the `--from`/`--to` window (counting the rest in the report), and prints what was skipped.
pub(super) fn read_signins(r: Reading) -> anyhow::Result<SigninsRead> {
    if let (Some(f), Some(t)) = (r.from, r.to) {
        anyhow::ensure!(f < t, "--from {f} is not before --to {t}");
    }
    let files = ingest::signin_files(&r.paths)?;
    let total_bytes = files.iter().map(|(_, b)| b).sum();
    let bar = progress(
        r.quiet,
        total_bytes,
        "reading",
        "{bytes}/{total_bytes} ({bytes_per_sec})",
    );
    let (mut signins, mut report) =
        ingest::read_files_observed(files, r.options, &|_, bytes| bar.inc(bytes))?;
    bar.finish_and_clear();
    let clocks = r
        .clocks_for
        .iter()
        .map(|t| replay::registration_clocks(t, &signins))
        .collect();
    if r.from.is_some() || r.to.is_some() {
        let before = signins.len();
        signins.retain(|s| {
            r.from.is_none_or(|f| s.created_at >= f) && r.to.is_none_or(|t| s.created_at < t)
        });
        report.outside_window = before - signins.len();
        report.window = (r.from, r.to);
    }
    // What is printed lands in CI logs too: pseudonymized like the reports.
    let mut pz = match r.privacy {
        Some(key) => {
            let mut b = Pseudonymizer::builder(key);
            for t in r.clocks_for {
                b = b.tenant(t);
            }
            Some(b.signins(&signins).build()?)
        }
        None => None,
    };
    let root = r
        .clocks_for
        .first()
        .map(|t| t.root.clone())
        .unwrap_or_default();
    print_read(&report, &root, &mut pz)?;
    Ok(SigninsRead {
        signins,
        report,
        clocks,
        pz,
    })
}

/// Prints the first records skipped and the notes on what the inputs could not carry.
fn print_read(
    report: &IngestReport,
    root: &std::path::Path,
    pz: &mut Option<Pseudonymizer>,
) -> anyhow::Result<()> {
    for d in report.skipped.iter().take(5) {
        match pz {
            Some(pz) => eprintln!(
                "skipped: {}",
                crate::report::pseudonymize::diagnostic(pz, root, d)?
            ),
            None => eprintln!("skipped: {d}"),
        }
    }
    if report.skipped.len() > 5 {
        eprintln!(
            "skipped: … and {} more (counted in the reports)",
            report.skipped.len() - 5
        );
    }
    for note in &report.notes {
        eprintln!("note: {}", super::privacy::shown(pz, note)?);
    }
    Ok(())
}

/// What a run replayed and gathered for its reports.
struct Replayed {
    report: IngestReport,
    replay: Replay,
    collected: Collected,
    pz: Option<Pseudonymizer>,
}

pub fn run(a: &RunArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let options = BuildOptions {
        allow_unsupported: a.allow_unsupported,
    };
    let mut tenant = Tenant::load(&a.tenant, options)?;
    a.gates.apply(&mut tenant.config.gates);
    if !a.policies.is_empty() {
        select_policies(&mut tenant, &a.policies)?;
    }
    if let Some(name) = &a.run_name {
        anyhow::ensure!(
            !name.is_empty()
                && !name.starts_with('.')
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')),
            "--run-name `{name}`: use letters, digits, `-`, `_` and `.` (it names a folder)"
        );
    }
    if let (Some(f), Some(t)) = (a.from, a.to) {
        anyhow::ensure!(f < t, "--from {f} is not before --to {t}");
    }
    // The key is checked before the long part of the run.
    let key = super::privacy::key(&a.privacy, &tenant.config)?;
    let details = match a.details {
        DetailsArg::Applied => Details::Applied,
        DetailsArg::All => Details::All,
    };
    let paths = signin_paths(&tenant, &a.signins)?;
    let ingest_options = IngestOptions {
        strict: a.strict,
        max_bad_rows: a.max_bad_rows,
    };
    // The folder the detail files are written into while the run goes: beside the report
    // folder, whose name may depend on the newest sign-in.
    let reports_root = match &a.out {
        Some(out) => out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), |p| p.to_path_buf()),
        None => a.reports_dir.clone(),
    };
    let staging = reports_root.join(format!(".ca-replay-run-{}", std::process::id()));
    let replayed = match key {
        None => stream(a, &tenant, &paths, ingest_options, details, &staging),
        Some(key) => in_memory(a, &tenant, paths, ingest_options, details, key),
    };
    let replayed = match replayed {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    let Replayed {
        mut report,
        mut replay,
        collected,
        mut pz,
    } = replayed;
    let out = match &a.out {
        Some(out) => out.clone(),
        None => a.reports_dir.join(run_name(a, &tenant, replay.last)),
    };
    // The warnings are taken before pseudonymization changes the policies' names.
    let warnings: Vec<String> = tenant
        .warnings(options)
        .iter()
        .map(|w| w.to_string())
        .collect();
    let csv_note = match collected.written.csv {
        Err(crate::report::details::CsvSkipped::TooLong) => collected.written.csv_note(),
        _ => None,
    };
    let written = match &mut pz {
        None => crate::report::write(&out, &tenant, &report, &replay, collected, options)
            .with_context(|| format!("writing reports to `{}`", out.display())),
        Some(pz) => {
            let written = crate::report::write_pseudonymized(
                &out,
                &mut tenant,
                &mut report,
                &mut replay,
                collected,
                options,
                pz,
            );
            // The mapping is written even when the leak check stopped the reports: the error
            // names the value only by its pseudonym.
            if let Some(map) = &a.privacy.pseudonym_map {
                super::privacy::write_mapping(map, &out, &crate::report::FILES, pz)?;
            }
            let gates =
                written.with_context(|| format!("writing reports to `{}`", out.display()))?;
            // The JUnit file leaves the report folder too: checked like the reports.
            if a.gates.junit.is_some() {
                let xml = crate::checks::gates::junit("ca-replay run", &gates, &[]);
                pz.leak_check()?.file("junit.xml", xml.as_bytes())?;
            }
            Ok(gates)
        }
    };
    let _ = std::fs::remove_dir_all(&staging);
    let gates = written?;
    for w in &warnings {
        eprintln!("{}", super::privacy::shown(&mut pz, w)?);
    }
    if let Some(note) = csv_note {
        eprintln!("note: {note}");
    }
    eprintln!(
        "replayed {} sign-ins ({} evaluated) against {} policies in {:.2}s; reports in {}",
        replay.signins,
        replay.evaluated,
        tenant.set.policies.len(),
        started.elapsed().as_secs_f64(),
        out.display()
    );
    let report_md = std::fs::read_to_string(out.join("report.md"))
        .with_context(|| format!("reading back `{}`", out.join("report.md").display()))?;
    super::ci::step_summary(&report_md)?;
    super::ci::conclude("ca-replay run", &gates, &[], a.gates.junit.as_deref())
}

/// The streaming run: the sign-ins read in batches, each replayed and handed to the report
/// collector, then dropped; memory stays bounded by a few batches, one number per user and
/// the aggregates. When a later batch moves a user's MFA registration clock back far enough to
/// change an earlier answer, the whole replay goes again with the final clocks (never for
/// sign-ins in time order).
fn stream(
    a: &RunArgs,
    tenant: &Tenant,
    paths: &[PathBuf],
    options: IngestOptions,
    details: Details,
    staging: &std::path::Path,
) -> anyhow::Result<Replayed> {
    let files = ingest::signin_files(paths)?;
    let total_bytes = files.iter().map(|(_, b)| b).sum();
    let mut clocks = None;
    loop {
        let bar = progress(
            a.quiet,
            total_bytes,
            "replaying",
            "{bytes}/{total_bytes} read, {msg}",
        );
        let started = Instant::now();
        let done = AtomicU64::new(0);
        let show = |n: u64| {
            let done = done.fetch_add(n, Ordering::Relaxed) + n;
            let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!("{done} sign-ins ({rate:.0}/s)"));
        };
        let again = clocks.is_some();
        let mut replayer = Replayer::new(tenant, details, clocks.take()).window(a.from, a.to);
        let mut collector = Collector::to_files(tenant, staging, a.details_csv.into())
            .with_context(|| format!("creating `{}`", staging.display()))?;
        let mut report =
            ingest::stream(&files, options, &|_, bytes| bar.inc(bytes), &mut |batch| {
                let (batch, out) = replayer.feed(batch, &show);
                collector.add(batch, out, replayer.clocks(), None)?;
                Ok(())
            })?;
        bar.finish_and_clear();
        match replayer.finish() {
            Finished::Done(replay) => {
                report.outside_window = replay.outside_window as usize;
                report.window = (a.from, a.to);
                if again {
                    eprintln!("note: replayed twice: a later file held earlier sign-ins that moved MFA registration clocks back");
                }
                print_read(&report, &tenant.root, &mut None)?;
                let collected = collector.finish(&replay)?;
                return Ok(Replayed {
                    report,
                    replay: *replay,
                    collected,
                    pz: None,
                });
            }
            Finished::Again(final_clocks) => clocks = Some(final_clocks),
        }
    }
}

/// The pseudonymized run: every sign-in is read first (the pseudonymizer must know every
/// value of the input before it can check the reports for one), then replayed in memory.
fn in_memory(
    a: &RunArgs,
    tenant: &Tenant,
    paths: Vec<PathBuf>,
    options: IngestOptions,
    details: Details,
    key: privacy::Key,
) -> anyhow::Result<Replayed> {
    let SigninsRead {
        signins,
        report,
        mut clocks,
        pz,
    } = read_signins(Reading {
        paths,
        options,
        quiet: a.quiet,
        from: a.from,
        to: a.to,
        clocks_for: &[tenant],
        privacy: Some(key),
    })?;
    let mut pz = pz.context("a pseudonymized run has a pseudonymizer")?;
    let clocks = clocks.pop().unwrap_or_default();
    let bar = progress(
        a.quiet,
        signins.len() as u64,
        "replaying",
        "{human_pos}/{human_len} sign-ins ({per_sec})",
    );
    let mut replayer = Replayer::new(tenant, details, Some(clocks));
    let (signins, out) = replayer.feed(signins, &|n| bar.inc(n));
    bar.finish_and_clear();
    let replay = match replayer.finish() {
        Finished::Done(replay) => *replay,
        Finished::Again(_) => anyhow::bail!("a replay with its clocks given finishes at once"),
    };
    let mut collector = Collector::in_memory(tenant, a.details_csv.into())?;
    collector.add(signins, out, &replay.registration_clocks, Some(&mut pz))?;
    let collected = collector.finish(&replay)?;
    Ok(Replayed {
        report,
        replay,
        collected,
        pz: Some(pz),
    })
}
