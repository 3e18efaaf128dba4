//! `ca-replay explain`: one sign-in against every policy, as text for a terminal.
//!
//! In: the tenant, all its sign-ins (the MFA registration clock depends on earlier ones) and a
//! sign-in id (or correlation id). Out: what the log says about the sign-in, the current and
//! proposed outcomes with the policy that decided each, and per policy its impact, every
//! condition checked (which include or exclude entry fired, with nesting), the control that
//! decided, and what Entra itself recorded for that policy when the log carries it.

use std::fmt::Write;

use crate::domain::{Impact, PolicyState};
use crate::engine::{self, combine, explain, Evaluation, Facts, SetKind};
use crate::replay::registration_clocks;
use crate::signin::SignIn;
use crate::tenant::Tenant;

#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("no sign-in has id or correlation id `{0}` ({1} sign-ins read)")]
    NotFound(String, usize),
    #[error("correlation id `{0}` matches {1} sign-ins; pick one id:\n{2}")]
    Ambiguous(String, usize, String),
}

/// Finds the sign-in by id, else by correlation id (case-insensitive).
pub fn find<'a>(signins: &'a [SignIn], id: &str) -> Result<&'a SignIn, ExplainError> {
    find_among(signins, id, signins.len())
}

/// Whether `s` is a sign-in [`find`] could answer for `id`: by its id or its correlation id.
pub fn candidate(s: &SignIn, id: &str) -> bool {
    let id = id.trim();
    s.id.eq_ignore_ascii_case(id)
        || (!s.correlation_id.is_empty() && s.correlation_id.eq_ignore_ascii_case(id))
}

/// [`find`] among the [`candidate`]s kept of `read` sign-ins.
pub fn find_among<'a>(
    signins: &'a [SignIn],
    id: &str,
    read: usize,
) -> Result<&'a SignIn, ExplainError> {
    let id = id.trim();
    if let Some(s) = signins.iter().find(|s| s.id.eq_ignore_ascii_case(id)) {
        return Ok(s);
    }
    let by_correlation: Vec<&SignIn> = signins
        .iter()
        .filter(|s| !s.correlation_id.is_empty() && s.correlation_id.eq_ignore_ascii_case(id))
        .collect();
    match by_correlation.as_slice() {
        [] => Err(ExplainError::NotFound(id.to_owned(), read)),
        [one] => Ok(one),
        many => Err(ExplainError::Ambiguous(
            id.to_owned(),
            many.len(),
            many.iter()
                .map(|s| format!("  {}  {}", s.id, s.created_at.to_rfc3339()))
                .collect::<Vec<_>>()
                .join("\n"),
        )),
    }
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

fn tri(b: Option<bool>) -> &'static str {
    match b {
        Some(true) => "yes",
        Some(false) => "no",
        None => "unknown",
    }
}

/// The explanation of `s` (one of `all`) as text.
pub fn text(tenant: &Tenant, all: &[SignIn], s: &SignIn) -> String {
    text_with_clocks(tenant, &registration_clocks(tenant, all), s)
}

/// [`text`] with the MFA registration clocks already computed (`replay::registration_clocks`).
pub fn text_with_clocks(
    tenant: &Tenant,
    clocks: &std::collections::HashMap<String, i64>,
    s: &SignIn,
) -> String {
    let env = tenant.env(clocks);
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "Sign-in {} at {}", s.id, s.created_at.to_rfc3339());
    let _ = writeln!(
        w,
        "  user        {} ({}; type {})",
        or_dash(&s.user_principal_name),
        or_dash(&s.user_id),
        or_dash(&s.user_type)
    );
    let _ = writeln!(
        w,
        "  app         {} ({}) -> resource {} ({})",
        or_dash(&s.app_display_name),
        or_dash(&s.app_id),
        or_dash(&s.resource_display_name),
        or_dash(&s.resource_id)
    );
    let _ = writeln!(
        w,
        "  client      {} ({}), {}, platform {}",
        or_dash(&s.client_app_used),
        s.client_app.as_str(),
        if s.is_interactive {
            "interactive"
        } else {
            "non-interactive"
        },
        s.platform.as_str()
    );
    let d = &s.device;
    let _ = writeln!(
        w,
        "  device      {} {}, compliant {}, managed {}, join {}",
        or_dash(&d.operating_system),
        or_dash(&d.browser),
        tri(d.is_compliant),
        tri(d.is_managed),
        or_dash(&d.trust_type)
    );
    let _ = writeln!(
        w,
        "  network     {} ({})",
        s.ip_address
            .map_or_else(|| "-".to_owned(), |ip| ip.to_string()),
        or_dash(&s.country)
    );
    let _ = writeln!(
        w,
        "  risk        sign-in {}, aggregated {}",
        s.sign_in_risk.map_or("not in the log", |r| r.as_str()),
        s.risk_level_aggregated
            .map_or("not in the log", |r| r.as_str())
    );
    let _ = writeln!(
        w,
        "  MFA         {} (methods: {})",
        if s.mfa_satisfied {
            "shown in this sign-in"
        } else {
            "not shown"
        },
        if s.authentication_methods.is_empty() {
            "-".to_owned()
        } else {
            s.authentication_methods
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    let _ = writeln!(
        w,
        "  status      {} {}",
        s.error_code,
        or_dash(&s.failure_reason)
    );
    if let Some(why) = engine::not_evaluated(s) {
        let _ = writeln!(w, "\nNot evaluated: {why}.");
        return out;
    }

    let f = Facts::prepare(&env, s, false);
    let evals: Vec<Option<Evaluation>> = tenant
        .set
        .policies
        .iter()
        .map(|p| (p.state != PolicyState::Disabled).then(|| engine::evaluate(&env, p, &f)))
        .collect();
    let _ = writeln!(w);
    for (kind, label) in [
        (SetKind::Current, "Current set (enabled policies)"),
        (SetKind::Proposed, "Proposed set (enabled and report-only)"),
    ] {
        let o = combine(&tenant.set, &evals, kind);
        let by = o
            .decided_by
            .and_then(|i| tenant.set.policies.get(i))
            .map(|p| format!(", decided by {}", p.display_name))
            .unwrap_or_default();
        let unknown = if o.indeterminate > 0 {
            format!(" ({} policies indeterminate)", o.indeterminate)
        } else {
            String::new()
        };
        let _ = writeln!(w, "{label}: {}{by}{unknown}", o.impact.as_str());
    }
    for (p, e) in tenant.set.policies.iter().zip(&evals) {
        let _ = writeln!(w, "\n{} [{}]", p.display_name, p.state.as_str());
        let Some(e) = e else {
            let _ = writeln!(w, "  disabled: not evaluated");
            continue;
        };
        let _ = writeln!(
            w,
            "  impact: {} ({})",
            e.impact.as_str(),
            explain::reason(env.dir, env.set, p, e, f.user)
        );
        for line in explain::trace_lines(env.dir, env.set, p, e, f.user) {
            let _ = writeln!(w, "  {line}");
        }
        let recorded = s
            .applied_policies
            .iter()
            .find(|a| a.id.eq_ignore_ascii_case(&p.id));
        if let Some(a) = recorded {
            let ours = if p.state == PolicyState::Enabled {
                None
            } else {
                Some(e.result())
            };
            let agree = match ours {
                Some(word) if !word.eq_ignore_ascii_case(&a.result) => {
                    format!(" (ca-replay: {word})")
                }
                _ => String::new(),
            };
            let _ = writeln!(w, "  Entra recorded: {}{agree}", a.result);
        }
        if e.impact == Impact::Indeterminate {
            let _ = writeln!(
                w,
                "  (indeterminate: the inputs cannot decide; see the reason above)"
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signin(id: &str, correlation: &str) -> SignIn {
        SignIn {
            id: id.into(),
            correlation_id: correlation.into(),
            ..SignIn::default()
        }
    }

    #[test]
    fn finds_by_id_then_by_correlation_id() {
        let all = vec![signin("A", "c1"), signin("b", "c2"), signin("c", "c2")];
        assert_eq!(find(&all, " a ").unwrap().id, "A");
        assert!(matches!(find(&all, "C1"), Ok(s) if s.id == "A"));
        assert!(matches!(
            find(&all, "c2"),
            Err(ExplainError::Ambiguous(_, 2, _))
        ));
        assert!(matches!(
            find(&all, "zz"),
            Err(ExplainError::NotFound(_, 3))
        ));
    }
}
