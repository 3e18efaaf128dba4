//! Data-driven semantic cases: one JSON file per rule under tests/cases/<area>/, each run as its
//! own test named by its path, so a failure names the rule. Format: tests/cases/README.md.

#[path = "../common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};

use ca_replay::engine::{combine, not_evaluated, SetKind};
use ca_replay::policy::{BuildOptions, Severity};
use libtest_mimic::{Arguments, Failed, Trial};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    rule: String,
    citation: String,
    #[serde(default)]
    allow_unsupported: bool,
    #[serde(default)]
    directory: Option<Value>,
    #[serde(default)]
    config: Option<Value>,
    #[serde(default)]
    policies: Vec<Value>,
    #[serde(default, rename = "identityProtection")]
    identity_protection: Option<Value>,
    #[serde(default)]
    signins: Vec<Value>,
    #[serde(default)]
    expect: Vec<Expect>,
    #[serde(default)]
    expect_findings: Option<Vec<ExpectFinding>>,
    #[serde(default)]
    expect_exclusions: Option<ExpectExclusions>,
    #[serde(default)]
    expect_break_glass: Option<ExpectBreakGlass>,
}

/// The break-glass check (`checks::breakglass`) with the case's sign-ins.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectBreakGlass {
    /// Every finding of the check, no more (`[]`: no false alarms), paired one to one.
    findings: Vec<ExpectBreakGlassFinding>,
    /// The accounts the check found, in its order.
    #[serde(default)]
    accounts: Option<Vec<String>>,
    /// The likely accounts it names when none are configured, in its order.
    #[serde(default)]
    candidates: Option<Vec<String>>,
    /// Some ways a policy leaves an account out.
    #[serde(default)]
    exclusions: Vec<ExpectLeftOut>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectBreakGlassFinding {
    severity: String,
    /// A substring of the account (`group <id>` for a group); empty: the finding names none.
    #[serde(default)]
    account: String,
    /// The policy id, or a substring of its name; empty: the finding names none.
    #[serde(default)]
    policy: String,
    /// A substring of the finding's text.
    #[serde(default)]
    contains: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectLeftOut {
    /// A substring of the account.
    account: String,
    /// A substring of one of its entries (`mfa-all: users: excluded by excludeGroups[0] …`).
    contains: String,
}

/// The exclusion check (`checks::exclusions`) after replaying the case's sign-ins.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectExclusions {
    /// Every finding of the check, no more (`[]`: no false alarms).
    findings: Vec<ExpectExclusionFinding>,
    /// Some exclude entries and what the check says of them.
    #[serde(default)]
    entries: Vec<ExpectEntry>,
    /// Every user of the coverage gap, by label.
    #[serde(default)]
    gap_users: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectExclusionFinding {
    severity: String,
    kind: String,
    /// The policy id (absent for a coverage gap).
    #[serde(default)]
    policy: String,
    /// A substring of the entry's label (`excludeGroups[0]`).
    #[serde(default)]
    entry: String,
    /// A substring of the finding's text.
    #[serde(default)]
    contains: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectEntry {
    policy: String,
    entry: String,
    #[serde(default)]
    signins: Option<u64>,
    #[serde(default)]
    users: Option<u64>,
    #[serde(default)]
    members: Option<u64>,
    #[serde(default)]
    members_signed_in: Option<u64>,
    #[serde(default)]
    status: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    signin: String,
    #[serde(default)]
    policy: Option<String>,
    #[serde(default)]
    set: Option<String>,
    impact: String,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectFinding {
    severity: String,
    pointer: String,
    contains: String,
}

fn cases(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            cases(&p, out);
        } else if p.extension().is_some_and(|e| e == "json") {
            out.push(p);
        }
    }
}

fn run_case(path: &Path) -> Result<(), Failed> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("read: {e}"))?;
    let raw: Value = serde_json::from_str(&text).map_err(|e| format!("case JSON: {e}"))?;
    let case: Case =
        serde_json::from_value(raw.clone()).map_err(|e| format!("case schema: {e}"))?;
    if case.rule.trim().is_empty() || !case.citation.contains('§') {
        return Err(
            "a case needs a `rule` and a `citation` naming an entra-semantics.md section (§)"
                .into(),
        );
    }
    let _ = (
        &case.directory,
        &case.config,
        &case.policies,
        &case.identity_protection,
        &case.signins,
    );
    let options = BuildOptions {
        allow_unsupported: case.allow_unsupported,
    };
    let tenant = common::tenant(&raw, options);
    let mut errors = Vec::new();

    match &case.expect_findings {
        None => {
            let blocking = tenant.set.blocking_findings(options);
            if !blocking.is_empty() {
                let list: Vec<String> = blocking.iter().map(|f| f.to_string()).collect();
                errors.push(format!(
                    "unexpected blocking findings:\n  {}",
                    list.join("\n  ")
                ));
            }
        }
        Some(expected) => {
            for x in expected {
                let found = tenant.set.findings.iter().any(|f| {
                    f.severity.as_str() == x.severity
                        && f.pointer == x.pointer
                        && f.message.contains(&x.contains)
                });
                if !found {
                    let all: Vec<String> =
                        tenant.set.findings.iter().map(|f| f.to_string()).collect();
                    errors.push(format!(
                        "missing finding {} {} containing `{}`; findings:\n  {}",
                        x.severity,
                        x.pointer,
                        x.contains,
                        all.join("\n  ")
                    ));
                }
            }
            let extra = tenant
                .set
                .findings
                .iter()
                .filter(|f| f.severity != Severity::Warning)
                .filter(|f| {
                    !expected
                        .iter()
                        .any(|x| f.severity.as_str() == x.severity && f.pointer == x.pointer)
                });
            for f in extra {
                errors.push(format!("unexpected finding: {f}"));
            }
        }
    }

    let signins = common::signins(&raw);
    let evals = common::evaluate_all(&tenant, &signins);
    for x in &case.expect {
        let Some(si) = signins.iter().position(|s| s.id == x.signin) else {
            errors.push(format!("no sign-in `{}`", x.signin));
            continue;
        };
        match (&x.policy, &x.set) {
            (Some(pid), None) => {
                let Some(pi) = tenant.set.policies.iter().position(|p| &p.id == pid) else {
                    errors.push(format!("no policy `{pid}`"));
                    continue;
                };
                if let Some(why) = not_evaluated(&signins[si]) {
                    if x.impact != "not_evaluated" {
                        errors.push(format!(
                            "{} × {pid}: expected `{}`, but the sign-in is not evaluated ({why})",
                            x.signin, x.impact
                        ));
                    }
                    continue;
                }
                let e = &evals[si][pi];
                let p = &tenant.set.policies[pi];
                let user = tenant.dir.user_by_id(&signins[si].user_id);
                let reason =
                    ca_replay::engine::explain::reason(&tenant.dir, &tenant.set, p, e, user);
                if e.impact.as_str() != x.impact {
                    let trace = ca_replay::engine::explain::trace_lines(
                        &tenant.dir,
                        &tenant.set,
                        p,
                        e,
                        user,
                    );
                    errors.push(format!(
                        "{} × {}: expected `{}`, got `{}` ({reason})\n    trace: {}",
                        x.signin,
                        pid,
                        x.impact,
                        e.impact,
                        trace.join("; ")
                    ));
                } else if let Some(r) = &x.reason {
                    if !reason.contains(r.as_str()) {
                        errors.push(format!(
                            "{} × {}: reason `{reason}` lacks `{r}`",
                            x.signin, pid
                        ));
                    }
                }
            }
            (None, Some(set)) => {
                let kind = match set.as_str() {
                    "current" => SetKind::Current,
                    "proposed" => SetKind::Proposed,
                    other => {
                        errors.push(format!("unknown set `{other}`"));
                        continue;
                    }
                };
                if let Some(why) = not_evaluated(&signins[si]) {
                    if x.impact != "not_evaluated" {
                        errors.push(format!(
                            "{} {set} set: expected `{}`, but the sign-in is not evaluated ({why})",
                            x.signin, x.impact
                        ));
                    }
                    continue;
                }
                let evs: Vec<_> = evals[si].iter().map(|e| Some(*e)).collect();
                let o = combine(&tenant.set, &evs, kind);
                if o.impact.as_str() != x.impact {
                    errors.push(format!(
                        "{} {set} set: expected `{}`, got `{}`",
                        x.signin, x.impact, o.impact
                    ));
                }
            }
            _ => errors.push("an expectation names exactly one of `policy` or `set`".into()),
        }
    }
    if let Some(x) = &case.expect_exclusions {
        check_exclusions(&tenant, &signins, x, &mut errors);
    }
    if let Some(x) = &case.expect_break_glass {
        check_break_glass(&tenant, &signins, x, &mut errors);
    }
    if case.expect.is_empty()
        && case.expect_findings.is_none()
        && case.expect_exclusions.is_none()
        && case.expect_break_glass.is_none()
    {
        errors.push("a case must expect something".into());
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}\n  rule: {}\n  {}",
            path.display(),
            case.rule,
            errors.join("\n  ")
        )
        .into())
    }
}

/// Replays the case and runs the exclusion check against `x`.
fn check_exclusions(
    tenant: &ca_replay::tenant::Tenant,
    signins: &[ca_replay::signin::SignIn],
    x: &ExpectExclusions,
    errors: &mut Vec<String>,
) {
    use ca_replay::checks::exclusions;
    use ca_replay::replay::{self, Details};
    let replay = replay::run(tenant, signins, Details::Applied);
    let report = exclusions::check(tenant, signins, &replay);
    let matches = |f: &exclusions::Finding, e: &ExpectExclusionFinding| {
        f.severity.as_str() == e.severity
            && f.kind == e.kind
            && f.policy_id == e.policy
            && f.entry.contains(&e.entry)
            && f.what.contains(&e.contains)
    };
    let all = || {
        report
            .findings
            .iter()
            .map(|f| {
                format!(
                    "{} {} {} `{}`: {}",
                    f.severity.as_str(),
                    f.kind,
                    f.policy_id,
                    f.entry,
                    f.what
                )
            })
            .collect::<Vec<_>>()
            .join("\n    ")
    };
    for e in &x.findings {
        if !report.findings.iter().any(|f| matches(f, e)) {
            errors.push(format!(
                "missing exclusion finding {} {} {} `{}` containing `{}`; findings:\n    {}",
                e.severity,
                e.kind,
                e.policy,
                e.entry,
                e.contains,
                all()
            ));
        }
    }
    for f in &report.findings {
        if !x.findings.iter().any(|e| matches(f, e)) {
            errors.push(format!(
                "unexpected exclusion finding {} {} {} `{}`: {}",
                f.severity.as_str(),
                f.kind,
                f.policy_id,
                f.entry,
                f.what
            ));
        }
    }
    for e in &x.entries {
        let Some(item) = report
            .entries
            .iter()
            .find(|i| i.policy_id == e.policy && i.entry.contains(&e.entry))
        else {
            let listed: Vec<String> = report
                .entries
                .iter()
                .map(|i| format!("{} {}", i.policy_id, i.entry))
                .collect();
            errors.push(format!(
                "no exclude entry `{}` of {}; entries: {}",
                e.entry,
                e.policy,
                listed.join("; ")
            ));
            continue;
        };
        let checks = [
            ("signins", e.signins, item.signins),
            ("users", e.users, item.users),
            ("members", e.members, item.members),
            (
                "members_signed_in",
                e.members_signed_in,
                item.members_signed_in,
            ),
        ];
        for (name, want, got) in checks {
            if want.is_some() && want != got {
                errors.push(format!(
                    "{} `{}`: {name} expected {want:?}, got {got:?}",
                    e.policy, item.entry
                ));
            }
        }
        if let Some(status) = &e.status {
            if status != item.status {
                errors.push(format!(
                    "{} `{}`: status expected `{status}`, got `{}`",
                    e.policy, item.entry, item.status
                ));
            }
        }
    }
    if let Some(want) = &x.gap_users {
        let mut got: Vec<&str> = report
            .coverage_gap
            .iter()
            .flat_map(|g| g.first.iter().map(String::as_str))
            .collect();
        got.sort();
        let mut want: Vec<&str> = want.iter().map(String::as_str).collect();
        want.sort();
        if got != want {
            errors.push(format!(
                "coverage gap users: expected {want:?}, got {got:?}"
            ));
        }
    }
}

/// Runs the break-glass check (registration clocks as the replay computes them) against `x`.
fn check_break_glass(
    tenant: &ca_replay::tenant::Tenant,
    signins: &[ca_replay::signin::SignIn],
    x: &ExpectBreakGlass,
    errors: &mut Vec<String>,
) {
    use ca_replay::checks::breakglass::{self, Finding};
    let clocks = ca_replay::replay::registration_clocks(tenant, signins);
    let report = breakglass::check(tenant, signins, &clocks);
    let named = |got: &str, want: &str| {
        if want.is_empty() {
            got.is_empty()
        } else {
            got.contains(want)
        }
    };
    // A finding's policy is its display name (the id when it has none).
    let policy = |f: &Finding, want: &str| {
        named(&f.policy, want)
            || tenant
                .set
                .policies
                .iter()
                .any(|p| p.id == want && p.display_name == f.policy)
    };
    let matches = |f: &Finding, e: &ExpectBreakGlassFinding| {
        f.severity == e.severity
            && named(&f.account, &e.account)
            && policy(f, &e.policy)
            && f.what.contains(&e.contains)
    };
    let show = |f: &Finding| format!("{} [{}] [{}]: {}", f.severity, f.account, f.policy, f.what);
    // Pair expectations and findings one to one (augmenting paths), so that one loose
    // expectation cannot stand for two findings.
    let edges: Vec<Vec<usize>> = x
        .findings
        .iter()
        .map(|e| {
            (0..report.findings.len())
                .filter(|&i| matches(&report.findings[i], e))
                .collect()
        })
        .collect();
    let mut owner: Vec<Option<usize>> = vec![None; report.findings.len()];
    fn augment(
        e: usize,
        edges: &[Vec<usize>],
        owner: &mut [Option<usize>],
        seen: &mut [bool],
    ) -> bool {
        for &f in &edges[e] {
            if seen[f] {
                continue;
            }
            seen[f] = true;
            if owner[f].is_none_or(|o| augment(o, edges, owner, seen)) {
                owner[f] = Some(e);
                return true;
            }
        }
        false
    }
    let mut paired = vec![false; x.findings.len()];
    for (e, slot) in paired.iter_mut().enumerate() {
        let mut seen = vec![false; report.findings.len()];
        *slot = augment(e, &edges, &mut owner, &mut seen);
    }
    let all = || {
        report
            .findings
            .iter()
            .map(show)
            .collect::<Vec<_>>()
            .join("\n    ")
    };
    for (e, ok) in x.findings.iter().zip(&paired) {
        if !ok {
            errors.push(format!(
                "missing break-glass finding {} [{}] [{}] containing `{}`; findings:\n    {}",
                e.severity,
                e.account,
                e.policy,
                e.contains,
                all()
            ));
        }
    }
    for (f, o) in report.findings.iter().zip(&owner) {
        if o.is_none() {
            errors.push(format!("unexpected break-glass finding {}", show(f)));
        }
    }
    if let Some(want) = &x.accounts {
        if &report.accounts != want {
            errors.push(format!(
                "break-glass accounts: expected {want:?}, got {:?}",
                report.accounts
            ));
        }
    }
    if let Some(want) = &x.candidates {
        let got: Vec<&str> = report.candidates.iter().map(|(n, _)| n.as_str()).collect();
        if got != *want {
            errors.push(format!(
                "break-glass candidates: expected {want:?}, got {got:?}"
            ));
        }
    }
    for e in &x.exclusions {
        let found = report.exclusions.iter().any(|(account, left_out)| {
            account.contains(&e.account) && left_out.iter().any(|l| l.contains(&e.contains))
        });
        if !found {
            errors.push(format!(
                "no break-glass exclusion of `{}` containing `{}`; exclusions: {:?}",
                e.account, e.contains, report.exclusions
            ));
        }
    }
}

fn main() {
    let args = Arguments::from_args();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut files = Vec::new();
    cases(&root, &mut files);
    let trials = files
        .into_iter()
        .map(|p| {
            let name = p
                .strip_prefix(&root)
                .unwrap_or(&p)
                .with_extension("")
                .display()
                .to_string();
            Trial::test(name, move || run_case(&p))
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
