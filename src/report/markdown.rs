//! `report.md`: the run in a form that fits a pull-request comment or a CI job summary.
//!
//! In: the `summary.json` value (so the two never disagree) and the affected-user aggregates.
//! Out: Markdown with a one-sentence headline, a table per policy, the most affected users,
//! indeterminate reasons and warnings. Every value that comes from the input is escaped.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::Value;

use super::affected::{self, Affected};
use crate::domain::{Impact, PolicyState};
use crate::tenant::Tenant;

/// Escapes text for a Markdown table cell or line: no markup, no HTML, one line.
pub fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '~' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn num(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

/// "switching on the 3 report-only policies would block 12 users (41 sign-ins), …".
pub fn headline(tenant: &Tenant, summary: &Value) -> String {
    let candidates = tenant
        .set
        .policies
        .iter()
        .filter(|p| p.state == PolicyState::ReportOnly)
        .count() as u64;
    if candidates == 0 {
        return "No report-only policies: the proposed set is the current one, so nothing would change.".into();
    }
    let d = &summary["difference"];
    // Each phrase with `{}` where the users go.
    let parts: Vec<String> = [
        (Impact::Blocked, "users_newly_blocked", "block {}"),
        (
            Impact::PasswordChange,
            "users_newly_password_change",
            "force {} to change their password",
        ),
        (
            Impact::MfaRegistration,
            "users_newly_registering",
            "force {} to register for MFA",
        ),
        (
            Impact::MfaPrompt,
            "users_newly_prompted",
            "prompt {} for MFA",
        ),
        (
            Impact::InteractiveReauth,
            "users_newly_reauth",
            "send {} back to an interactive sign-in",
        ),
    ]
    .iter()
    .filter_map(|(impact, key, phrase)| {
        let users = num(&d[*key]);
        let signins = num(&d["signins_newly"][impact.as_str()]);
        (users > 0 || signins > 0).then(|| {
            let who = format!(
                "{} ({})",
                plural(users, "user", "users"),
                plural(signins, "sign-in", "sign-ins")
            );
            phrase.replacen("{}", &who, 1)
        })
    })
    .collect();
    let subject = format!(
        "Switching on the {} would",
        plural(candidates, "report-only policy", "report-only policies")
    );
    match parts.as_slice() {
        [] => format!("{subject} change nothing for the sign-ins replayed."),
        [one] => format!("{subject} {one}."),
        [init @ .., last] => format!("{subject} {}, and {last}.", init.join(", ")),
    }
}

/// "Since the previous run (…): 176 users newly blocked (+12), …", or nothing without one.
pub fn trend_line(summary: &Value) -> Option<String> {
    let t = &summary["trend"];
    let name = t["previous_run"].as_str()?;
    let labels = [
        ("users_newly_blocked", "newly blocked"),
        ("users_newly_registering", "newly forced to register"),
        ("users_newly_prompted", "newly prompted"),
        (
            "users_newly_password_change",
            "newly forced to change password",
        ),
        ("users_newly_reauth", "newly sent back to sign in"),
    ];
    let parts: Vec<String> = labels
        .iter()
        .map(|(key, label)| {
            let c = &t["difference"][*key];
            let delta = c["change"].as_i64().unwrap_or(0);
            let sign = match delta {
                d if d > 0 => format!("+{d}"),
                0 => "±0".to_owned(),
                d => format!("−{}", d.unsigned_abs()),
            };
            format!("{} users {label} ({sign})", thousands(num(&c["now"])))
        })
        .collect();
    Some(format!(
        "Since the previous run ({name}, sign-ins up to {}): {}.",
        t["previous_to"].as_str().unwrap_or("-"),
        parts.join(", ")
    ))
}

fn cell(p: &Value, i: Impact) -> String {
    let s = num(&p["signins"][i.as_str()]);
    let u = num(&p["users"][i.as_str()]);
    if s == 0 {
        "·".into()
    } else {
        format!("{} ({})", thousands(s), thousands(u))
    }
}

pub fn render(tenant: &Tenant, summary: &Value, affected: &Affected) -> String {
    let mut out = String::new();
    let w = &mut out;
    let inputs = &summary["inputs"];
    let name = tenant
        .root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let _ = writeln!(w, "# ca-replay: {}\n", md(&name));
    let _ = writeln!(w, "**{}**\n", md(&headline(tenant, summary)));
    let _ = writeln!(
        w,
        "{} sign-ins replayed ({} evaluated) from {} to {}, {} users, {} policies.",
        thousands(num(&inputs["signins"])),
        thousands(num(&inputs["evaluated"])),
        md(inputs["from"].as_str().unwrap_or("-")),
        md(inputs["to"].as_str().unwrap_or("-")),
        thousands(num(&inputs["users"])),
        num(&inputs["policies"])
    );
    if let Some(t) = trend_line(summary) {
        let _ = writeln!(w, "\n{}", md(&t));
    }
    if summary["pseudonymized"] == Value::Bool(true) {
        let _ = writeln!(
            w,
            "\nPseudonymized: users, IP addresses and devices appear as keyed hashes (`user-…`, `ip-…`, `device-…`); the mapping back is kept apart from this report."
        );
    }
    let skipped = num(&inputs["skipped"]);
    if skipped > 0 {
        let _ = writeln!(
            w,
            "\n{} could not be read and were skipped (see `summary.json`).",
            plural(skipped, "sign-in record", "sign-in records")
        );
    }
    if let Ok(results) =
        serde_json::from_value::<Vec<crate::checks::gates::GateResult>>(summary["gates"].clone())
    {
        w.push_str(&crate::checks::gates::markdown(&results));
    }

    let _ = writeln!(w, "\n## Per policy\n");
    let _ = writeln!(
        w,
        "Each cell: sign-ins (distinct users). *Affected users*: users the policy would block or challenge.\n"
    );
    let _ = writeln!(
        w,
        "| Policy | State | Blocked | MFA prompt | MFA registration | Password change | Reauth | Indeterminate | Affected users | Top apps |"
    );
    let _ = writeln!(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---|");
    let mut affected_users: BTreeMap<usize, u64> = BTreeMap::new();
    for r in &affected.users {
        *affected_users.entry(r.policy).or_default() += 1;
    }
    let empty = Vec::new();
    for (pi, p) in summary["policies"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .enumerate()
    {
        let state = p["state"].as_str().unwrap_or("");
        if state == "disabled" {
            continue;
        }
        let apps: Vec<String> = affected
            .policies
            .get(pi)
            .map(|b| affected::top(&b.apps, 3))
            .unwrap_or_default()
            .into_iter()
            .map(|(a, n)| format!("{} ({})", md(&a), thousands(n)))
            .collect();
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            md(p["name"].as_str().unwrap_or("")),
            md(state),
            cell(p, Impact::Blocked),
            cell(p, Impact::MfaPrompt),
            cell(p, Impact::MfaRegistration),
            cell(p, Impact::PasswordChange),
            cell(p, Impact::InteractiveReauth),
            cell(p, Impact::Indeterminate),
            thousands(affected_users.get(&pi).copied().unwrap_or(0)),
            if apps.is_empty() {
                "·".to_owned()
            } else {
                apps.join(", ")
            }
        );
    }

    // The most affected users across the proposed set: worst impact, then sign-ins.
    let ranked = affected::ranked(tenant, affected);
    if !ranked.is_empty() {
        let _ = writeln!(w, "\n## Most affected users\n");
        let _ = writeln!(
            w,
            "| User | Worst impact | Sign-ins | Policies |\n|---|---|---:|---|"
        );
        for u in ranked.iter().take(15) {
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} |",
                md(u.label),
                u.impact.as_str(),
                thousands(u.signins),
                u.policies
                    .iter()
                    .map(|p| md(p))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if ranked.len() > 15 {
            let _ = writeln!(
                w,
                "\n{} more in `users.csv`.",
                plural(ranked.len() as u64 - 15, "user", "users")
            );
        }
    }

    break_glass(w, &summary["break_glass"]);
    exclusions(w, &summary["exclusions"]);
    coverage(w, &summary["coverage"]);
    migration(w, &summary["legacy_migration"]);

    let v = &summary["self_validation"];
    let compared = num(&v["compared"]);
    if compared > 0 {
        let agreed = num(&v["agreed"]);
        let _ = writeln!(w, "\n## Agreement with Entra\n");
        let _ = writeln!(
            w,
            "For {} (sign-in, policy) pairs the log records Entra's own verdict; ca-replay agrees on {} ({:.2}%).{}",
            thousands(compared),
            thousands(agreed),
            agreed as f64 * 100.0 / compared as f64,
            match num(&v["indeterminate"]) {
                0 => String::new(),
                n => format!(" {} more pairs were indeterminate for ca-replay.", thousands(n)),
            }
        );
        let empty = Vec::new();
        let rows = v["disagreements_first"].as_array().unwrap_or(&empty);
        if !rows.is_empty() {
            let _ = writeln!(
                w,
                "\n| Sign-in | Policy | Entra | ca-replay | Why ca-replay decided so |\n|---|---|---|---|---|"
            );
            for d in rows.iter().take(10) {
                let _ = writeln!(
                    w,
                    "| {} | {} | {} | {} | {} |",
                    md(d["signin_id"].as_str().unwrap_or("")),
                    md(d["policy_name"].as_str().unwrap_or("")),
                    md(d["entra"].as_str().unwrap_or("")),
                    md(d["ca_replay"].as_str().unwrap_or("")),
                    md(d["reason"].as_str().unwrap_or(""))
                );
            }
            let _ = writeln!(
                w,
                "\nSee `summary.json` (`self_validation`) for the matrix per policy; `ca-replay explain --signin ID` shows both sides."
            );
        }
    }

    if let Some(reasons) = summary["indeterminate_reasons"].as_object() {
        if !reasons.is_empty() {
            let _ = writeln!(w, "\n## Indeterminate\n");
            let _ = writeln!(
                w,
                "The inputs could not decide these (policy: missing input): sign-ins.\n"
            );
            for (k, v) in reasons {
                let _ = writeln!(w, "- {}: {}", md(k), thousands(num(v)));
            }
        }
    }
    if let Some(warnings) = summary["warnings"].as_array() {
        if !warnings.is_empty() {
            let _ = writeln!(w, "\n## Warnings\n");
            for x in warnings.iter().take(20) {
                let _ = writeln!(w, "- {}", md(x.as_str().unwrap_or("")));
            }
            if warnings.len() > 20 {
                let _ = writeln!(w, "- … {} more in `summary.json`", warnings.len() - 20);
            }
        }
    }
    out
}

/// The break-glass section: findings first, then every sign-in of an account.
fn break_glass(w: &mut String, b: &Value) {
    if b.is_null() {
        return;
    }
    let empty = Vec::new();
    let findings = b["findings"].as_array().unwrap_or(&empty);
    let accounts: Vec<String> = b["accounts"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .filter_map(|a| a.as_str().map(md))
        .collect();
    let _ = writeln!(w, "\n## Break-glass accounts\n");
    if accounts.is_empty() {
        let _ = writeln!(w, "**No break-glass accounts are configured.**");
    } else {
        let errors = findings.iter().filter(|f| f["severity"] == "error").count();
        let _ = writeln!(
            w,
            "{}: {}.",
            accounts.join(", "),
            if errors == 0 {
                "left out of every policy that could lock them out".to_owned()
            } else {
                format!("**{}**", plural(errors as u64, "problem", "problems"))
            }
        );
    }
    if !findings.is_empty() {
        let _ = writeln!(w);
        for f in findings {
            finding(w, f, ["account", "policy"]);
        }
    }
    let candidates = b["candidates"].as_array().unwrap_or(&empty);
    if !candidates.is_empty() {
        let _ = writeln!(
            w,
            "\nLikely candidates (excluded from most policies; not trusted until configured): {}.",
            candidates
                .iter()
                .filter_map(|c| Some(format!("{} ({})", md(c[0].as_str()?), num(&c[1]))))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let signins = b["signins"].as_array().unwrap_or(&empty);
    if !signins.is_empty() {
        let _ = writeln!(
            w,
            "\nEvery sign-in of these accounts in the window (Microsoft: alert on each):\n\n| Account | Time | App | Current | Proposed |\n|---|---|---|---|---|"
        );
        for x in signins.iter().take(50) {
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} |",
                md(x["account"].as_str().unwrap_or("")),
                md(x["created_at"].as_str().unwrap_or("")),
                md(x["app"].as_str().unwrap_or("")),
                md(x["current"].as_str().unwrap_or("")),
                md(x["proposed"].as_str().unwrap_or(""))
            );
        }
        if signins.len() > 50 {
            let _ = writeln!(w, "\n{} more in `summary.json`.", signins.len() - 50);
        }
    }
}

fn items(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

fn text(v: &Value) -> String {
    md(v.as_str().unwrap_or(""))
}

/// `part` as a percentage of `whole`, one decimal.
pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "0%".into()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

/// A policy state as people say it.
pub fn state_word(state: &str) -> &str {
    match state {
        "enabledForReportingButNotEnforced" => "report-only",
        other => other,
    }
}

/// One finding as a list item: its mark, the non-empty `who` fields joined, and its `what`.
fn finding(w: &mut String, f: &Value, who: [&str; 2]) {
    let who = who
        .iter()
        .filter_map(|k| f[*k].as_str())
        .filter(|x| !x.is_empty())
        .map(md)
        .collect::<Vec<_>>()
        .join(" · ");
    let _ = writeln!(
        w,
        "- {} {}{}{}",
        mark(&f["severity"]),
        who,
        if who.is_empty() { "" } else { ": " },
        text(&f["what"])
    );
}

fn mark(severity: &Value) -> &'static str {
    match severity.as_str() {
        Some("error") => "❌",
        Some("warning") => "⚠️",
        _ => "ℹ️",
    }
}

/// The exclusions section: every exclude entry with its blast radius, then the findings.
fn exclusions(w: &mut String, x: &Value) {
    if x.is_null() {
        return;
    }
    const ROWS: usize = 25;
    const FINDINGS: usize = 20;
    let entries = items(&x["entries"]);
    let findings = items(&x["findings"]);
    let _ = writeln!(w, "\n## Exclusions\n");
    let count = |s: &str| findings.iter().filter(|f| f["severity"] == s).count() as u64;
    let _ = writeln!(
        w,
        "{} in the users condition of {}: {}.{}",
        plural(entries.len() as u64, "exclude entry", "exclude entries"),
        plural(num(&x["policies_checked"]), "policy", "policies"),
        if findings.is_empty() {
            "no findings".to_owned()
        } else {
            format!(
                "{}, {}, {}",
                plural(count("error"), "error", "errors"),
                plural(count("warning"), "warning", "warnings"),
                plural(count("info"), "note", "notes")
            )
        },
        if x["stale_assessed"] == false {
            " No sign-ins were replayed, so stale entries were not looked for."
        } else {
            ""
        }
    );
    if !entries.is_empty() {
        let mut rows: Vec<&Value> = entries.iter().collect();
        // Widest blast radius first; the sort is stable, so policies keep their order.
        rows.sort_by_key(|e| std::cmp::Reverse(num(&e["signins"])));
        let _ = writeln!(
            w,
            "\nSign-ins and users: what the entry took out of the policy's scope in the replay. Members: users it names (signed in during the window).\n\n| Policy | Entry | Sign-ins | Users | Members | Status |\n|---|---|---:|---:|---:|---|"
        );
        for e in rows.iter().take(ROWS) {
            let members = match (e["members"].as_u64(), e["members_signed_in"].as_u64()) {
                (Some(m), Some(a)) => format!("{} ({})", thousands(m), thousands(a)),
                (Some(m), None) => thousands(m),
                _ => "·".to_owned(),
            };
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} | {} |",
                text(&e["policy"]),
                text(&e["entry"]),
                thousands(num(&e["signins"])),
                thousands(num(&e["users"])),
                members,
                text(&e["status"])
            );
        }
        if rows.len() > ROWS {
            let _ = writeln!(w, "\n{} more in `summary.json`.", rows.len() - ROWS);
        }
    }
    if !findings.is_empty() {
        let _ = writeln!(w);
        for f in findings.iter().take(FINDINGS) {
            finding(w, f, ["policy", "entry"]);
        }
        if findings.len() > FINDINGS {
            let _ = writeln!(
                w,
                "- … {} more in `summary.json`",
                findings.len() - FINDINGS
            );
        }
    }
    let mfa = items(&x["mfa_policies"]);
    let _ = writeln!(
        w,
        "\nThe coverage gap reads the users condition of the proposed set's {} that require MFA.",
        plural(mfa.len() as u64, "policy", "policies")
    );
}

/// The MFA coverage section: what no policy of the proposed set protects, by app, client app
/// type and user type.
fn coverage(w: &mut String, c: &Value) {
    if c.is_null() {
        return;
    }
    const ROWS: usize = 10;
    let total = num(&c["user_signins"]);
    let s = &c["signins"];
    let u = &c["users"];
    let (protected, unprotected, unknown) = (
        num(&s["protected"]),
        num(&s["unprotected"]),
        num(&s["indeterminate"]),
    );
    let _ = writeln!(w, "\n## MFA coverage (proposed set)\n");
    let _ = writeln!(
        w,
        "Of {} evaluated, the proposed set (enabled and report-only policies) protects {} ({}) with MFA or a block; **{} ({}) no policy protects**; {} indeterminate (a protecting policy might apply). Users: {} with an unprotected sign-in, {} more with an indeterminate one, {} always protected.",
        plural(total, "user sign-in", "user sign-ins"),
        thousands(protected),
        percent(protected, total),
        thousands(unprotected),
        percent(unprotected, total),
        thousands(unknown),
        thousands(num(&u["unprotected"])),
        thousands(num(&u["indeterminate"])),
        thousands(num(&u["protected"]))
    );
    let apart = [
        (
            num(&c["workload_signins"]),
            "workload identity sign-in",
            "workload identity sign-ins",
        ),
        (
            num(&c["not_evaluated"]),
            "sign-in not evaluated",
            "sign-ins not evaluated",
        ),
    ];
    let apart: Vec<String> = apart
        .iter()
        .filter(|(n, _, _)| *n > 0)
        .map(|(n, one, many)| plural(*n, one, many))
        .collect();
    if !apart.is_empty() {
        let _ = writeln!(w, "Not counted: {}.", apart.join(", "));
    }
    if unprotected == 0 && unknown == 0 {
        return;
    }
    for (key, title) in [
        ("by_app", "App"),
        ("by_client_app_type", "Client app type"),
        ("by_user_type", "User type"),
    ] {
        let rows: Vec<&Value> = items(&c[key])
            .iter()
            .filter(|r| num(&r["unprotected"]) + num(&r["indeterminate"]) > 0)
            .collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(
            w,
            "\n| {title} | Sign-ins | Unprotected | Users unprotected | Indeterminate |\n|---|---:|---:|---:|---:|"
        );
        for r in rows.iter().take(ROWS) {
            let _ = writeln!(
                w,
                "| {} | {} | {} ({}) | {} | {} |",
                text(&r["name"]),
                thousands(num(&r["signins"])),
                thousands(num(&r["unprotected"])),
                percent(num(&r["unprotected"]), num(&r["signins"])),
                thousands(num(&r["unprotected_users"])),
                thousands(num(&r["indeterminate"]))
            );
        }
        if key == "by_app" {
            let more = num(&c["apps_with_unprotected"]).saturating_sub(rows.len().min(ROWS) as u64);
            if more > 0 {
                let _ = writeln!(
                    w,
                    "\n{} more with unprotected sign-ins.",
                    plural(more, "app", "apps")
                );
            }
        }
    }
}

/// The legacy migration section: per legacy Identity Protection policy, its replacement and
/// where they differ.
fn migration(w: &mut String, m: &Value) {
    if m.is_null() {
        return;
    }
    const EXAMPLES: usize = 10;
    let _ = writeln!(w, "\n## Legacy Identity Protection migration\n");
    let _ = writeln!(w, "{}", text(&m["summary"]));
    for c in items(&m["policies"]) {
        let l = &c["legacy"];
        let _ = writeln!(
            w,
            "\n### {} ({})\n",
            text(&l["name"]),
            md(state_word(l["state"].as_str().unwrap_or("")))
        );
        let replacements: Vec<String> = items(&c["replacements"])
            .iter()
            .map(|r| {
                format!(
                    "{} ({})",
                    text(&r["name"]),
                    md(state_word(r["state"].as_str().unwrap_or("")))
                )
            })
            .collect();
        if !replacements.is_empty() {
            let _ = writeln!(w, "Replaced by {}.\n", replacements.join(", "));
        }
        let _ = writeln!(w, "**{}**", text(&c["verdict"]));
        let u = &c["users"];
        if u.is_object() {
            let _ = writeln!(
                w,
                "\nUsers in scope: {} of the legacy policy, {} of the replacement; only the legacy policy's: {}; only the replacement's: {}{}.",
                thousands(num(&u["legacy"])),
                thousands(num(&u["replacement"])),
                thousands(num(&u["legacy_only"])),
                thousands(num(&u["replacement_only"])),
                match num(&u["unknown"]) {
                    0 => String::new(),
                    n => format!("; undecided: {}", thousands(n)),
                }
            );
            for (key, label) in [
                ("legacy_only_first", "Only in the legacy policy's scope"),
                ("replacement_only_first", "Only in the replacement's scope"),
            ] {
                let names: Vec<String> = items(&u[key]).iter().map(text).collect();
                if !names.is_empty() {
                    let _ = writeln!(w, "{label}: {}.", names.join(", "));
                }
            }
        }
        let s = &c["signins"];
        if !s.is_object() || num(&s["different"]) == 0 {
            continue;
        }
        let _ = writeln!(
            w,
            "\n| Legacy impact | Replacement impact | Sign-ins |\n|---|---|---:|"
        );
        for p in items(&s["pairs"])
            .iter()
            .filter(|p| p["legacy"] != p["replacement"])
        {
            let _ = writeln!(
                w,
                "| {} | {} | {} |",
                text(&p["legacy"]),
                text(&p["replacement"]),
                thousands(num(&p["signins"]))
            );
        }
        let examples = items(&s["differences_first"]);
        if !examples.is_empty() {
            let _ = writeln!(
                w,
                "\nFirst differences:\n\n| Sign-in | Time | User | Legacy | Replacement |\n|---|---|---|---|---|"
            );
            for e in examples.iter().take(EXAMPLES) {
                let _ = writeln!(
                    w,
                    "| {} | {} | {} | {} | {} |",
                    text(&e["signin_id"]),
                    text(&e["created_at"]),
                    text(&e["user"]),
                    text(&e["legacy"]),
                    text(&e["replacement"])
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_escapes_markup_and_html() {
        assert_eq!(
            md("<script>|x|</script> *a* [l](u) `c`\nnext"),
            "&lt;script&gt;\\|x\\|&lt;/script&gt; \\*a\\* \\[l\\](u) \\`c\\` next"
        );
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(12), "12");
    }
}
