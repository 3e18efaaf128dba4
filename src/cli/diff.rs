//! `ca-replay diff`: load the tenant twice, with the base and with the head policies (a folder,
//! or a git revision extracted for the run), read the sign-ins once, replay both, write
//! `diff.md`, `diff.json` and `diff.html`, and print the headline.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;

use super::run::{progress, read_signins, signin_paths, tenant_and_date, Reading, SigninsRead};
use super::{DiffArgs, ExitCode};
use crate::checks::diff::{self, Diff, Sides};
use crate::ingest::IngestOptions;
use crate::policy::{self, git, BuildOptions, LoadedPolicy};
use crate::tenant::Tenant;

/// The base policies: a folder, or a revision's folder extracted for this run (removed when
/// this is dropped).
struct Base {
    path: PathBuf,
    label: String,
    commit: Option<String>,
    _extracted: Option<git::Extracted>,
}

/// `--base`: a folder when one exists at that path, else a git revision resolved in the head
/// folder's repository.
fn resolve_base(spec: &str, head: &Path) -> anyhow::Result<Base> {
    let p = Path::new(spec);
    if p.is_dir() {
        return Ok(Base {
            path: p.to_path_buf(),
            label: spec.to_owned(),
            commit: None,
            _extracted: None,
        });
    }
    let x = git::extract(spec, head)?;
    Ok(Base {
        path: x.path.clone(),
        label: x.spec.clone(),
        commit: x.commit.clone(),
        _extracted: Some(x),
    })
}

pub fn diff(a: &DiffArgs) -> anyhow::Result<ExitCode> {
    let (d, out) = run(a)?;
    let md = std::fs::read_to_string(out.join("diff.md"))
        .with_context(|| format!("reading back `{}`", out.join("diff.md").display()))?;
    super::ci::step_summary(&md)?;
    super::ci::conclude("ca-replay diff", &d.gates, &[], a.gates.junit.as_deref())
}

/// Runs `diff`, writes its reports and returns what it found (with the CI gates checked) and
/// the report folder.
pub fn run(a: &DiffArgs) -> anyhow::Result<(Diff, PathBuf)> {
    anyhow::ensure!(
        a.gates.min_agreement.is_none(),
        "--min-agreement applies to `run` (self-validation); `diff` compares two policy sets"
    );
    let started = Instant::now();
    let options = BuildOptions {
        allow_unsupported: a.allow_unsupported,
    };
    let head_dir = a.head.clone().unwrap_or_else(|| a.tenant.join("policies"));
    anyhow::ensure!(
        head_dir.exists(),
        "the head policies `{}` do not exist{}",
        head_dir.display(),
        if a.head.is_none() {
            "\nhint: give --head, or a --tenant with a policies/ folder"
        } else {
            ""
        }
    );
    let base = resolve_base(&a.base, &head_dir)?;
    let head_label = head_dir.display().to_string();
    let load =
        |dir: &Path, side: &str, label: &str| -> anyhow::Result<(Tenant, Vec<LoadedPolicy>)> {
            let context = || format!("loading the {side} policies `{label}`");
            let t = Tenant::load_with_policies(&a.tenant, dir, options).with_context(context)?;
            let (loaded, _) = policy::load_policies(dir).with_context(context)?;
            Ok((t, loaded))
        };
    let (b, h) = rayon::join(
        || load(&base.path, "base", &base.label),
        || load(&head_dir, "head", &head_label),
    );
    let ((base_t, base_loaded), (head_t, head_loaded)) = (b?, h?);
    // The key is checked before the long part (`[privacy]` of the tenant's ca-replay.toml,
    // the same file for both sides).
    let key = super::privacy::key(&a.privacy, &head_t.config)?;
    let SigninsRead {
        signins,
        mut report,
        clocks,
        mut pz,
    } = read_signins(Reading {
        paths: signin_paths(&head_t, &a.signins)?,
        options: IngestOptions {
            strict: a.strict,
            max_bad_rows: a.max_bad_rows,
        },
        quiet: a.quiet,
        from: a.from,
        to: a.to,
        clocks_for: &[&base_t, &head_t],
        privacy: key,
    })?;
    let [base_clocks, head_clocks]: [_; 2] = clocks
        .try_into()
        .map_err(|_| anyhow::anyhow!("internal: one set of registration clocks per side"))?;
    let read_secs = started.elapsed().as_secs_f64();
    let bar = progress(
        a.quiet,
        signins.len() as u64,
        "replaying",
        "{human_pos}/{human_len} sign-ins ({per_sec})",
    );
    let name = tenant_and_date(&head_t, &signins);
    let tenant = head_t
        .root
        .canonicalize()
        .unwrap_or_else(|_| head_t.root.clone())
        .file_name()
        .map_or_else(|| "tenant".into(), |n| n.to_string_lossy().into_owned());
    let mut d = diff::compare(
        Sides {
            base: &base_t,
            head: &head_t,
            base_clocks: &base_clocks,
            head_clocks: &head_clocks,
            base_loaded: &base_loaded,
            head_loaded: &head_loaded,
            tenant,
            base_label: base.label.clone(),
            head_label,
            base_commit: base.commit.clone(),
            options,
        },
        &signins,
        &|n| bar.inc(n),
    );
    bar.finish_and_clear();
    let out = match &a.out {
        Some(out) => out.clone(),
        None => PathBuf::from("reports").join(format!("diff-{name}")),
    };
    let mut gates = head_t.config.gates.clone();
    a.gates.apply(&mut gates);
    if gates.min_agreement.take().is_some() {
        eprintln!("note: [gates] min_agreement applies to `run` (self-validation), not to `diff`");
    }
    if let Some(pz) = &mut pz {
        crate::report::pseudonymize::diff(pz, &head_t.root, &mut d, &mut report)?;
    }
    // From the pseudonymized findings, when pseudonymized: a gate's message may name one.
    d.gates =
        crate::checks::gates::evaluate(&gates, &crate::checks::gates::Measured::from_diff(&d));
    match &pz {
        None => crate::report::diff::write(&out, &d, &report)
            .with_context(|| format!("writing the diff reports to `{}`", out.display()))?,
        Some(pz) => {
            let written = crate::report::diff::write_pseudonymized(&out, &d, &report, pz);
            // Written even when the leak check stopped the reports: the error names the
            // value only by its pseudonym.
            if let Some(map) = &a.privacy.pseudonym_map {
                super::privacy::write_mapping(map, &out, &crate::report::diff::FILES, pz)?;
            }
            written.with_context(|| format!("writing the diff reports to `{}`", out.display()))?;
            // The JUnit file leaves the report folder too: checked like the reports.
            if a.gates.junit.is_some() {
                let xml = crate::checks::gates::junit("ca-replay diff", &d.gates, &[]);
                pz.leak_check()?.file("junit.xml", xml.as_bytes())?;
            }
        }
    }
    for w in &d.warnings {
        eprintln!("warning: {w}");
    }
    eprintln!("{}", crate::report::diff::headline(&d));
    eprintln!(
        "compared {} sign-ins ({} evaluated) under base ({} policies) and head ({} policies) in {:.2}s (loading and reading {:.2}s); reports in {}",
        signins.len(),
        d.evaluated,
        d.base_policies,
        d.head_policies,
        started.elapsed().as_secs_f64(),
        read_secs,
        out.display()
    );
    Ok((d, out))
}
