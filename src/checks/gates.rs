//! CI gates: limits from `[gates]` in `ca-replay.toml` and the matching command-line flags
//! (a flag wins over the file). A run crosses a gate when a measured number exceeds its limit;
//! the command then exits 1. Each configured gate is one [`GateResult`], shown in the reports,
//! on stderr, in `$GITHUB_STEP_SUMMARY` and as one test case of the JUnit file.
//!
//! The numbers are what the replay compares: in `run`, the proposed set (enabled + report-only)
//! against the current one (enabled); in `diff`, the head policies against the base ones.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::Gates;

/// The numbers the gates look at.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Measured {
    pub new_blocked_users: u64,
    pub new_prompted_users: u64,
    pub new_registering_users: u64,
    /// Break-glass findings of severity `error` (an account could be locked out, or the
    /// set-up is wrong, e.g. none configured).
    pub break_glass_errors: u64,
    /// The first break-glass error, to say what it is.
    pub break_glass_first: Option<String>,
    /// Self-validation: the share of (sign-in, policy) pairs where ca-replay agrees with the
    /// verdict Entra recorded; `None` when no pair could be compared.
    pub agreement: Option<f64>,
    pub agreement_compared: u64,
}

impl Measured {
    /// Reads the numbers from a `run`'s `summary.json` value.
    pub fn from_summary(summary: &Value) -> Measured {
        let n = |v: &Value| v.as_u64().unwrap_or(0);
        let d = &summary["difference"];
        let findings = summary["break_glass"]["findings"].as_array();
        let errors: Vec<&Value> = findings
            .map(|f| f.iter().filter(|f| f["severity"] == "error").collect())
            .unwrap_or_default();
        let first = errors.first().map(|f| {
            let account = f["account"].as_str().unwrap_or("");
            let policy = f["policy"].as_str().unwrap_or("");
            let what = f["what"].as_str().unwrap_or("");
            [account, policy, what]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(": ")
        });
        Measured {
            new_blocked_users: n(&d["users_newly_blocked"]),
            new_prompted_users: n(&d["users_newly_prompted"]),
            new_registering_users: n(&d["users_newly_registering"]),
            break_glass_errors: errors.len() as u64,
            break_glass_first: first,
            agreement: summary["self_validation"]["agreement"].as_f64(),
            agreement_compared: n(&summary["self_validation"]["compared"]),
        }
    }
}

impl Measured {
    /// The numbers of a `diff`: the larger of its two views (a change that newly blocks users
    /// once enforced, or once its report-only policies are switched on, crosses the gate), and
    /// the break-glass errors new in head (the standing ones are `lint`'s). No self-validation:
    /// `min_agreement` does not apply to `diff`.
    pub fn from_diff(d: &crate::checks::diff::Diff) -> Measured {
        let (e, p) = (&d.enforced, &d.proposed);
        let first = d
            .break_glass
            .new_in_head
            .iter()
            .find(|f| f.severity == "error")
            .map(|f| {
                [f.account.as_str(), f.policy.as_str(), f.what.as_str()]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(": ")
            });
        Measured {
            new_blocked_users: e.newly_blocked_users.max(p.newly_blocked_users) as u64,
            new_prompted_users: e.newly_prompted_users.max(p.newly_prompted_users) as u64,
            new_registering_users: e.newly_registering_users.max(p.newly_registering_users) as u64,
            break_glass_errors: d.break_glass_new_errors as u64,
            break_glass_first: first,
            agreement: None,
            agreement_compared: 0,
        }
    }
}

/// One configured gate, checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateResult {
    /// The `[gates]` key, e.g. `max_new_blocked_users`.
    pub gate: String,
    pub limit: String,
    pub actual: String,
    pub passed: bool,
    /// One sentence: what was measured against what.
    pub message: String,
}

/// Every gate `gates` sets, checked against `m`, in a fixed order. Gates left unset are not
/// listed (no gate, nothing to cross).
pub fn evaluate(gates: &Gates, m: &Measured) -> Vec<GateResult> {
    let mut out = Vec::new();
    let mut max = |gate: &'static str, limit: Option<u64>, actual: u64, what: &str| {
        if let Some(limit) = limit {
            let passed = actual <= limit;
            out.push(GateResult {
                gate: gate.into(),
                limit: limit.to_string(),
                actual: actual.to_string(),
                passed,
                message: format!(
                    "{actual} user(s) {what}, {} the limit of {limit}",
                    if passed { "within" } else { "over" }
                ),
            });
        }
    };
    max(
        "max_new_blocked_users",
        gates.max_new_blocked_users,
        m.new_blocked_users,
        "newly blocked",
    );
    max(
        "max_new_prompted_users",
        gates.max_new_prompted_users,
        m.new_prompted_users,
        "newly prompted for MFA",
    );
    max(
        "max_new_registering_users",
        gates.max_new_registering_users,
        m.new_registering_users,
        "newly sent to register for MFA",
    );
    if gates.break_glass == Some(true) {
        let passed = m.break_glass_errors == 0;
        out.push(GateResult {
            gate: "break_glass".into(),
            limit: "0 errors".into(),
            actual: format!("{} error(s)", m.break_glass_errors),
            passed,
            message: match &m.break_glass_first {
                Some(first) if !passed => format!(
                    "{} break-glass error(s), the first: {first}",
                    m.break_glass_errors
                ),
                _ => "no break-glass account can be locked out".into(),
            },
        });
    }
    if let Some(min) = gates.min_agreement {
        // No pair to compare is not agreement: the gate cannot pass on no evidence.
        let passed = m.agreement.is_some_and(|a| a >= min);
        out.push(GateResult {
            gate: "min_agreement".into(),
            limit: format!("{:.2}%", min * 100.0),
            actual: match m.agreement {
                Some(a) => format!("{:.2}%", a * 100.0),
                None => "no recorded verdicts".into(),
            },
            passed,
            message: match m.agreement {
                Some(a) => format!(
                    "ca-replay agrees with Entra's recorded verdicts on {:.2}% of {} (sign-in, policy) pairs, {} the minimum of {:.2}%",
                    a * 100.0,
                    m.agreement_compared,
                    if passed { "meeting" } else { "below" },
                    min * 100.0
                ),
                None => "no sign-in records Entra's verdict for a policy ca-replay evaluates, so agreement cannot be measured".into(),
            },
        });
    }
    out
}

/// Whether any gate was crossed.
pub fn crossed(results: &[GateResult]) -> bool {
    results.iter().any(|r| !r.passed)
}

/// Escapes text for XML content and attribute values; drops the characters XML 1.0 cannot
/// carry at all (control characters other than tab, newline, carriage return).
fn xml(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\t' | '\n' | '\r' => o.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => o.push('\u{FFFD}'),
            c => o.push(c),
        }
    }
    o
}

/// A JUnit XML report: one test suite named `suite`, one test case per gate (a crossed gate is
/// a failure) followed by `extra` cases (e.g. each lint finding), so any CI shows them as tests.
pub fn junit(suite: &str, results: &[GateResult], extra: &[JunitCase]) -> String {
    let mut cases: Vec<JunitCase> = results
        .iter()
        .map(|r| JunitCase {
            class: "gates".into(),
            name: r.gate.clone(),
            failure: (!r.passed).then(|| r.message.clone()),
            output: format!("limit {}, measured {}: {}", r.limit, r.actual, r.message),
        })
        .collect();
    cases.extend(extra.iter().cloned());
    let failures = cases.iter().filter(|c| c.failure.is_some()).count();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str(&format!(
        "<testsuites name=\"ca-replay\" tests=\"{}\" failures=\"{failures}\">\n  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\">\n",
        cases.len(),
        xml(suite),
        cases.len()
    ));
    for c in &cases {
        x.push_str(&format!(
            "    <testcase classname=\"{}\" name=\"{}\">\n",
            xml(&c.class),
            xml(&c.name)
        ));
        if let Some(f) = &c.failure {
            x.push_str(&format!(
                "      <failure message=\"{}\">{}</failure>\n",
                xml(f),
                xml(f)
            ));
        }
        if !c.output.is_empty() {
            x.push_str(&format!(
                "      <system-out>{}</system-out>\n",
                xml(&c.output)
            ));
        }
        x.push_str("    </testcase>\n");
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

/// A JUnit test case besides the gates.
#[derive(Debug, Clone, PartialEq)]
pub struct JunitCase {
    pub class: String,
    pub name: String,
    /// `Some(message)` when the case fails.
    pub failure: Option<String>,
    pub output: String,
}

/// The Markdown lines for the gates (for report.md and the job summary); empty without gates.
pub fn markdown(results: &[GateResult]) -> String {
    if results.is_empty() {
        return String::new();
    }
    let crossed = results.iter().filter(|r| !r.passed).count();
    let mut w = String::from("\n## Gates\n\n");
    if crossed == 0 {
        w.push_str(&format!("All {} gate(s) pass.\n\n", results.len()));
    } else {
        w.push_str(&format!(
            "**{crossed} of {} gate(s) crossed**: the command exits 1.\n\n",
            results.len()
        ));
    }
    w.push_str("| gate | limit | measured | |\n|---|---:|---:|---|\n");
    for r in results {
        w.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            r.gate,
            crate::report::markdown::md(&r.limit),
            crate::report::markdown::md(&r.actual),
            if r.passed { "pass" } else { "**crossed**" }
        ));
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gates() -> Gates {
        Gates {
            max_new_blocked_users: Some(0),
            max_new_prompted_users: Some(10),
            max_new_registering_users: None,
            break_glass: Some(true),
            min_agreement: Some(0.99),
        }
    }

    #[test]
    fn limits_are_inclusive_and_unset_gates_are_not_listed() {
        let m = Measured {
            new_prompted_users: 10,
            agreement: Some(0.99),
            agreement_compared: 100,
            ..Measured::default()
        };
        let r = evaluate(&gates(), &m);
        assert_eq!(
            r.iter().map(|r| r.gate.as_str()).collect::<Vec<_>>(),
            [
                "max_new_blocked_users",
                "max_new_prompted_users",
                "break_glass",
                "min_agreement"
            ]
        );
        assert!(!crossed(&r), "{r:#?}");
        let m = Measured {
            new_blocked_users: 1,
            new_prompted_users: 11,
            ..m
        };
        let r = evaluate(&gates(), &m);
        assert_eq!(r.iter().filter(|r| !r.passed).count(), 2);
        assert!(
            r[0].message.contains("over the limit of 0"),
            "{}",
            r[0].message
        );
        assert!(evaluate(&Gates::default(), &m).is_empty());
    }

    #[test]
    fn agreement_without_evidence_does_not_pass() {
        let r = evaluate(&gates(), &Measured::default());
        let a = r.iter().find(|r| r.gate == "min_agreement").unwrap();
        assert!(!a.passed);
        assert_eq!(a.actual, "no recorded verdicts");
    }

    #[test]
    fn break_glass_gate_names_the_first_error() {
        let summary = serde_json::json!({
            "difference": {"users_newly_blocked": 2},
            "break_glass": {"findings": [
                {"severity": "warning", "account": "a", "policy": "", "what": "x"},
                {"severity": "error", "account": "bg1@contoso.com", "policy": "CA010", "what": "could block"}
            ]},
            "self_validation": {"agreement": null, "compared": 0}
        });
        let m = Measured::from_summary(&summary);
        assert_eq!(m.new_blocked_users, 2);
        assert_eq!(m.break_glass_errors, 1);
        let r = evaluate(&gates(), &m);
        let bg = r.iter().find(|r| r.gate == "break_glass").unwrap();
        assert!(!bg.passed);
        assert!(bg.message.contains("bg1@contoso.com: CA010: could block"));
    }

    #[test]
    fn junit_escapes_and_counts_failures() {
        let r = evaluate(
            &gates(),
            &Measured {
                new_blocked_users: 3,
                agreement: Some(1.0),
                ..Measured::default()
            },
        );
        let extra = [JunitCase {
            class: "lint".into(),
            name: "policy <\"CA&1\">".into(),
            failure: Some("bad\u{1}".into()),
            output: String::new(),
        }];
        let x = junit("ca-replay run", &r, &extra);
        assert!(x.contains("tests=\"5\" failures=\"2\""), "{x}");
        assert!(
            x.contains("name=\"policy &lt;&quot;CA&amp;1&quot;&gt;\""),
            "{x}"
        );
        assert!(x.contains("bad\u{FFFD}"), "{x}");
        assert!(!x.contains('\u{1}'));
    }
}
