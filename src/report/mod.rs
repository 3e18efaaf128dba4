//! Report writers: `summary.json` (the versioned machine contract) and `details.csv` (one row per
//! evaluated sign-in and policy whose impact is not `not_applied`, or all with `--details all`).
//!
//! In: the `Replay`, the tenant and the ingest report. Out: files written atomically (temp file,
//! then rename), byte-identical for identical inputs: keys sorted, rows in sign-in order, no clock.

pub mod affected;
pub mod collect;
pub mod details;
pub mod diff;
pub mod explain;
pub mod html;
pub mod markdown;
pub mod pseudonymize;
pub mod trend;

pub use markdown::thousands;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::checks::gates;
use crate::domain::Impact;
use crate::engine::Condition;
use crate::ingest::IngestReport;
use crate::policy::BuildOptions;
use crate::replay::{Replay, Tally};
use crate::signin::SignIn;
use crate::tenant::Tenant;
use affected::Affected;
use collect::{Collected, DetailFiles};

pub const SCHEMA_VERSION: u32 = 1;

/// The columns of `details.csv` (design.md "Outputs").
pub const DETAIL_COLUMNS: [&str; 11] = [
    "signin_id",
    "created_at",
    "user_id",
    "user_principal_name",
    "resource_id",
    "policy_id",
    "policy_name",
    "policy_state",
    "impact",
    "result",
    "reason",
];

/// Writes `bytes` to `path` through a temporary file in the same folder, then renames.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("report");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// Neutralises spreadsheet formulas: a cell starting with `=`, `+`, `-`, `@` (or a tab/CR) gets
/// a leading apostrophe.
pub fn csv_cell(s: &str) -> std::borrow::Cow<'_, str> {
    match s.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{s}").into(),
        _ => s.into(),
    }
}

fn top_json(counts: &BTreeMap<String, u64>) -> Value {
    affected::top(counts, TOP)
        .into_iter()
        .map(|(name, n)| json!({"name": name, "signins": n}))
        .collect()
}

const TOP: usize = 10;

fn breakdown_json(b: Option<&affected::Breakdown>) -> Value {
    let Some(b) = b else {
        return Value::Null;
    };
    json!({
        "apps": top_json(&b.apps),
        "client_app_types": top_json(&b.client_apps),
        "platforms": top_json(&b.platforms),
        "countries": top_json(&b.countries),
    })
}

/// The exclusions of policy `pi` that decided, most sign-ins first.
fn exclusions_json(tenant: &Tenant, replay: &Replay, pi: usize) -> Value {
    let Some(p) = tenant.set.policies.get(pi) else {
        return Value::Null;
    };
    let mut fired: Vec<_> = replay
        .exclusions
        .range((pi, Condition::Users, None)..)
        .take_while(|((i, _, _), _)| *i == pi)
        .collect();
    fired.sort_by(|a, b| b.1.signins.cmp(&a.1.signins).then_with(|| a.0.cmp(b.0)));
    fired
        .into_iter()
        .map(|((_, cond, entry), f)| {
            json!({
                "condition": cond.as_str(),
                "entry": crate::engine::explain::exclusion_text(&tenant.dir, &tenant.set, p, *cond, *entry),
                "signins": f.signins,
                "users": f.users.len(),
            })
        })
        .collect()
}

fn tally_json(t: &Tally) -> Value {
    let mut signins = Map::new();
    let mut users = Map::new();
    for i in Impact::ALL {
        signins.insert(i.as_str().into(), json!(t.signins_of(i)));
        users.insert(i.as_str().into(), json!(t.users_of(i).len()));
    }
    json!({"signins": signins, "users": users})
}

pub fn summary_json(
    tenant: &Tenant,
    ingest: &IngestReport,
    replay: &Replay,
    affected: &Affected,
    options: BuildOptions,
) -> Value {
    const SKIPPED_LISTED: usize = 200;
    let mut skipped: BTreeMap<String, u64> = BTreeMap::new();
    for d in &ingest.skipped {
        *skipped
            .entry(format!("{}: {}", d.field, d.why))
            .or_default() += 1;
    }
    let (from, to) = match (replay.first, replay.last) {
        (Some(a), Some(b)) => (json!(a.to_rfc3339()), json!(b.to_rfc3339())),
        _ => (Value::Null, Value::Null),
    };
    let root = &tenant.root;
    let rel = |p: &Path| p.strip_prefix(root).unwrap_or(p).display().to_string();
    let files: Vec<Value> = ingest
        .files
        .iter()
        .map(|(p, n)| json!({"path": rel(p), "signins": n}))
        .collect();
    let policies: Vec<Value> = tenant
        .set
        .policies
        .iter()
        .zip(&replay.policies)
        .enumerate()
        .map(|(pi, (p, t))| {
            let mut o = json!({
                "id": p.id, "name": p.display_name, "state": p.state.as_str(),
                "kind": format!("{:?}", p.kind),
            });
            if let Some(t) = t {
                if let (Value::Object(o), Value::Object(t)) = (&mut o, tally_json(t)) {
                    o.extend(t);
                }
            }
            if !p.accepted_unsupported.is_empty() {
                o["unsupported_accepted"] = json!(p.accepted_unsupported);
            }
            if t.is_some() {
                o["affected"] = breakdown_json(affected.policies.get(pi));
                o["exclusions_fired"] = exclusions_json(tenant, replay, pi);
            }
            o
        })
        .collect();
    let mut sets = Map::new();
    for (k, t) in &replay.sets {
        let mut v = tally_json(t);
        v["signins_with_indeterminate_policy"] =
            json!(replay.indeterminate_signins.get(k).copied().unwrap_or(0));
        sets.insert(k.as_str().into(), v);
    }
    let newly = |i: Impact| replay.newly.get(&i).map(|u| u.len()).unwrap_or(0);
    let mut warnings: Vec<String> = tenant
        .warnings(options)
        .iter()
        .map(|f| f.to_string())
        .collect();
    warnings.extend(tenant.dir.problems.iter().map(|p| p.to_string()));
    warnings.extend(ingest.notes.iter().cloned());
    if !ingest.skipped.is_empty() {
        warnings.push(format!(
            "{} sign-in record(s) could not be read and were skipped (see inputs.skipped_reasons and inputs.skipped_first)",
            ingest.skipped.len()
        ));
    }
    json!({
        "schema_version": SCHEMA_VERSION,
        "inputs": {
            "signin_files": files,
            "records": ingest.records,
            "signins": replay.signins,
            "duplicates": ingest.duplicates,
            "window": {
                "from": ingest.window.0.map(|t| t.to_rfc3339()),
                "to": ingest.window.1.map(|t| t.to_rfc3339()),
                "signins_outside": ingest.outside_window,
            },
            "skipped": ingest.skipped.len(),
            "skipped_reasons": skipped,
            // The first records skipped, each with where it is and why (the rest are counted).
            "skipped_first": ingest.skipped.iter().take(SKIPPED_LISTED).map(|d| json!({
                "file": rel(&d.file),
                "record": d.record,
                "line": d.line,
                "field": d.field,
                "value": d.value,
                "why": d.why,
            })).collect::<Vec<_>>(),
            "evaluated": replay.evaluated,
            "not_evaluated": replay.not_evaluated,
            "users": replay.users,
            "from": from,
            "to": to,
            "policies": tenant.set.policies.len(),
        },
        "policies": policies,
        "sets": sets,
        "difference": {
            "signins_changed": replay.signins_changed,
            "users_newly_blocked": newly(Impact::Blocked),
            "users_newly_password_change": newly(Impact::PasswordChange),
            "users_newly_registering": newly(Impact::MfaRegistration),
            "users_newly_prompted": newly(Impact::MfaPrompt),
            "users_newly_reauth": newly(Impact::InteractiveReauth),
            "users_newly_nudged": newly(Impact::RegistrationNudge),
            "signins_newly": replay.newly_signins.iter()
                .map(|(i, n)| (i.as_str().to_owned(), json!(n)))
                .collect::<Map<String, Value>>(),
        },
        "indeterminate_reasons": replay.indeterminate_reasons,
        "self_validation": validation_json(tenant, replay),
        "warnings": warnings,
    })
}

/// ca-replay's verdicts beside the ones Entra recorded in `appliedConditionalAccessPolicies`,
/// per policy: a matrix of Entra's word against ca-replay's, the agreement, the first
/// disagreements. Pairs ca-replay finds indeterminate are counted apart, not as disagreements.
fn validation_json(tenant: &Tenant, replay: &Replay) -> Value {
    let mut per: BTreeMap<usize, (u64, u64, u64, Map<String, Value>)> = BTreeMap::new();
    for ((pi, entra, ours), n) in &replay.validation {
        let e = per.entry(*pi).or_default();
        if *ours == "unknown" {
            e.2 += n;
        } else {
            e.0 += n;
            if entra == ours {
                e.1 += n;
            }
        }
        let row = e.3.entry(entra.to_string()).or_insert_with(|| json!({}));
        row[*ours] = json!(n);
    }
    let ratio = |agreed: u64, compared: u64| {
        if compared == 0 {
            Value::Null
        } else {
            json!((agreed as f64 / compared as f64 * 10_000.0).round() / 10_000.0)
        }
    };
    let (mut compared, mut agreed, mut unknown) = (0, 0, 0);
    let policies: Vec<Value> = per
        .into_iter()
        .filter_map(|(pi, (c, a, u, matrix))| {
            let p = tenant.set.policies.get(pi)?;
            compared += c;
            agreed += a;
            unknown += u;
            Some(json!({
                "id": p.id, "name": p.display_name, "state": p.state.as_str(),
                "compared": c, "agreed": a, "agreement": ratio(a, c), "indeterminate": u,
                "matrix": matrix,
            }))
        })
        .collect();
    let disagreements: Vec<Value> = replay
        .disagreements
        .iter()
        .filter_map(|d| {
            let p = tenant.set.policies.get(d.policy)?;
            Some(json!({
                "signin_id": d.signin_id, "created_at": d.created_at.to_rfc3339(),
                "user_principal_name": d.user_principal_name,
                "policy_id": p.id, "policy_name": p.display_name,
                "entra": d.entra, "ca_replay": d.ours, "reason": d.reason,
            }))
        })
        .collect();
    json!({
        "compared": compared,
        "agreed": agreed,
        "agreement": ratio(agreed, compared),
        "indeterminate": unknown,
        "policies": policies,
        "disagreements_first": disagreements,
    })
}

/// The columns of `users.csv`: one row per affected user and policy.
pub const USER_COLUMNS: [&str; 10] = [
    "user_id",
    "user_principal_name",
    "policy_id",
    "policy_name",
    "policy_state",
    "impact",
    "signins",
    "first_seen",
    "last_seen",
    "apps",
];

pub fn users_csv(tenant: &Tenant, affected: &Affected) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    // Writing to a Vec cannot fail.
    let _ = w.write_record(USER_COLUMNS);
    for r in &affected.users {
        let Some(p) = tenant.set.policies.get(r.policy) else {
            continue;
        };
        let time = |t: &chrono::DateTime<chrono::Utc>| {
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        };
        let apps = r.apps.iter().cloned().collect::<Vec<_>>().join("; ");
        let record = [
            csv_cell(&r.user_id).into_owned(),
            csv_cell(&r.user_principal_name).into_owned(),
            csv_cell(&p.id).into_owned(),
            csv_cell(&p.display_name).into_owned(),
            p.state.as_str().to_owned(),
            r.impact.as_str().to_owned(),
            r.signins.to_string(),
            time(&r.first_seen),
            time(&r.last_seen),
            csv_cell(&apps).into_owned(),
        ];
        let _ = w.write_record(&record);
    }
    w.into_inner().unwrap_or_default()
}

/// What the writers need that must come from the original inputs, because it looks sign-ins
/// up in the directory or evaluates them again: the break-glass check, the exclusion, coverage
/// and legacy-migration checks and the sign-ins `report.html` explains
/// (`collect::Collector::finish`).
pub struct Prepared {
    pub break_glass: crate::checks::breakglass::Report,
    /// `exclusions`, `coverage` and `legacy_migration`, as `summary.json` has them.
    pub checks: Value,
    pub samples: Vec<html::Sample>,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Privacy(#[from] crate::privacy::PrivacyError),
}

/// The report files, in the order they are written.
pub const FILES: [&str; 6] = [
    "summary.json",
    "report.md",
    "report.html",
    "details.csv",
    "users.csv",
    "details.parquet",
];

/// Receives each rendered report file: (name, bytes).
type Emit<'a> = dyn FnMut(&str, Vec<u8>) -> Result<(), WriteError> + 'a;

/// Renders the report files but the detail files, handing each to `emit(name, bytes)`, and
/// returns the gates of `tenant.config.gates`, checked. With a pseudonymizer, the summary's
/// strings go through it (before the gates are checked, so their messages are pseudonymous too)
/// and the summary says so; the other inputs must have been pseudonymized already (see
/// [`write_pseudonymized`]).
#[allow(clippy::too_many_arguments)]
fn render(
    out: &Path,
    tenant: &Tenant,
    ingest: &IngestReport,
    replay: &Replay,
    options: BuildOptions,
    prepared: Prepared,
    affected: &Affected,
    written: &details::DetailsWritten,
    privacy: Option<&mut crate::privacy::Pseudonymizer>,
    emit: &mut Emit<'_>,
) -> Result<Vec<gates::GateResult>, WriteError> {
    let mut summary = summary_json(tenant, ingest, replay, affected, options);
    let csv_note = written.csv_note();
    if let (Some(note), Err(details::CsvSkipped::TooLong), Some(Value::Array(w))) =
        (&csv_note, written.csv, summary.get_mut("warnings"))
    {
        w.push(json!(note));
    }
    summary["details"] = json!({
        "rows": written.rows,
        "csv_written": written.csv.is_ok(),
        "csv_note": csv_note,
    });
    summary["trend"] = trend::since_previous(out, &summary);
    summary["break_glass"] = serde_json::to_value(&prepared.break_glass).unwrap_or(Value::Null);
    if let Value::Object(checks) = prepared.checks {
        for (k, v) in checks {
            summary[k] = v;
        }
    }
    if let Some(pz) = privacy {
        pz.json(&mut summary)?;
        summary["pseudonymized"] = json!(true);
        summary["pseudonym_key_id"] = json!(pz.key_id());
    }
    let gate_results = gates::evaluate(
        &tenant.config.gates,
        &gates::Measured::from_summary(&summary),
    );
    summary["gates"] = serde_json::to_value(&gate_results).unwrap_or(Value::Null);
    let mut text = serde_json::to_string_pretty(&summary).unwrap_or_default();
    text.push('\n');
    emit("summary.json", text.into_bytes())?;
    emit(
        "report.md",
        markdown::render(tenant, &summary, affected).into_bytes(),
    )?;
    let page = html::render(tenant, prepared.samples, replay, &summary, affected)
        .map_err(|e| std::io::Error::other(format!("rendering report.html: {e:#}")))?;
    emit("report.html", page.into_bytes())?;
    emit("users.csv", users_csv(tenant, affected))?;
    Ok(gate_results)
}

/// Writes `summary.json`, `report.md`, `report.html`, `users.csv`, and moves or writes
/// `details.csv` and `details.parquet`, into `out`, each atomically. Checks the gates of
/// `tenant.config.gates` and returns them (each is in the reports too).
pub fn write(
    out: &Path,
    tenant: &Tenant,
    ingest: &IngestReport,
    replay: &Replay,
    collected: Collected,
    options: BuildOptions,
) -> std::io::Result<Vec<gates::GateResult>> {
    let mut emit = |name: &str, bytes: Vec<u8>| -> Result<(), WriteError> {
        Ok(write_atomic(&out.join(name), &bytes)?)
    };
    let Collected {
        prepared,
        affected,
        details,
        written,
    } = collected;
    let gates = render(
        out, tenant, ingest, replay, options, prepared, &affected, &written, None, &mut emit,
    )
    .map_err(|e| match e {
        WriteError::Io(e) => e,
        other => std::io::Error::other(other.to_string()),
    })?;
    match details {
        DetailFiles::Staged { csv, parquet } => {
            std::fs::create_dir_all(out)?;
            match csv {
                Some(csv) => std::fs::rename(csv, out.join("details.csv"))?,
                None => remove_stale(out, "details.csv")?,
            }
            std::fs::rename(parquet, out.join("details.parquet"))?;
        }
        DetailFiles::Memory { csv, parquet } => {
            match csv {
                Some(csv) => write_atomic(&out.join("details.csv"), &csv)?,
                None => remove_stale(out, "details.csv")?,
            }
            write_atomic(&out.join("details.parquet"), &parquet)?;
        }
    }
    Ok(gates)
}

/// Removes a report file an earlier run left in `out` that this run does not write, so that
/// the folder holds no file of another run.
fn remove_stale(out: &Path, name: &str) -> std::io::Result<()> {
    match std::fs::remove_file(out.join(name)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Replays sign-ins held in memory and writes the reports ([`write`]): for tests and callers
/// that already hold every sign-in.
pub fn replay_and_write(
    out: &Path,
    tenant: &Tenant,
    signins: &[SignIn],
    ingest: &IngestReport,
    details: crate::replay::Details,
    options: BuildOptions,
) -> std::io::Result<(Replay, Vec<gates::GateResult>)> {
    let (replay, batch) = crate::replay::run_batch(tenant, signins, details);
    let io = |e: WriteError| match e {
        WriteError::Io(e) => e,
        other => std::io::Error::other(other.to_string()),
    };
    let mut c = collect::Collector::in_memory(tenant, details::CsvWhen::Auto).map_err(io)?;
    c.add(signins.to_vec(), batch, &replay.registration_clocks, None)
        .map_err(io)?;
    let collected = c.finish(&replay).map_err(io)?;
    let gates = write(out, tenant, ingest, &replay, collected, options)?;
    Ok((replay, gates))
}

/// [`write`], pseudonymized (`run --pseudonymize`): the collector made the detail files and
/// affected users from pseudonymized sign-ins, in memory; here the replay's texts, the ingest
/// diagnostics, the policies' names and the explained samples are pseudonymized in place
/// ([`pseudonymize::apply`]); the files are rendered from those, the summary's every string
/// goes through the pseudonymizer once more, and every file is checked for a value of the input
/// ([`crate::privacy::LeakCheck`]). Nothing is written unless every file passes.
pub fn write_pseudonymized(
    out: &Path,
    tenant: &mut Tenant,
    ingest: &mut IngestReport,
    replay: &mut Replay,
    collected: Collected,
    options: BuildOptions,
    pz: &mut crate::privacy::Pseudonymizer,
) -> Result<Vec<gates::GateResult>, WriteError> {
    let Collected {
        mut prepared,
        affected,
        details,
        written,
    } = collected;
    pseudonymize::apply(pz, tenant, ingest, replay, &mut prepared)?;
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut emit = |name: &str, bytes: Vec<u8>| -> Result<(), WriteError> {
        files.push((name.to_owned(), bytes));
        Ok(())
    };
    let gate_results = render(
        out,
        tenant,
        ingest,
        replay,
        options,
        prepared,
        &affected,
        &written,
        Some(&mut *pz),
        &mut emit,
    )?;
    match details {
        DetailFiles::Memory { csv, parquet } => {
            match csv {
                Some(csv) => files.push(("details.csv".into(), csv)),
                None => remove_stale(out, "details.csv")?,
            }
            files.push(("details.parquet".into(), parquet));
        }
        DetailFiles::Staged { .. } => {
            return Err(WriteError::Io(std::io::Error::other(
                "a pseudonymized run keeps its detail files in memory for the leak check",
            )))
        }
    }
    // In the order of FILES.
    files.sort_by_key(|(name, _)| FILES.iter().position(|f| f == name));
    let check = pz.leak_check()?;
    for (name, bytes) in &files {
        check.file(name, bytes)?;
    }
    for (name, bytes) in &files {
        write_atomic(&out.join(name), bytes)?;
    }
    Ok(gate_results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_prefixes_are_neutralised() {
        assert_eq!(csv_cell("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(csv_cell("@x"), "'@x");
        assert_eq!(csv_cell("-1"), "'-1");
        assert_eq!(csv_cell("alice"), "alice");
    }
}
