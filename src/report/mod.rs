//! Report writers: `summary.json` (the versioned machine contract) and `details.csv` (one row per
//! evaluated sign-in and policy whose impact is not `not_applied`, or all with `--details all`).
//!
//! In: the `Replay`, the tenant and the ingest report. Out: files written atomically (temp file,
//! then rename), byte-identical for identical inputs: keys sorted, rows in sign-in order, no clock.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::domain::Impact;
use crate::engine::SetKind;
use crate::ingest::IngestReport;
use crate::policy::BuildOptions;
use crate::replay::{Replay, Tally};
use crate::signin::SignIn;
use crate::tenant::Tenant;

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

pub fn details_csv(tenant: &Tenant, signins: &[SignIn], replay: &Replay) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    // Writing to a Vec cannot fail.
    let _ = w.write_record(DETAIL_COLUMNS);
    let mut rows: Vec<&crate::replay::DetailRow> = replay.details.iter().collect();
    rows.sort_by_key(|r| (r.signin, r.policy));
    for r in rows {
        let s = &signins[r.signin];
        let p = &tenant.set.policies[r.policy];
        let created = s
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let record = [
            csv_cell(&s.id),
            created.as_str().into(),
            csv_cell(&s.user_id),
            csv_cell(&s.user_principal_name),
            csv_cell(&s.resource_id),
            csv_cell(&p.id),
            csv_cell(&p.display_name),
            p.state.as_str().into(),
            r.impact.as_str().into(),
            r.impact.result_word().into(),
            csv_cell(&r.reason),
        ];
        let _ = w.write_record(record.iter().map(|c| c.as_ref()));
    }
    w.into_inner().unwrap_or_default()
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
    signins: &[SignIn],
    ingest: &IngestReport,
    replay: &Replay,
    options: BuildOptions,
) -> Value {
    let mut skipped: BTreeMap<String, u64> = BTreeMap::new();
    for d in &ingest.skipped {
        *skipped
            .entry(format!("{}: {}", d.field, d.why))
            .or_default() += 1;
    }
    let (from, to) = match (
        signins.iter().map(|s| s.created_at).min(),
        signins.iter().map(|s| s.created_at).max(),
    ) {
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
        .map(|(p, t)| {
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
            "{} sign-in record(s) could not be read and were skipped (see inputs.skipped)",
            ingest.skipped.len()
        ));
    }
    json!({
        "schema_version": SCHEMA_VERSION,
        "inputs": {
            "signin_files": files,
            "records": ingest.records,
            "signins": signins.len(),
            "duplicates": ingest.duplicates,
            "skipped": ingest.skipped.len(),
            "skipped_reasons": skipped,
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
        },
        "indeterminate_reasons": replay.indeterminate_reasons,
        "warnings": warnings,
    })
}

/// Writes `summary.json` and `details.csv` into `out`.
pub fn write(
    out: &Path,
    tenant: &Tenant,
    signins: &[SignIn],
    ingest: &IngestReport,
    replay: &Replay,
    options: BuildOptions,
) -> std::io::Result<()> {
    let summary = summary_json(tenant, signins, ingest, replay, options);
    let mut text = serde_json::to_string_pretty(&summary).unwrap_or_default();
    text.push('\n');
    write_atomic(&out.join("summary.json"), text.as_bytes())?;
    write_atomic(
        &out.join("details.csv"),
        &details_csv(tenant, signins, replay),
    )?;
    let _ = SetKind::Current;
    Ok(())
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
