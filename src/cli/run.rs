//! `ca-replay run`: load the tenant, read its sign-ins, replay, write the reports.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{DetailsArg, ExitCode, RunArgs};
use crate::ingest::{self, IngestOptions};
use crate::policy::BuildOptions;
use crate::privacy;
use crate::replay::{self, Details};
use crate::tenant::Tenant;

/// A progress bar on stderr: drawn only when stderr is a terminal and `--quiet` is off.
fn progress(quiet: bool, len: u64, what: &str, counts: &str) -> ProgressBar {
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
    tenant
        .set
        .policies
        .retain(|p| wanted.iter().any(|w| matches(p, w)));
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
fn run_name(a: &RunArgs, tenant: &Tenant, signins: &[crate::signin::SignIn]) -> String {
    if let Some(name) = &a.run_name {
        return name.clone();
    }
    let tenant_name = tenant
        .root
        .canonicalize()
        .unwrap_or_else(|_| tenant.root.clone())
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tenant".into());
    match signins.iter().map(|s| s.created_at).max() {
        Some(t) => format!("{tenant_name}-{}", t.format("%Y-%m-%d")),
        None => format!("{tenant_name}-no-signins"),
    }
}

/// A line for stderr: pseudonymized when the run is.
fn shown<'a>(
    pz: &mut Option<privacy::Pseudonymizer>,
    line: &'a str,
) -> anyhow::Result<std::borrow::Cow<'a, str>> {
    Ok(match pz {
        Some(pz) => pz.text(line)?,
        None => line.into(),
    })
}

/// Writes the pseudonym mapping to `--pseudonym-map`; refuses to overwrite a report file and
/// warns when the file is inside the report folder (sharing the folder would share it).
fn write_mapping(
    map: &std::path::Path,
    out: &std::path::Path,
    pz: &privacy::Pseudonymizer,
) -> anyhow::Result<()> {
    let folder = |p: &std::path::Path| {
        let p = if p.as_os_str().is_empty() {
            std::path::Path::new(".")
        } else {
            p
        };
        p.canonicalize().ok()
    };
    let map_dir = folder(map.parent().unwrap_or(std::path::Path::new(".")));
    let out_dir = folder(out);
    let inside = match (&map_dir, &out_dir) {
        (Some(m), Some(o)) => m.starts_with(o),
        _ => false,
    };
    if inside {
        let name = map.file_name().and_then(|n| n.to_str()).unwrap_or("");
        anyhow::ensure!(
            !(map_dir == out_dir && crate::report::FILES.contains(&name)),
            "--pseudonym-map `{}` would replace a report file\nhint: write the mapping outside the report folder",
            map.display()
        );
        eprintln!(
            "warning: the pseudonym mapping `{}` is inside the report folder: whoever gets the folder can undo the pseudonyms",
            map.display()
        );
    }
    crate::report::write_atomic(map, &pz.mapping_csv())
        .with_context(|| format!("writing the pseudonym mapping `{}`", map.display()))?;
    eprintln!(
        "pseudonym mapping ({} pseudonyms) in {}",
        pz.len(),
        map.display()
    );
    Ok(())
}

pub fn run(a: &RunArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let options = BuildOptions {
        allow_unsupported: a.allow_unsupported,
    };
    let mut tenant = Tenant::load(&a.tenant, options)?;
    if !a.policies.is_empty() {
        select_policies(&mut tenant, &a.policies)?;
    }
    // Pseudonymization: the key is checked before the long part of the run.
    let pseudonymize = a.pseudonymize || tenant.config.privacy.pseudonymize;
    if a.pseudonym_map.is_some() && !pseudonymize {
        anyhow::bail!(
            "--pseudonym-map needs pseudonymization\nhint: add --pseudonymize, or `[privacy] pseudonymize = true` in ca-replay.toml"
        );
    }
    let key = if pseudonymize {
        Some(privacy::Key::from_env()?)
    } else {
        None
    };
    let paths = signin_paths(&tenant, &a.signins)?;
    let files = ingest::signin_files(&paths)?;
    let total_bytes = files.iter().map(|(_, b)| b).sum();
    let bar = progress(
        a.quiet,
        total_bytes,
        "reading",
        "{bytes}/{total_bytes} ({bytes_per_sec})",
    );
    let (mut signins, mut report) = ingest::read_files_observed(
        files,
        IngestOptions {
            strict: a.strict,
            max_bad_rows: a.max_bad_rows,
        },
        &|_, bytes| bar.inc(bytes),
    )?;
    bar.finish_and_clear();
    // The MFA registration clocks see every sign-in read, also those before the window.
    let clocks = replay::registration_clocks(&tenant, &signins);
    if a.from.is_some() || a.to.is_some() {
        if let (Some(f), Some(t)) = (a.from, a.to) {
            anyhow::ensure!(f < t, "--from {f} is not before --to {t}");
        }
        let before = signins.len();
        signins.retain(|s| {
            a.from.is_none_or(|f| s.created_at >= f) && a.to.is_none_or(|t| s.created_at < t)
        });
        report.outside_window = before - signins.len();
        report.window = (a.from, a.to);
    }
    // What the run prints lands in CI logs too: pseudonymized like the reports.
    let mut pz = match key {
        Some(key) => Some(
            privacy::Pseudonymizer::builder(key)
                .tenant(&tenant)
                .signins(&signins)
                .build()?,
        ),
        None => None,
    };
    for d in report.skipped.iter().take(5) {
        match &mut pz {
            Some(pz) => eprintln!(
                "skipped: {}",
                crate::report::pseudonymize::diagnostic(pz, &tenant.root, d)?
            ),
            None => eprintln!("skipped: {d}"),
        }
    }
    if report.skipped.len() > 5 {
        eprintln!(
            "skipped: … and {} more (counted in summary.json)",
            report.skipped.len() - 5
        );
    }
    for note in &report.notes {
        eprintln!("note: {}", shown(&mut pz, note)?);
    }
    let details = match a.details {
        DetailsArg::Applied => Details::Applied,
        DetailsArg::All => Details::All,
    };
    let read_secs = started.elapsed().as_secs_f64();
    let bar = progress(
        a.quiet,
        signins.len() as u64,
        "replaying",
        "{human_pos}/{human_len} sign-ins ({per_sec})",
    );
    let mut replay = replay::run_observed(&tenant, &signins, clocks, details, &|n| bar.inc(n));
    bar.finish_and_clear();
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
    let out = match &a.out {
        Some(out) => out.clone(),
        None => a.reports_dir.join(run_name(a, &tenant, &signins)),
    };
    match &mut pz {
        None => crate::report::write(&out, &tenant, &signins, &report, &replay, options)
            .with_context(|| format!("writing reports to `{}`", out.display()))?,
        Some(pz) => {
            // The warnings print after the reports, pseudonymized from the original names.
            let warnings: Vec<String> = tenant
                .warnings(options)
                .iter()
                .map(|w| w.to_string())
                .collect();
            let written = crate::report::write_pseudonymized(
                &out,
                &mut tenant,
                &mut signins,
                &mut report,
                &mut replay,
                options,
                pz,
            );
            // The mapping is written even when the leak check stopped the reports: it names
            // the value the error gives only as a pseudonym.
            if let Some(map) = &a.pseudonym_map {
                write_mapping(map, &out, pz)?;
            }
            written.with_context(|| format!("writing reports to `{}`", out.display()))?;
            for w in warnings {
                eprintln!("{}", pz.text(&w)?);
            }
        }
    }
    if pz.is_none() {
        for w in tenant.warnings(options) {
            eprintln!("{w}");
        }
    }
    eprintln!(
        "replayed {} sign-ins ({} evaluated) against {} policies in {:.2}s (loading and reading {:.2}s); reports in {}",
        signins.len(),
        replay.evaluated,
        tenant.set.policies.len(),
        started.elapsed().as_secs_f64(),
        read_secs,
        out.display()
    );
    Ok(ExitCode::Ok)
}
