//! The reports of `ca-replay diff`: `diff.md` (a pull-request comment), `diff.json` (the
//! versioned machine contract, every count the Markdown shows) and `diff.html` (one
//! self-contained page in the look of `report.html`).
//!
//! In: a `checks::diff::Diff` and the ingest report. Out: the three files, written atomically,
//! byte-identical for identical inputs; every input value escaped (`md` for Markdown,
//! minijinja's auto-escaping for HTML).

use std::fmt::Write;
use std::path::Path;

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::markdown::{md, thousands};
use super::write_atomic;
use crate::checks::diff::{Change, Counted, Diff, Effect, UserEffects, View, EFFECTS};
use crate::domain::Impact;
use crate::engine::SetKind;
use crate::ingest::IngestReport;

pub const SCHEMA_VERSION: u32 = 1;

/// What `diff.md` and `diff.html` say when the diff is pseudonymized.
const PSEUDONYMIZED: &str = "Pseudonymized: users, IP addresses and devices appear as keyed hashes (user-…, ip-…, device-…); the mapping back is kept apart from this report.";

const TEMPLATE: &str = include_str!("diff.html");

/// Rows of the most affected users in `diff.md` and `diff.html` (all are in `diff.json`).
const USERS_SHOWN: usize = 15;
/// Rows of the per-policy table in `diff.md` and `diff.html` (all are in `diff.json`).
const POLICIES_SHOWN: usize = 15;

/// The effects the "What changes" table always shows (what CI gates look at); the others only
/// when they occur.
const ALWAYS: [Effect; 4] = [
    Effect::Newly(Impact::Blocked),
    Effect::Newly(Impact::MfaPrompt),
    Effect::Newly(Impact::MfaRegistration),
    Effect::NoLongerProtected,
];

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

fn who(c: Counted) -> String {
    format!(
        "{} ({})",
        plural(c.users as u64, "user", "users"),
        plural(c.signins, "sign-in", "sign-ins")
    )
}

/// The verb phrases of a headline, `{}` where the users go.
fn phrase(e: Effect) -> Option<&'static str> {
    Some(match e {
        Effect::Newly(Impact::Blocked) => "newly block {}",
        Effect::Newly(Impact::PasswordChange) => "newly force {} to change their password",
        Effect::Newly(Impact::MfaRegistration) => "newly force {} to register for MFA",
        Effect::Newly(Impact::MfaPrompt) => "newly prompt {} for MFA",
        Effect::Newly(Impact::InteractiveReauth) => "newly send {} back to an interactive sign-in",
        Effect::NoLongerProtected => "leave {} no longer protected by MFA or a block",
        Effect::Eased(Impact::Blocked) => "no longer block {}",
        Effect::Eased(Impact::PasswordChange) => "no longer force {} to change their password",
        Effect::Eased(Impact::MfaRegistration) => "no longer force {} to register for MFA",
        Effect::Eased(Impact::MfaPrompt) => "no longer prompt {} for MFA",
        Effect::Eased(Impact::InteractiveReauth) => {
            "no longer send {} back to an interactive sign-in"
        }
        _ => return None,
    })
}

/// What a view's change does, as phrases: the tightening ones (and lost protection), or, when
/// there are none, the easing ones.
fn parts(v: &View) -> Vec<String> {
    let render = |pick: fn(&Effect) -> bool| -> Vec<String> {
        EFFECTS
            .iter()
            .filter(|e| pick(e))
            .filter_map(|e| {
                let c = v.get(*e);
                let p = phrase(*e)?;
                (c.signins > 0).then(|| p.replacen("{}", &who(c), 1))
            })
            .collect()
    };
    let tight = render(|e| e.is_tightening() || *e == Effect::NoLongerProtected);
    if tight.is_empty() {
        render(|e| matches!(e, Effect::Eased(_)))
    } else {
        tight
    }
}

fn sentence(subject: &str, parts: &[String], none: &str) -> String {
    match parts {
        [] => format!("{subject} {none}."),
        [one] => format!("{subject} {one}."),
        [init @ .., last] => format!("{subject} {}, and {last}.", init.join(", ")),
    }
}

/// "Once merged, this change would newly block 2 users (2 sign-ins), …", then the proposed
/// view when it says something else, then new break-glass errors.
pub fn headline(d: &Diff) -> String {
    if d.policies.is_empty() {
        return "No policy differs between base and head: nothing changes.".into();
    }
    let enforced = parts(&d.enforced);
    let mut out = sentence(
        "Once merged, this change would",
        &enforced,
        "change nothing users would notice in the sign-ins replayed",
    );
    let proposed = parts(&d.proposed);
    if proposed != enforced {
        out.push(' ');
        out.push_str(&sentence(
            "With the report-only policies switched on too (the proposed set), it would",
            &proposed,
            "change nothing users would notice",
        ));
    }
    let n = d.break_glass_new_errors as u64;
    if n > 0 {
        let _ = write!(
            out,
            " It adds {} for the break-glass accounts.",
            plural(n, "error", "errors")
        );
    }
    out
}

fn effects_json(v: &View, pick: impl Fn(Counted) -> u64) -> Value {
    EFFECTS
        .iter()
        .map(|e| (e.key().to_owned(), json!(pick(v.get(*e)))))
        .collect::<Map<String, Value>>()
        .into()
}

fn view_json(v: &View) -> Value {
    json!({
        "signins_changed": v.signins_changed,
        "users": effects_json(v, |c| c.users as u64),
        "signins": effects_json(v, |c| c.signins),
        "signins_with_indeterminate_policy": {
            "base": v.indeterminate_base,
            "head": v.indeterminate_head,
        },
        "by_policy": v.by_policy.iter().map(|p| {
            let pick = |f: fn(&Counted) -> u64| -> Value {
                p.effects.iter().map(|(e, c)| (e.key().to_owned(), json!(f(c))))
                    .collect::<Map<String, Value>>().into()
            };
            json!({
                "side": p.side.as_str(),
                "id": p.id,
                "name": p.name,
                "users": pick(|c| c.users as u64),
                "signins": pick(|c| c.signins),
            })
        }).collect::<Vec<_>>(),
    })
}

fn user_json(u: &UserEffects) -> Value {
    let m = |x: &std::collections::BTreeMap<Effect, u64>| -> Value {
        EFFECTS
            .iter()
            .filter_map(|e| x.get(e).map(|n| (e.key().to_owned(), json!(n))))
            .collect::<Map<String, Value>>()
            .into()
    };
    json!({
        "user_id": u.user_id,
        "user": u.label,
        "enforced": m(&u.enforced),
        "proposed": m(&u.proposed),
        "policies": u.policies,
    })
}

/// `diff.json`: every number the Markdown and HTML show.
pub fn json(d: &Diff, ingest: &IngestReport) -> Value {
    let count = |c: Change| d.policies.iter().filter(|p| p.change == c).count();
    let mut skipped: std::collections::BTreeMap<String, u64> = Default::default();
    for x in &ingest.skipped {
        *skipped
            .entry(format!("{}: {}", x.field, x.why))
            .or_default() += 1;
    }
    let bg = &d.break_glass;
    let mut v = json!({
        "schema_version": SCHEMA_VERSION,
        "headline": headline(d),
        "gates": d.gates,
        "tenant": d.tenant,
        "base": {"label": d.base_label, "commit": d.base_commit, "policies": d.base_policies},
        "head": {"label": d.head_label, "policies": d.head_policies},
        "inputs": {
            "signins": d.signins,
            "evaluated": d.evaluated,
            "not_evaluated": d.not_evaluated,
            "users": d.users,
            "from": d.from.map(|t| t.to_rfc3339()),
            "to": d.to.map(|t| t.to_rfc3339()),
            "records": ingest.records,
            "duplicates": ingest.duplicates,
            "skipped": ingest.skipped.len(),
            "skipped_reasons": skipped,
            "window": {
                "from": ingest.window.0.map(|t| t.to_rfc3339()),
                "to": ingest.window.1.map(|t| t.to_rfc3339()),
                "signins_outside": ingest.outside_window,
            },
        },
        "policies": {
            "added": count(Change::Added),
            "removed": count(Change::Removed),
            "changed": count(Change::Changed),
            "unchanged": d.policies_unchanged,
            "list": d.policies.iter().map(|p| json!({
                "change": p.change.as_str(),
                "id": p.id,
                "name": p.name,
                "state_base": p.state_base,
                "state_head": p.state_head,
                "pointers": p.pointers,
            })).collect::<Vec<_>>(),
        },
        "views": {
            "enforced": view_json(&d.enforced),
            "proposed": view_json(&d.proposed),
        },
        "users": d.changed_users.iter().map(user_json).collect::<Vec<_>>(),
        "break_glass": {
            "configured": bg.configured,
            "accounts": bg.accounts,
            "base_errors": bg.base_errors,
            "head_errors": bg.head_errors,
            "new_errors_in_head": d.break_glass_new_errors,
            "new_in_head": bg.new_in_head,
            "fixed_in_head": bg.fixed_in_head,
            "changed": bg.changed.iter().map(|(b, h)| json!({"base": b, "head": h})).collect::<Vec<_>>(),
        },
        "warnings": warnings(d, ingest),
    });
    if d.pseudonymized {
        v["pseudonymized"] = json!(true);
    }
    v
}

fn warnings(d: &Diff, ingest: &IngestReport) -> Vec<String> {
    let mut w = d.warnings.clone();
    w.extend(ingest.notes.iter().cloned());
    if !ingest.skipped.is_empty() {
        w.push(format!(
            "{} could not be read and were skipped (see inputs.skipped_reasons in diff.json)",
            plural(
                ingest.skipped.len() as u64,
                "sign-in record",
                "sign-in records"
            )
        ));
    }
    for v in [&d.enforced, &d.proposed] {
        if v.indeterminate_base + v.indeterminate_head > 0 {
            w.push(format!(
                "{} view: {} had a policy the inputs could not decide in head ({} in base); their outcome may be more severe than the one compared",
                v.name(),
                plural(v.indeterminate_head, "sign-in", "sign-ins"),
                thousands(v.indeterminate_base)
            ));
        }
    }
    w
}

/// A code span for Markdown when the text allows one (no backtick, pipe or line break), else
/// the escaped text.
fn code(s: &str) -> String {
    if s.is_empty() || s.contains(['`', '|', '\n', '\r']) || s.chars().any(char::is_control) {
        md(s)
    } else {
        format!("`{s}`")
    }
}

fn state_word(s: &str) -> &str {
    match s {
        "enabledForReportingButNotEnforced" => "report-only",
        other => other,
    }
}

fn state_text(base: Option<&str>, head: Option<&str>) -> String {
    match (base.map(state_word), head.map(state_word)) {
        (Some(b), Some(h)) if b != h => format!("{b} → {h}"),
        (_, Some(h)) => h.to_owned(),
        (Some(b), None) => b.to_owned(),
        (None, None) => String::new(),
    }
}

fn cell(c: Counted) -> String {
    if c.signins == 0 {
        "·".into()
    } else {
        format!("{} ({})", thousands(c.users as u64), thousands(c.signins))
    }
}

/// The effects shown in the "What changes" table: the gate ones and any that occur.
fn shown_effects(d: &Diff) -> Vec<Effect> {
    EFFECTS
        .iter()
        .copied()
        .filter(|e| {
            ALWAYS.contains(e) || d.enforced.get(*e).signins > 0 || d.proposed.get(*e).signins > 0
        })
        .collect()
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// "newly blocked 2 (3)" for each effect of a map: users (sign-ins).
fn effects_text(effects: &std::collections::BTreeMap<Effect, Counted>) -> String {
    let v: Vec<String> = EFFECTS
        .iter()
        .filter_map(|e| {
            effects
                .get(e)
                .map(|c| format!("{} {}", e.label(), cell(*c)))
        })
        .collect();
    if v.is_empty() {
        "·".into()
    } else {
        v.join(", ")
    }
}

/// "newly blocked (2 sign-ins)" for a user in one view. Newly protected goes without saying
/// beside a stricter outcome, and is left out then.
fn user_text(m: &std::collections::BTreeMap<Effect, u64>) -> String {
    let stricter = m.keys().any(|e| e.is_tightening());
    let v: Vec<String> = EFFECTS
        .iter()
        .filter(|e| !(stricter && **e == Effect::NewlyProtected))
        .filter_map(|e| {
            m.get(e)
                .map(|n| format!("{} ({})", e.label(), plural(*n, "sign-in", "sign-ins")))
        })
        .collect();
    if v.is_empty() {
        "·".into()
    } else {
        v.join(", ")
    }
}

/// One row of the per-policy table: the policy (and side) with its effects in both views.
struct PolicyRow {
    name: String,
    side: &'static str,
    enforced: String,
    proposed: String,
}

fn policy_rows(d: &Diff) -> Vec<PolicyRow> {
    let mut rows: Vec<(String, &'static str, String, String)> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    // Enforced order first (worst first), then what only the proposed view has.
    for p in d.enforced.by_policy.iter().chain(&d.proposed.by_policy) {
        if !seen.insert((p.side, p.id.clone())) {
            continue;
        }
        let find = |v: &View| {
            v.by_policy
                .iter()
                .find(|x| x.side == p.side && x.id == p.id)
                .map(|x| effects_text(&x.effects))
                .unwrap_or_else(|| "·".into())
        };
        rows.push((
            p.name.clone(),
            p.side.as_str(),
            find(&d.enforced),
            find(&d.proposed),
        ));
    }
    rows.into_iter()
        .map(|(name, side, enforced, proposed)| PolicyRow {
            name,
            side,
            enforced,
            proposed,
        })
        .collect()
}

/// `diff.md`: a pull-request comment.
pub fn markdown(d: &Diff, ingest: &IngestReport) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "## ca-replay diff: {}\n", md(&d.tenant));
    let _ = writeln!(w, "**{}**\n", md(&headline(d)));
    if d.pseudonymized {
        let _ = writeln!(w, "{PSEUDONYMIZED}\n");
    }
    if !d.gates.is_empty() {
        w.push_str(crate::checks::gates::markdown(&d.gates).trim_start());
        w.push('\n');
    }
    let commit = d
        .base_commit
        .as_deref()
        .map(|c| format!(", commit {}", md(c.get(..12).unwrap_or(c))))
        .unwrap_or_default();
    let _ = writeln!(
        w,
        "Base {} ({}{commit}) → head {} ({}). {} replayed ({} evaluated) from {} to {}, {}.",
        code(&d.base_label),
        plural(d.base_policies as u64, "policy", "policies"),
        code(&d.head_label),
        plural(d.head_policies as u64, "policy", "policies"),
        plural(d.signins, "sign-in", "sign-ins"),
        thousands(d.evaluated),
        d.from.map_or("-".into(), |t| t.to_rfc3339()),
        d.to.map_or("-".into(), |t| t.to_rfc3339()),
        plural(d.users, "user", "users"),
    );

    let _ = writeln!(w, "\n### Policies changed\n");
    if d.policies.is_empty() {
        let _ = writeln!(w, "None.");
    } else {
        let _ = writeln!(
            w,
            "| Policy | Change | State | Fields that differ |\n|---|---|---|---|"
        );
        for p in &d.policies {
            let fields: Vec<String> = p.pointers.iter().map(|x| code(x)).collect();
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} |",
                md(&p.name),
                p.change.as_str(),
                md(&state_text(
                    p.state_base.as_deref(),
                    p.state_head.as_deref()
                )),
                if fields.is_empty() {
                    "·".to_owned()
                } else {
                    fields.join(", ")
                }
            );
        }
    }
    if d.policies_unchanged > 0 {
        let _ = writeln!(
            w,
            "\n{} unchanged.",
            plural(d.policies_unchanged as u64, "policy", "policies")
        );
    }

    let _ = writeln!(w, "\n### What changes\n");
    let _ = writeln!(
        w,
        "Users (sign-ins). *Enforced*: enabled policies only, what users feel once this merges. *Proposed*: enabled and report-only policies together.\n"
    );
    let _ = writeln!(w, "| | Enforced | Proposed |\n|---|---:|---:|");
    for e in shown_effects(d) {
        let _ = writeln!(
            w,
            "| {} | {} | {} |",
            capitalized(e.label()),
            cell(d.enforced.get(e)),
            cell(d.proposed.get(e))
        );
    }
    let _ = writeln!(
        w,
        "| Sign-ins whose outcome changes | {} | {} |",
        thousands(d.enforced.signins_changed),
        thousands(d.proposed.signins_changed)
    );

    let rows = policy_rows(d);
    if !rows.is_empty() {
        let _ = writeln!(w, "\n### By policy\n");
        let _ = writeln!(
            w,
            "The policy that decided: head's for a sign-in made stricter or newly protected, base's for one eased or no longer protected. Users (sign-ins).\n"
        );
        let _ = writeln!(
            w,
            "| Policy | Side | Enforced | Proposed |\n|---|---|---|---|"
        );
        for r in rows.iter().take(POLICIES_SHOWN) {
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} |",
                md(&r.name),
                r.side,
                r.enforced,
                r.proposed
            );
        }
        if rows.len() > POLICIES_SHOWN {
            let _ = writeln!(
                w,
                "\n{} more in `diff.json`.",
                plural((rows.len() - POLICIES_SHOWN) as u64, "policy", "policies")
            );
        }
    }

    if !d.changed_users.is_empty() {
        let _ = writeln!(w, "\n### Most affected users\n");
        let _ = writeln!(
            w,
            "| User | Enforced | Proposed | Policies |\n|---|---|---|---|"
        );
        for u in d.changed_users.iter().take(USERS_SHOWN) {
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} |",
                md(&u.label),
                user_text(&u.enforced),
                user_text(&u.proposed),
                u.policies
                    .iter()
                    .map(|p| md(p))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if d.changed_users.len() > USERS_SHOWN {
            let _ = writeln!(
                w,
                "\n{} more in `diff.json`.",
                plural(
                    (d.changed_users.len() - USERS_SHOWN) as u64,
                    "user",
                    "users"
                )
            );
        }
    }

    break_glass_md(w, d);

    let warnings = warnings(d, ingest);
    if !warnings.is_empty() {
        let _ = writeln!(w, "\n### Warnings\n");
        for x in warnings.iter().take(20) {
            let _ = writeln!(w, "- {}", md(x));
        }
        if warnings.len() > 20 {
            let _ = writeln!(w, "- … {} more in `diff.json`", warnings.len() - 20);
        }
    }
    out
}

fn finding_md(f: &crate::checks::breakglass::Finding) -> String {
    let who: Vec<String> = [f.account.as_str(), f.policy.as_str()]
        .into_iter()
        .filter(|x| !x.is_empty())
        .map(md)
        .collect();
    format!(
        "{}{}{}",
        who.join(" · "),
        if who.is_empty() { "" } else { ": " },
        md(&f.what)
    )
}

fn break_glass_md(w: &mut String, d: &Diff) {
    let bg = &d.break_glass;
    let _ = writeln!(w, "\n### Break-glass accounts\n");
    if !bg.configured {
        let _ = writeln!(
            w,
            "**No break-glass accounts are configured** (`[break_glass]` in ca-replay.toml)."
        );
    } else {
        let _ = writeln!(
            w,
            "{}: {} in base, {} in head.",
            bg.accounts
                .iter()
                .map(|a| md(a))
                .collect::<Vec<_>>()
                .join(", "),
            plural(bg.base_errors as u64, "error", "errors"),
            plural(bg.head_errors as u64, "error", "errors"),
        );
    }
    if bg.new_in_head.is_empty() && bg.fixed_in_head.is_empty() && bg.changed.is_empty() {
        let _ = writeln!(w, "\nNo break-glass finding changes.");
        return;
    }
    let _ = writeln!(w);
    for f in &bg.new_in_head {
        let mark = if f.severity == "error" {
            "❌"
        } else {
            "⚠️"
        };
        let _ = writeln!(w, "- {mark} new in head: {}", finding_md(f));
    }
    for f in &bg.fixed_in_head {
        let _ = writeln!(w, "- ✅ fixed in head: {}", finding_md(f));
    }
    for (b, h) in &bg.changed {
        let _ = writeln!(w, "- changed: {} (base: {})", finding_md(h), md(&b.what));
    }
}

// ---- HTML -----------------------------------------------------------------------------------

#[derive(Serialize)]
struct Card {
    label: &'static str,
    value: String,
    detail: String,
    color: &'static str,
}

#[derive(Serialize)]
struct PolicyChangeRow {
    name: String,
    change: &'static str,
    color: &'static str,
    state: String,
    pointers: Vec<String>,
}

#[derive(Serialize)]
struct EffectRow {
    label: String,
    color: &'static str,
    enforced: String,
    proposed: String,
}

#[derive(Serialize)]
struct PolicyEffectRow {
    name: String,
    side: &'static str,
    enforced: String,
    proposed: String,
}

#[derive(Serialize)]
struct UserRow {
    user: String,
    worst: String,
    color: &'static str,
    rank: usize,
    enforced: String,
    proposed: String,
    policies: String,
}

#[derive(Serialize)]
struct FindingRow {
    status: &'static str,
    color: &'static str,
    account: String,
    policy: String,
    what: String,
}

#[derive(Serialize)]
struct Page {
    title: String,
    subtitle: String,
    headline: String,
    /// [`PSEUDONYMIZED`], or empty.
    pseudonymized: &'static str,
    gates: Vec<crate::checks::gates::GateResult>,
    cards: Vec<Card>,
    policies: Vec<PolicyChangeRow>,
    unchanged: String,
    effects: Vec<EffectRow>,
    changed_signins: (String, String),
    by_policy: Vec<PolicyEffectRow>,
    by_policy_more: usize,
    users: Vec<UserRow>,
    users_more: usize,
    break_glass_summary: String,
    break_glass: Vec<FindingRow>,
    warnings: Vec<String>,
}

fn color(e: Effect) -> &'static str {
    match e {
        Effect::Newly(Impact::Blocked) => "#c0392b",
        Effect::Newly(Impact::PasswordChange) => "#8e44ad",
        Effect::Newly(Impact::MfaRegistration) => "#d35400",
        Effect::Newly(Impact::MfaPrompt) => "#f39c12",
        Effect::Newly(_) => "#2f6fde",
        Effect::NoLongerProtected => "#9b2c2c",
        Effect::NewlyProtected | Effect::Eased(_) => "#2f855a",
    }
}

/// `diff.html`: one self-contained page (no network), in `report.html`'s style.
pub fn html(d: &Diff, ingest: &IngestReport) -> Result<String, minijinja::Error> {
    let card = |label: &'static str, e: Effect| {
        let (x, y) = (d.enforced.get(e), d.proposed.get(e));
        Card {
            label,
            value: thousands(x.users as u64),
            detail: format!(
                "{} · proposed: {}",
                plural(x.signins, "sign-in", "sign-ins"),
                plural(y.users as u64, "user", "users")
            ),
            color: color(e),
        }
    };
    let mut cards = vec![
        card("Newly blocked", Effect::Newly(Impact::Blocked)),
        card("Newly prompted for MFA", Effect::Newly(Impact::MfaPrompt)),
        card(
            "Newly forced to register",
            Effect::Newly(Impact::MfaRegistration),
        ),
        card("No longer protected", Effect::NoLongerProtected),
    ];
    cards.push(Card {
        label: "Break-glass errors new",
        value: thousands(d.break_glass_new_errors as u64),
        detail: format!(
            "{} in base, {} in head",
            thousands(d.break_glass.base_errors as u64),
            thousands(d.break_glass.head_errors as u64)
        ),
        color: if d.break_glass_new_errors > 0 {
            "#c0392b"
        } else {
            "#2f855a"
        },
    });
    let policies = d
        .policies
        .iter()
        .map(|p| PolicyChangeRow {
            name: p.name.clone(),
            change: p.change.as_str(),
            color: match p.change {
                Change::Added => "#2f6fde",
                Change::Removed => "#c0392b",
                Change::Changed => "#d69e2e",
            },
            state: state_text(p.state_base.as_deref(), p.state_head.as_deref()),
            pointers: p.pointers.clone(),
        })
        .collect();
    let effects = shown_effects(d)
        .into_iter()
        .map(|e| EffectRow {
            label: capitalized(e.label()),
            color: color(e),
            enforced: cell(d.enforced.get(e)),
            proposed: cell(d.proposed.get(e)),
        })
        .collect();
    let rows = policy_rows(d);
    let by_policy_more = rows.len().saturating_sub(POLICIES_SHOWN);
    let by_policy = rows
        .into_iter()
        .take(POLICIES_SHOWN)
        .map(|r| PolicyEffectRow {
            name: r.name,
            side: r.side,
            enforced: r.enforced,
            proposed: r.proposed,
        })
        .collect();
    let users = d
        .changed_users
        .iter()
        .take(USERS_SHOWN)
        .map(|u| {
            let worst = u
                .worst(SetKind::Current)
                .or_else(|| u.worst(SetKind::Proposed));
            UserRow {
                user: u.label.clone(),
                worst: worst.map_or(String::new(), |e| e.label().to_owned()),
                color: worst.map_or("#7b8794", color),
                rank: worst.map_or(EFFECTS.len(), Effect::rank),
                enforced: user_text(&u.enforced),
                proposed: user_text(&u.proposed),
                policies: u.policies.join(", "),
            }
        })
        .collect();
    let bg = &d.break_glass;
    let finding = |status, color, f: &crate::checks::breakglass::Finding| FindingRow {
        status,
        color,
        account: f.account.clone(),
        policy: f.policy.clone(),
        what: f.what.clone(),
    };
    let mut break_glass: Vec<FindingRow> = Vec::new();
    for f in &bg.new_in_head {
        break_glass.push(finding(
            "new in head",
            if f.severity == "error" {
                "#c0392b"
            } else {
                "#d69e2e"
            },
            f,
        ));
    }
    for f in &bg.fixed_in_head {
        break_glass.push(finding("fixed in head", "#2f855a", f));
    }
    for (b, h) in &bg.changed {
        let mut row = finding("changed", "#7b8794", h);
        row.what = format!("{} (base: {})", h.what, b.what);
        break_glass.push(row);
    }
    let page = Page {
        title: format!("ca-replay diff: {}", d.tenant),
        subtitle: format!(
            "base {} ({} policies) → head {} ({} policies) · {} sign-ins from {} to {} · {} users",
            d.base_label,
            d.base_policies,
            d.head_label,
            d.head_policies,
            thousands(d.signins),
            d.from.map_or("-".into(), |t| t.to_rfc3339()),
            d.to.map_or("-".into(), |t| t.to_rfc3339()),
            thousands(d.users)
        ),
        headline: headline(d),
        pseudonymized: if d.pseudonymized { PSEUDONYMIZED } else { "" },
        gates: d.gates.clone(),
        cards,
        policies,
        unchanged: if d.policies_unchanged > 0 {
            format!(
                "{} unchanged.",
                plural(d.policies_unchanged as u64, "policy", "policies")
            )
        } else {
            String::new()
        },
        effects,
        changed_signins: (
            thousands(d.enforced.signins_changed),
            thousands(d.proposed.signins_changed),
        ),
        by_policy,
        by_policy_more,
        users,
        users_more: d.changed_users.len().saturating_sub(USERS_SHOWN),
        break_glass_summary: if bg.configured {
            format!(
                "{}: {} in base, {} in head.",
                bg.accounts.join(", "),
                plural(bg.base_errors as u64, "error", "errors"),
                plural(bg.head_errors as u64, "error", "errors")
            )
        } else {
            "No break-glass accounts are configured ([break_glass] in ca-replay.toml).".into()
        },
        break_glass,
        warnings: warnings(d, ingest),
    };
    let mut env = super::html::environment()?;
    env.add_template("diff.html", TEMPLATE)?;
    env.get_template("diff.html")?.render(&page)
}

/// The report files of `diff`, in the order they are written.
pub const FILES: [&str; 3] = ["diff.json", "diff.md", "diff.html"];

/// Renders `diff.json`, `diff.md` and `diff.html` (the names of [`FILES`], in that order).
pub fn render(d: &Diff, ingest: &IngestReport) -> std::io::Result<Vec<(&'static str, Vec<u8>)>> {
    let mut text = serde_json::to_string_pretty(&json(d, ingest)).unwrap_or_default();
    text.push('\n');
    let page = html(d, ingest)
        .map_err(|e| std::io::Error::other(format!("rendering diff.html: {e:#}")))?;
    Ok(vec![
        (FILES[0], text.into_bytes()),
        (FILES[1], markdown(d, ingest).into_bytes()),
        (FILES[2], page.into_bytes()),
    ])
}

/// Writes `diff.md`, `diff.json` and `diff.html` into `out`, each atomically.
pub fn write(out: &Path, d: &Diff, ingest: &IngestReport) -> std::io::Result<()> {
    for (name, bytes) in render(d, ingest)? {
        write_atomic(&out.join(name), &bytes)?;
    }
    Ok(())
}

/// [`write`], pseudonymized (`diff --pseudonymize`): `d` and `ingest` must have been
/// pseudonymized already (`report::pseudonymize::diff`); every file is checked for a value of
/// the input ([`crate::privacy::LeakCheck`]) and nothing is written unless every file passes.
pub fn write_pseudonymized(
    out: &Path,
    d: &Diff,
    ingest: &IngestReport,
    pz: &crate::privacy::Pseudonymizer,
) -> Result<(), super::WriteError> {
    let files = render(d, ingest)?;
    let check = pz.leak_check()?;
    for (name, bytes) in &files {
        check.file(name, bytes)?;
    }
    for (name, bytes) in &files {
        write_atomic(&out.join(name), bytes)?;
    }
    Ok(())
}
