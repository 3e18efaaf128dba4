//! `report.html`: one self-contained page (no network) for an admin who has never used the tool.
//!
//! In: the `summary.json` value (so the numbers are the same everywhere), the replay's daily
//! tallies, breakdowns and samples, and the affected-user aggregates. Out: HTML from the
//! template `report.html` (minijinja, auto-escaping every value, so names with markup stay
//! text), with inline SVG charts computed here: impact per policy as stacked bars, and the
//! proposed set's impact per day.

use std::collections::{BTreeMap, HashMap};

use minijinja::Environment;
use serde::Serialize;
use serde_json::Value;

use super::affected::{self, Affected};
use super::explain;
use super::markdown::{headline, percent, state_word, thousands};
use crate::domain::{Impact, PolicyState};
use crate::engine::SetKind;
use crate::replay::Replay;
use crate::signin::SignIn;
use crate::tenant::Tenant;

const TEMPLATE: &str = include_str!("report.html");
/// The style sheet of `report.html`, shared with `diff.html`.
const CSS: &str = include_str!("report.css");
const HEADLINE: &str = include_str!("headline.html");

/// A template environment with what report.html and diff.html share: the style sheet
/// (`report_css`) and the gates and headline cards (`{% include "headline.html" %}`).
pub(super) fn environment() -> Result<Environment<'static>, minijinja::Error> {
    let mut env = Environment::new();
    env.add_global(
        "report_css",
        minijinja::Value::from_safe_string(CSS.to_owned()),
    );
    env.add_template("headline.html", HEADLINE)?;
    Ok(env)
}

/// The impacts a chart shows, most severe first, with their colour and label.
const SHOWN: [(Impact, &str, &str); 6] = [
    (Impact::Blocked, "#c0392b", "blocked"),
    (Impact::PasswordChange, "#8e44ad", "password change"),
    (Impact::MfaRegistration, "#d35400", "MFA registration"),
    (Impact::MfaPrompt, "#f39c12", "MFA prompt"),
    (Impact::InteractiveReauth, "#2f6fde", "interactive re-auth"),
    (Impact::RegistrationNudge, "#16a085", "registration nudge"),
];

fn color(i: Impact) -> &'static str {
    SHOWN
        .iter()
        .find(|(x, _, _)| *x == i)
        .map_or("#7b8794", |(_, c, _)| c)
}

fn num(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

#[derive(Serialize)]
struct Card {
    label: &'static str,
    value: String,
    detail: String,
    color: &'static str,
}

#[derive(Serialize)]
struct Legend {
    label: &'static str,
    color: &'static str,
}

#[derive(Serialize)]
struct Seg {
    x: f64,
    w: f64,
    y: f64,
    h: f64,
    color: &'static str,
    title: String,
}

#[derive(Serialize)]
struct Bar {
    label: String,
    y: f64,
    end: f64,
    total: String,
    segments: Vec<Seg>,
}

#[derive(Serialize)]
struct PolicyChart {
    width: f64,
    height: f64,
    label_width: f64,
    plot_width: f64,
    bars: Vec<Bar>,
}

#[derive(Serialize)]
struct Day {
    x: f64,
    label: String,
    short: String,
    show_label: bool,
    segments: Vec<Seg>,
}

#[derive(Serialize)]
struct Tick {
    y: f64,
    label: String,
}

#[derive(Serialize)]
struct Timeline {
    width: f64,
    height: f64,
    left: f64,
    bar: f64,
    days: Vec<Day>,
    ticks: Vec<Tick>,
}

#[derive(Serialize)]
struct Row {
    label: String,
    n: String,
    pct: f64,
}

#[derive(Serialize)]
struct Breakdown {
    title: &'static str,
    rows: Vec<Row>,
}

#[derive(Serialize)]
struct PolicyRow {
    name: String,
    state: String,
    state_color: &'static str,
    cells: Vec<String>,
    affected_users: String,
    exclusions: Vec<String>,
}

#[derive(Serialize)]
struct UserRow {
    user: String,
    impact: &'static str,
    rank: u8,
    color: &'static str,
    signins: u64,
    signins_text: String,
    first_seen: String,
    last_seen: String,
    policies: String,
    policy_count: usize,
    policies_short: String,
}

/// One sign-in per impact with its full trace (`explain`'s text): computed from the original
/// inputs (it evaluates the sign-in again), before any pseudonymization.
#[derive(Serialize, Clone)]
pub struct Sample {
    impact: &'static str,
    color: &'static str,
    signin_id: String,
    pub(crate) text: String,
}

#[derive(Serialize)]
struct Page {
    title: String,
    subtitle: String,
    headline: String,
    trend: String,
    cards: Vec<Card>,
    legend: Vec<Legend>,
    policy_chart: PolicyChart,
    timeline: Timeline,
    breakdowns: Vec<Breakdown>,
    impact_headers: Vec<&'static str>,
    policies: Vec<PolicyRow>,
    users: Vec<UserRow>,
    users_more: usize,
    samples: Vec<Sample>,
    agreement: String,
    pseudonymized: bool,
    break_glass: Value,
    gates: Value,
    exclusions: Value,
    coverage: Value,
    migration: Value,
    indeterminate: Vec<String>,
    warnings: Vec<String>,
}

const USERS_SHOWN: usize = 500;

fn cards(summary: &Value) -> Vec<Card> {
    let d = &summary["difference"];
    let newly = |key: &str, i: Impact| {
        (
            thousands(num(&d[key])),
            format!(
                "users ({} sign-ins) newly",
                thousands(num(&d["signins_newly"][i.as_str()]))
            ),
        )
    };
    let mut out = Vec::new();
    for (label, key, impact) in [
        ("Newly blocked", "users_newly_blocked", Impact::Blocked),
        (
            "Newly forced to register",
            "users_newly_registering",
            Impact::MfaRegistration,
        ),
        (
            "Newly prompted for MFA",
            "users_newly_prompted",
            Impact::MfaPrompt,
        ),
        (
            "Back to interactive sign-in",
            "users_newly_reauth",
            Impact::InteractiveReauth,
        ),
    ] {
        let (value, detail) = newly(key, impact);
        out.push(Card {
            label,
            value,
            detail,
            color: color(impact),
        });
    }
    let inputs = &summary["inputs"];
    out.push(Card {
        label: "Sign-ins replayed",
        value: thousands(num(&inputs["signins"])),
        detail: format!(
            "{} users, {} evaluated",
            thousands(num(&inputs["users"])),
            thousands(num(&inputs["evaluated"]))
        ),
        color: "#52606d",
    });
    out
}

fn policy_chart(summary: &Value) -> PolicyChart {
    let (label_width, plot_width) = (330.0, 560.0);
    let empty = Vec::new();
    let rows: Vec<(String, Vec<(Impact, u64)>)> = summary["policies"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .filter(|p| p["state"].as_str() != Some("disabled"))
        .map(|p| {
            let counts = SHOWN
                .iter()
                .map(|(i, _, _)| (*i, num(&p["signins"][i.as_str()])))
                .collect();
            (p["name"].as_str().unwrap_or("").to_owned(), counts)
        })
        .filter(|(_, c): &(String, Vec<(Impact, u64)>)| c.iter().any(|(_, n)| *n > 0))
        .collect();
    let max = rows
        .iter()
        .map(|(_, c)| c.iter().map(|(_, n)| n).sum::<u64>())
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let bars = rows
        .into_iter()
        .enumerate()
        .map(|(k, (name, counts))| {
            let y = 8.0 + k as f64 * 28.0;
            let mut x = label_width;
            let total: u64 = counts.iter().map(|(_, n)| n).sum();
            let segments = counts
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(|(i, n)| {
                    let w = n as f64 / max * plot_width;
                    let s = Seg {
                        x,
                        w,
                        y,
                        h: 18.0,
                        color: color(i),
                        title: format!("{}: {} sign-ins", i.as_str(), thousands(n)),
                    };
                    x += w;
                    s
                })
                .collect();
            let label = if name.chars().count() > 48 {
                format!("{}…", name.chars().take(47).collect::<String>())
            } else {
                name
            };
            Bar {
                label,
                y,
                end: x,
                total: thousands(total),
                segments,
            }
        })
        .collect::<Vec<_>>();
    PolicyChart {
        width: label_width + plot_width + 70.0,
        height: 16.0 + bars.len() as f64 * 28.0,
        label_width,
        plot_width,
        bars,
    }
}

fn timeline(replay: &Replay) -> Timeline {
    let mut per_day: BTreeMap<i64, Vec<(Impact, u64)>> = BTreeMap::new();
    for ((day, kind, impact), n) in &replay.daily {
        let row = per_day.entry(*day).or_default();
        if *kind == SetKind::Proposed && SHOWN.iter().any(|(i, _, _)| i == impact) {
            row.push((*impact, *n));
        }
    }
    let (width, height, left, top, bottom) = (960.0, 240.0, 52.0, 10.0, 22.0);
    let plot_h = height - top - bottom;
    let max = per_day
        .values()
        .map(|v| v.iter().map(|(_, n)| n).sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let step = nice_step(max);
    let top_value = max.div_ceil(step) * step;
    let scale = plot_h / top_value as f64;
    let slots = per_day.len().max(1) as f64;
    let slot = (width - left) / slots;
    let bar = (slot * 0.72).max(1.0);
    let label_every = (per_day.len() / 14).max(1);
    let days = per_day
        .into_iter()
        .enumerate()
        .map(|(k, (day, mut counts))| {
            counts.sort_by_key(|(i, _)| std::cmp::Reverse(i.severity()));
            let date = chrono::DateTime::from_timestamp(day * 86_400, 0)
                .map(|d| d.date_naive())
                .unwrap_or_default();
            let mut y = top + plot_h;
            let segments = counts
                .into_iter()
                .map(|(i, n)| {
                    let h = n as f64 * scale;
                    y -= h;
                    Seg {
                        x: 0.0,
                        w: 0.0,
                        y,
                        h,
                        color: color(i),
                        title: format!("{} {}", thousands(n), i.as_str()),
                    }
                })
                .collect();
            Day {
                x: left + k as f64 * slot + (slot - bar) / 2.0,
                label: date.format("%a %Y-%m-%d").to_string(),
                short: date.format("%m-%d").to_string(),
                show_label: k % label_every == 0,
                segments,
            }
        })
        .collect();
    let ticks = (0..=top_value / step)
        .map(|t| Tick {
            y: top + plot_h - (t * step) as f64 * scale,
            label: thousands(t * step),
        })
        .collect();
    Timeline {
        width,
        height,
        left,
        bar,
        days,
        ticks,
    }
}

/// A round tick step giving about five lines up to `max`.
fn nice_step(max: u64) -> u64 {
    let raw = (max as f64 / 5.0).max(1.0);
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    step.max(1.0) as u64
}

fn breakdown<K: AsRef<str>>(title: &'static str, counts: &BTreeMap<K, u64>) -> Breakdown {
    let owned: BTreeMap<String, u64> = counts
        .iter()
        .map(|(k, n)| (k.as_ref().to_owned(), *n))
        .collect();
    let top = affected::top(&owned, 8);
    let max = top.first().map_or(1, |(_, n)| *n).max(1) as f64;
    Breakdown {
        title,
        rows: top
            .into_iter()
            .map(|(label, n)| Row {
                label,
                n: thousands(n),
                pct: (n as f64 / max * 100.0).round(),
            })
            .collect(),
    }
}

fn policy_rows(summary: &Value, affected: &Affected) -> Vec<PolicyRow> {
    let mut users: HashMap<usize, u64> = HashMap::new();
    for r in &affected.users {
        *users.entry(r.policy).or_default() += 1;
    }
    let empty = Vec::new();
    summary["policies"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .enumerate()
        .filter(|(_, p)| p["state"].as_str() != Some("disabled"))
        .map(|(pi, p)| {
            let state = p["state"].as_str().unwrap_or("");
            PolicyRow {
                name: p["name"].as_str().unwrap_or("").to_owned(),
                state: if state == PolicyState::ReportOnly.as_str() {
                    "report-only".to_owned()
                } else {
                    state.to_owned()
                },
                state_color: if state == "enabled" {
                    "#3e7c17"
                } else {
                    "#9aa5b1"
                },
                cells: SHOWN
                    .iter()
                    .map(|(i, _, _)| i)
                    .chain([&Impact::Indeterminate])
                    .map(|i| {
                        let s = num(&p["signins"][i.as_str()]);
                        if s == 0 {
                            "·".to_owned()
                        } else {
                            format!(
                                "{} ({})",
                                thousands(s),
                                thousands(num(&p["users"][i.as_str()]))
                            )
                        }
                    })
                    .collect(),
                affected_users: thousands(users.get(&pi).copied().unwrap_or(0)),
                exclusions: p["exclusions_fired"]
                    .as_array()
                    .unwrap_or(&empty)
                    .iter()
                    .take(4)
                    .map(|e| {
                        format!(
                            "{}: {} sign-ins, {} users",
                            e["entry"].as_str().unwrap_or(""),
                            thousands(num(&e["signins"])),
                            thousands(num(&e["users"]))
                        )
                    })
                    .collect(),
            }
        })
        .collect()
}

fn user_rows(tenant: &Tenant, affected: &Affected) -> (Vec<UserRow>, usize) {
    let ranked = affected::ranked(tenant, affected);
    let more = ranked.len().saturating_sub(USERS_SHOWN);
    let time = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M").to_string();
    let rows = ranked
        .into_iter()
        .take(USERS_SHOWN)
        .map(|w| UserRow {
            user: w.label.to_owned(),
            impact: w.impact.as_str(),
            rank: w.impact.severity(),
            color: color(w.impact),
            signins: w.signins,
            signins_text: thousands(w.signins),
            first_seen: time(w.first_seen),
            last_seen: time(w.last_seen),
            policies: w.policies.join(", "),
            policy_count: w.policies.len(),
            policies_short: w
                .policies
                .iter()
                .map(|p| short_name(p))
                .collect::<Vec<_>>()
                .join(", "),
        })
        .collect();
    (rows, more)
}

/// A policy's short name for crowded cells: the `CA001`-style prefix before a colon when
/// there is one, else the name cut to 28 characters.
fn short_name(name: &str) -> String {
    match name.split_once(':') {
        Some((prefix, _)) if prefix.len() <= 10 && !prefix.contains(' ') => prefix.to_owned(),
        _ if name.chars().count() > 28 => format!("{}…", name.chars().take(27).collect::<String>()),
        _ => name.to_owned(),
    }
}

/// The sign-ins `report.html` explains, one per proposed impact, most severe first.
pub fn samples(tenant: &Tenant, replay: &Replay) -> Vec<Sample> {
    let clocks = &replay.registration_clocks;
    let mut v: Vec<(&Impact, &SignIn)> = replay.samples.iter().collect();
    v.sort_by_key(|(i, _)| std::cmp::Reverse(i.severity()));
    v.into_iter()
        .map(|(i, s)| Sample {
            impact: i.as_str(),
            color: color(*i),
            signin_id: s.id.clone(),
            text: explain::text_with_clocks(tenant, clocks, s),
        })
        .collect()
}

/// Renders the page; the template is compiled into the binary, so an error here is a bug.
pub fn render(
    tenant: &Tenant,
    samples: Vec<Sample>,
    replay: &Replay,
    summary: &Value,
    affected: &Affected,
) -> Result<String, minijinja::Error> {
    let inputs = &summary["inputs"];
    let name = tenant
        .root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let b = &replay.proposed_by;
    let (users, users_more) = user_rows(tenant, affected);
    let v = &summary["self_validation"];
    let agreement = match num(&v["compared"]) {
        0 => String::new(),
        compared => format!(
            "For {} (sign-in, policy) pairs the logs record Entra's own verdict; ca-replay reaches the same one for {} ({:.2}%). See summary.json (self_validation) for any disagreement.",
            thousands(compared),
            thousands(num(&v["agreed"])),
            num(&v["agreed"]) as f64 * 100.0 / compared as f64
        ),
    };
    let strings = |key: &str| -> Vec<String> {
        match &summary[key] {
            Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect(),
            Value::Object(m) => m
                .iter()
                .map(|(k, n)| format!("{k}: {} sign-ins", thousands(num(n))))
                .collect(),
            _ => Vec::new(),
        }
    };
    let page = Page {
        title: format!("ca-replay: {name}"),
        subtitle: format!(
            "{} sign-ins from {} to {} · {} users · {} policies",
            thousands(num(&inputs["signins"])),
            inputs["from"].as_str().unwrap_or("-"),
            inputs["to"].as_str().unwrap_or("-"),
            thousands(num(&inputs["users"])),
            num(&inputs["policies"])
        ),
        headline: headline(tenant, summary),
        trend: super::markdown::trend_line(summary).unwrap_or_default(),
        cards: cards(summary),
        legend: SHOWN
            .iter()
            .map(|(_, color, label)| Legend { label, color })
            .collect(),
        policy_chart: policy_chart(summary),
        timeline: timeline(replay),
        breakdowns: vec![
            breakdown("Apps", &b.apps),
            breakdown("Platforms", &b.platforms),
            breakdown("Client app types", &b.client_apps),
            breakdown("Countries", &b.countries),
        ],
        impact_headers: vec![
            "Blocked",
            "Password change",
            "MFA registration",
            "MFA prompt",
            "Re-auth",
            "Nudge",
            "Indeterminate",
        ],
        policies: policy_rows(summary, affected),
        users,
        users_more,
        samples,
        agreement,
        pseudonymized: summary["pseudonymized"] == Value::Bool(true),
        break_glass: summary["break_glass"].clone(),
        gates: summary["gates"].clone(),
        exclusions: summary["exclusions"].clone(),
        coverage: summary["coverage"].clone(),
        migration: summary["legacy_migration"].clone(),
        indeterminate: strings("indeterminate_reasons"),
        warnings: strings("warnings"),
    };
    let mut env = environment()?;
    // Counts with thousands separators, `·` for none; policy states as people say them.
    env.add_filter("thousands", |v: minijinja::Value| match v.as_i64() {
        Some(n) if n >= 0 => thousands(n as u64),
        _ => "·".to_owned(),
    });
    env.add_filter("state_word", |s: String| state_word(&s).to_owned());
    env.add_filter("percent", |part: u64, whole: u64| percent(part, whole));
    env.add_template("report.html", TEMPLATE)?;
    env.get_template("report.html")?.render(&page)
}
