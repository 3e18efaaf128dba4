//! `ca-replay lint`: the checks that need no sign-ins, for a pull request that changes policies.
//! Policy validation (every finding, with file and JSON pointer), the break-glass accounts'
//! exclusions and the synthetic sweep of their possible sign-ins, the exclusion entries that
//! need no sign-ins to judge (`checks::exclusions::static_findings`). An error-level finding exits 1.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use super::{ExitCode, LintArgs};
use crate::checks::gates::JunitCase;
use crate::checks::{self, breakglass, exclusions};
use crate::policy::{BuildOptions, Severity};
use crate::report::markdown::md;
use crate::tenant::Tenant;

pub fn lint(a: &LintArgs) -> anyhow::Result<ExitCode> {
    let options = BuildOptions {
        allow_unsupported: a.allow_unsupported,
    };
    let tenant = Tenant::load_unchecked(&a.tenant, options)?;
    let blocking = tenant.set.blocking_findings(options);
    let mut cases = Vec::new();
    let mut md_out = String::new();
    let name = tenant
        .root
        .canonicalize()
        .unwrap_or_else(|_| tenant.root.clone())
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let _ = writeln!(md_out, "# ca-replay lint: {}\n", md(&name));

    // Validation: one case per policy (and per file whose policies could not be read).
    let mut per_policy: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for p in &tenant.set.policies {
        per_policy.entry(p.display_name.clone()).or_default();
    }
    for f in &tenant.set.findings {
        let key = if f.policy.is_empty() {
            f.file.display().to_string()
        } else {
            f.policy.clone()
        };
        let e = per_policy.entry(key).or_default();
        if blocking.contains(&f) {
            e.0.push(f.to_string());
        } else {
            e.1.push(f.to_string());
        }
    }
    for f in &tenant.set.findings {
        println!("{f}");
    }
    for p in &tenant.dir.problems {
        println!("warning: {p}");
    }
    for (policy, (errors, warnings)) in &per_policy {
        cases.push(JunitCase {
            class: "validation".into(),
            name: policy.clone(),
            failure: (!errors.is_empty()).then(|| errors.join("\n")),
            output: warnings.join("\n"),
        });
    }
    let _ = writeln!(
        md_out,
        "**Validation**: {} policies, {} finding(s), {} blocking.\n",
        tenant.set.policies.len(),
        tenant.set.findings.len(),
        blocking.len()
    );
    for f in &tenant.set.findings {
        let mark = if blocking.contains(&f) {
            "error"
        } else {
            f.severity.as_str()
        };
        let _ = writeln!(md_out, "- **{mark}** {}", md(&f.to_string()));
    }
    if !tenant.set.findings.is_empty() {
        md_out.push('\n');
    }

    // Break-glass: static exclusions and the synthetic sweep (no real sign-ins here).
    let bg = if blocking.is_empty() {
        Some(breakglass::check(&tenant, &[], &HashMap::new()))
    } else {
        // Policies with blocking findings are not fully compiled: checking them would mislead.
        None
    };
    match &bg {
        None => {
            let _ = writeln!(
                md_out,
                "**Break-glass**: not checked until the blocking findings are fixed.\n"
            );
            cases.push(JunitCase {
                class: "break_glass".into(),
                name: "checked".into(),
                failure: Some(
                    "not checked: the policies have blocking findings (see validation)".into(),
                ),
                output: String::new(),
            });
        }
        Some(r) => {
            let _ = writeln!(
                md_out,
                "**Break-glass**: {} account(s) configured, {} error(s), {} warning(s).\n",
                r.accounts.len(),
                r.errors(),
                r.findings.len() - r.errors()
            );
            let mut per_account = Grouped::default();
            for acc in &r.accounts {
                per_account.expect(acc);
            }
            for f in &r.findings {
                let key = if f.account.is_empty() {
                    "configuration".to_owned()
                } else {
                    f.account.clone()
                };
                let text = if f.policy.is_empty() {
                    f.what.clone()
                } else {
                    format!("{}: {}", f.policy, f.what)
                };
                per_account.add("break-glass", f.severity, key, text, &mut md_out);
            }
            if !r.candidates.is_empty() {
                let list: Vec<String> = r
                    .candidates
                    .iter()
                    .map(|(u, n)| format!("{u} (left out of {n})"))
                    .collect();
                println!(
                    "note: likely break-glass candidates (not trusted until configured): {}",
                    list.join(", ")
                );
                let _ = writeln!(
                    md_out,
                    "\nLikely candidates, excluded from most policies (not trusted until configured in `[break_glass]`): {}",
                    md(&list.join(", "))
                );
            }
            per_account.into_cases("break_glass", &mut cases);
        }
    }
    // Exclusions: placeholders, missing ids, empty groups and roles, unknown memberships, and
    // users left out of every MFA policy (what needs no sign-ins).
    if blocking.is_empty() {
        let findings = exclusions::static_findings(&tenant);
        let count = |s| findings.iter().filter(|f| f.severity == s).count();
        let _ = writeln!(
            md_out,
            "\n**Exclusions**: {} error(s), {} warning(s), {} note(s).\n",
            count(checks::Severity::Error),
            count(checks::Severity::Warning),
            count(checks::Severity::Info)
        );
        let mut per_policy = Grouped::default();
        for f in &findings {
            let key = if f.policy.is_empty() {
                "coverage gap".to_owned()
            } else {
                f.policy.clone()
            };
            let text = if f.entry.is_empty() {
                f.what.clone()
            } else {
                format!("{}: {}", f.entry, f.what)
            };
            per_policy.add("exclusions", f.severity.as_str(), key, text, &mut md_out);
        }
        per_policy.into_cases("exclusions", &mut cases);
        if findings.is_empty() {
            cases.push(JunitCase {
                class: "exclusions".into(),
                name: "checked".into(),
                failure: None,
                output: String::new(),
            });
        }
    }
    let errors = cases.iter().filter(|c| c.failure.is_some()).count();
    let warnings = tenant
        .set
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .count();
    let verdict = if errors == 0 {
        format!("lint passed: {} check(s), no errors", cases.len())
    } else {
        format!(
            "lint failed: {errors} of {} check(s) with errors",
            cases.len()
        )
    };
    eprintln!("{verdict} ({warnings} validation warning(s))");
    let _ = writeln!(md_out, "\n**{}**", md(&verdict));
    super::ci::step_summary(&md_out)?;
    super::ci::conclude("ca-replay lint", &[], &cases, a.junit.as_deref())
}

/// Findings grouped into one JUnit case per key (a policy, an account): its errors fail the
/// case, the rest go to its output. Every finding is also printed and listed in the summary.
#[derive(Default)]
struct Grouped(BTreeMap<String, (Vec<String>, Vec<String>)>);

impl Grouped {
    /// A case for `key` even when nothing is found for it.
    fn expect(&mut self, key: &str) {
        self.0.entry(key.to_owned()).or_default();
    }
    fn add(&mut self, check: &str, severity: &str, key: String, text: String, md_out: &mut String) {
        println!("{severity}: {check} {key}: {text}");
        let _ = writeln!(md_out, "- **{severity}** {}: {}", md(&key), md(&text));
        let e = self.0.entry(key).or_default();
        if severity == "error" {
            e.0.push(text);
        } else {
            e.1.push(text);
        }
    }
    fn into_cases(self, class: &str, cases: &mut Vec<JunitCase>) {
        for (name, (errors, others)) in self.0 {
            cases.push(JunitCase {
                class: class.into(),
                name,
                failure: (!errors.is_empty()).then(|| errors.join("\n")),
                output: others.join("\n"),
            });
        }
    }
}
