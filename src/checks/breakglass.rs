//! Break-glass (emergency access) accounts: can a policy lock them out?
//!
//! In: the tenant (`[break_glass]` of `ca-replay.toml`: users by id or UPN, groups expanded
//! transitively) and, for the behavioural part, the replayed sign-ins. Out: the accounts and
//! `Finding`s:
//! - static: every non-disabled policy that could block or challenge must leave each account
//!   out (excluded directly, by group, by role), unless the policy targets only break-glass
//!   accounts and asks them for MFA alone (Microsoft's guidance: phishing-resistant MFA for
//!   them); at least two accounts; each exists, is enabled and cloud-only where the directory
//!   says so; a configured group has members, and groups.json lists them;
//! - behavioural: every real sign-in of an account in the window is listed (Microsoft says to
//!   alert on each), with what the proposed set would do; one it would block, or meet with a
//!   control the account cannot satisfy, is a finding.
//!
//! Without configured accounts the check says so and lists likely candidates (users excluded
//! from most policies), without trusting them.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

use crate::directory::UserIdx;
use crate::domain::{Impact, PolicyState};
use crate::engine::{self, combine, explain, Check, Condition, Env, Evaluation, Facts, SetKind};
use crate::policy::{CompiledPolicy, Control, Operator, PolicyKind, UserRef};
use crate::signin::{SignIn, Ustr};
use crate::tenant::Tenant;

use super::{probe, user_label as label};

#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// `error` (an account could be locked out, or the setup is wrong) or `warning`.
    pub severity: &'static str,
    pub account: String,
    pub policy: String,
    pub what: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AccountSignIn {
    pub account: String,
    pub signin_id: String,
    pub created_at: String,
    pub app: String,
    pub current: &'static str,
    pub proposed: &'static str,
    pub decided_by: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    pub configured: bool,
    pub accounts: Vec<String>,
    /// Per account, the policies that leave it out and how (`policy: entry`).
    pub exclusions: Vec<(String, Vec<String>)>,
    pub findings: Vec<Finding>,
    pub signins: Vec<AccountSignIn>,
    /// When none are configured: users excluded from most challenging policies.
    pub candidates: Vec<(String, usize)>,
}

impl Report {
    pub fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == "error")
            .count()
    }
}

/// Whether the policy can stop or challenge anyone (a grant control, block, or a legacy
/// Identity Protection policy); session-only policies cannot lock anyone out.
fn could_challenge(p: &CompiledPolicy) -> bool {
    p.grant.block || !p.grant.controls.is_empty() || p.kind != PolicyKind::ConditionalAccess
}

/// The configured break-glass accounts that the directory has (users, and groups expanded).
pub fn configured_accounts(tenant: &Tenant) -> BTreeSet<UserIdx> {
    accounts(tenant, &mut Vec::new())
}

/// The configured accounts (users, and groups expanded), with findings for what cannot be found.
fn accounts(tenant: &Tenant, findings: &mut Vec<Finding>) -> BTreeSet<UserIdx> {
    let bg = &tenant.config.break_glass;
    let mut out = BTreeSet::new();
    for u in &bg.users {
        match tenant.dir.user_by_id_or_upn(u) {
            Some(i) if tenant.dir.user(i).listed => {
                out.insert(i);
            }
            _ => findings.push(Finding {
                severity: "error",
                account: u.clone(),
                policy: String::new(),
                what: "not in users.json: the account may not exist (check the id or UPN)".into(),
            }),
        }
    }
    for g in &bg.groups {
        match tenant.dir.group_by_id(g) {
            Some(gi) => {
                let members = tenant.dir.transitive_users(gi);
                // Without its member list (or a nested group's) the group's accounts are
                // unknown, not absent: membership is never guessed (design.md).
                if !tenant.dir.membership_known(gi) {
                    findings.push(Finding {
                        severity: "error",
                        account: format!("group {g}"),
                        policy: String::new(),
                        what: "groups.json does not list the members of the break-glass group (or of a group nested in it): its accounts cannot be checked".into(),
                    });
                } else if members.is_empty() {
                    findings.push(Finding {
                        severity: "error",
                        account: format!("group {g}"),
                        policy: String::new(),
                        what: "the break-glass group has no members".into(),
                    });
                }
                out.extend(members);
            }
            None => findings.push(Finding {
                severity: "error",
                account: format!("group {g}"),
                policy: String::new(),
                what: "not in groups.json".into(),
            }),
        }
    }
    out
}

/// Whether the policy is the one Microsoft's guidance asks for: it asks the break-glass accounts
/// for MFA (or an authentication strength) and nothing they could not meet, and every include
/// entry names only break-glass accounts (users, or groups whose members all are). A policy
/// that blocks them, or asks for a compliant device and the like, is no such exception
/// (entra-semantics.md §5: excluded from every policy except a dedicated phishing-resistant MFA
/// policy).
fn only_break_glass(tenant: &Tenant, p: &CompiledPolicy, accounts: &BTreeSet<UserIdx>) -> bool {
    let Some(users) = &p.users else {
        return false;
    };
    let mfa = |c: &Control| matches!(c, Control::Mfa | Control::AuthenticationStrength { .. });
    let met_by_mfa = p.grant.controls.is_empty()
        || match p.grant.operator {
            Operator::Or => p.grant.controls.iter().any(mfa),
            Operator::And => p.grant.controls.iter().all(mfa),
        };
    !p.grant.block
        && met_by_mfa
        && !users.include.is_empty()
        && users.include.iter().all(|e| match &e.target {
            UserRef::User(u) => accounts.contains(u),
            UserRef::Group(sym) => tenant
                .set
                .symbols
                .groups
                .get(*sym as usize)
                .is_some_and(|g| {
                    let m = tenant.dir.transitive_users(*g);
                    !m.is_empty() && m.iter().all(|u| accounts.contains(u))
                }),
            _ => false,
        })
}

pub fn check(tenant: &Tenant, signins: &[SignIn], clocks: &HashMap<String, i64>) -> Report {
    let env = tenant.env(clocks);
    let mut r = Report::default();
    let accounts = accounts(tenant, &mut r.findings);
    r.configured =
        !tenant.config.break_glass.users.is_empty() || !tenant.config.break_glass.groups.is_empty();
    let challenging: Vec<&CompiledPolicy> = tenant
        .set
        .policies
        .iter()
        .filter(|p| p.state != PolicyState::Disabled && p.users.is_some() && could_challenge(p))
        .collect();

    if !r.configured {
        r.findings.push(Finding {
            severity: "error",
            account: String::new(),
            policy: String::new(),
            what: "no break-glass accounts are configured ([break_glass] in ca-replay.toml): nothing checks that an emergency account can still sign in".into(),
        });
        r.candidates = candidates(tenant, &env, &challenging);
        return r;
    }
    if accounts.len() < 2 {
        r.findings.push(Finding {
            severity: "warning",
            account: String::new(),
            policy: String::new(),
            what: format!(
                "{} break-glass account(s): Microsoft recommends at least two",
                accounts.len()
            ),
        });
    }
    for &u in &accounts {
        let name = label(tenant, u);
        r.accounts.push(name.clone());
        let user = tenant.dir.user(u);
        if user.account_enabled == Some(false) {
            r.findings.push(Finding {
                severity: "error",
                account: name.clone(),
                policy: String::new(),
                what: "the account is disabled".into(),
            });
        }
        if user.on_premises_sync_enabled == Some(true) {
            r.findings.push(Finding {
                severity: "warning",
                account: name.clone(),
                policy: String::new(),
                what: "synchronized from on-premises: emergency accounts should be cloud-only"
                    .into(),
            });
        }
        let s = probe(tenant, u);
        let f = Facts::prepare(&env, &s, false);
        let mut left_out = Vec::new();
        for p in &challenging {
            if only_break_glass(tenant, p, &accounts) {
                continue;
            }
            let c = engine::users_check(&env, p, &f);
            let entry = |include: bool, i: Option<u16>| {
                let e = Evaluation {
                    applies: None,
                    impact: Impact::NotApplied,
                    why: engine::Why::NotApplied,
                    control: None,
                    trace: {
                        let mut t = [Check::Skipped; engine::CONDITIONS];
                        t[Condition::Users as usize] = if include {
                            Check::Matched(i)
                        } else {
                            Check::Excluded(i)
                        };
                        t
                    },
                };
                explain::trace_lines(&tenant.dir, &tenant.set, p, &e, f.user)
                    .into_iter()
                    .next()
                    .unwrap_or_default()
            };
            match c {
                Check::Excluded(i) => {
                    left_out.push(format!("{}: {}", p.display_name, entry(false, i)));
                }
                Check::NotMatched => {
                    left_out.push(format!("{}: not in scope", p.display_name));
                }
                Check::Matched(i) => r.findings.push(Finding {
                    severity: "error",
                    account: name.clone(),
                    policy: p.display_name.clone(),
                    what: format!(
                        "not excluded from {} policy that can {}: {}",
                        if p.state == PolicyState::Enabled {
                            "an enabled"
                        } else {
                            "a report-only"
                        },
                        if p.grant.block { "block" } else { "challenge" },
                        entry(true, i)
                    ),
                }),
                Check::Unknown(m) => r.findings.push(Finding {
                    severity: "error",
                    account: name.clone(),
                    policy: p.display_name.clone(),
                    what: format!("cannot tell whether it is excluded: {}", m.as_str()),
                }),
                Check::Skipped | Check::NotConfigured | Check::OtherSubject => {}
            }
        }
        r.exclusions.push((name, left_out));
    }
    behavioural(tenant, &env, signins, &accounts, &mut r);
    sweep(tenant, &env, &accounts, &mut r);
    r.findings.sort();
    r
}

/// Synthetic sign-ins of each account: every app the policies name (one stands for `All` and the
/// bundles), every platform, client app type, named location (and an unknown one) and sign-in
/// risk level, interactive, first factor passed, no MFA yet, against the proposed set less the
/// policies meant only for these accounts. Where the proposed set would block
/// one, or ask for a control the account cannot meet, one finding per (account, policy, impact)
/// gives the first such sign-in and how many of the sweep's sign-ins it hits.
fn sweep(tenant: &Tenant, env: &Env, accounts: &BTreeSet<UserIdx>, r: &mut Report) {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use crate::directory::locations::LocationKind;
    use crate::domain::{ClientApp, Platform, RiskLevel};
    use crate::policy::AppRef;

    // Exchange Online stands for `All` and the Office 365 bundle.
    let mut apps: BTreeSet<String> =
        BTreeSet::from(["00000002-0000-0ff1-ce00-000000000000".into()]);
    for p in &tenant.set.policies {
        for e in &p.apps.include {
            if let AppRef::Id(id) = &e.target {
                apps.insert(id.to_string());
            }
        }
    }
    let platforms = ["Windows10", "MacOs", "Ios 18", "Android 15", "Linux", ""];
    let clients = [
        "Browser",
        "Mobile Apps and Desktop clients",
        "Exchange ActiveSync",
        "IMAP4",
    ];
    // Where: an address in each IP location, a country of each country location, and nowhere known.
    let mut places: Vec<(String, Option<IpAddr>, String)> =
        vec![("an unknown address".into(), None, String::new())];
    for n in &tenant.dir.named_locations {
        match &n.kind {
            LocationKind::Ip { v4, v6, .. } => {
                let ip = v4
                    .first()
                    .map(|(lo, _)| IpAddr::V4(Ipv4Addr::from(*lo)))
                    .or_else(|| v6.first().map(|(lo, _)| IpAddr::V6(Ipv6Addr::from(*lo))));
                if let Some(ip) = ip {
                    places.push((format!("`{}`", n.display_name), Some(ip), String::new()));
                }
            }
            LocationKind::Country { countries, .. } => {
                if let Some(c) = countries.iter().next() {
                    places.push((format!("`{}` ({c})", n.display_name), None, c.clone()));
                }
            }
            LocationKind::CompliantNetwork => {}
        }
    }
    // Policies meant for these accounts only are by design: the sweep asks about the others.
    let designed: Vec<bool> = tenant
        .set
        .policies
        .iter()
        .map(|p| only_break_glass(tenant, p, accounts))
        .collect();
    let risks = [
        RiskLevel::None,
        RiskLevel::Low,
        RiskLevel::Medium,
        RiskLevel::High,
    ];
    for &u in accounts {
        let name = label(tenant, u);
        let capable = tenant
            .dir
            .registration(u)
            .is_some_and(|reg| reg.is_mfa_capable);
        let mut hits: std::collections::BTreeMap<(String, &'static str), (u64, String)> =
            Default::default();
        let base = probe(tenant, u);
        for app in &apps {
            for os in platforms {
                for client in clients {
                    for (place, ip, country) in &places {
                        for risk in risks {
                            let mut s = base.clone();
                            s.id = format!("sweep-{}", s.user_id);
                            s.app_id = Ustr::from(app);
                            s.resource_id = Ustr::from(app);
                            s.client_app_used = client.into();
                            s.client_app = ClientApp::from_client_app_used(client);
                            s.device.operating_system = os.into();
                            s.platform = Platform::detect(os, "");
                            s.ip_address = *ip;
                            s.country = Ustr::from(country);
                            s.sign_in_risk = Some(risk);
                            s.risk_level_aggregated = Some(risk);
                            let f = Facts::prepare(env, &s, false);
                            let evals: Vec<Option<Evaluation>> = tenant
                                .set
                                .policies
                                .iter()
                                .zip(&designed)
                                .map(|(p, designed)| {
                                    (p.state != PolicyState::Disabled && !designed)
                                        .then(|| engine::evaluate(env, p, &f))
                                })
                                .collect();
                            let o = combine(&tenant.set, &evals, SetKind::Proposed);
                            let locked = match o.impact {
                                Impact::Blocked
                                | Impact::PasswordChange
                                | Impact::MfaRegistration => true,
                                Impact::MfaPrompt | Impact::InteractiveReauth => !capable,
                                _ => false,
                            };
                            if !locked {
                                continue;
                            }
                            let by = o
                                .decided_by
                                .and_then(|i| tenant.set.policies.get(i))
                                .map(|p| p.display_name.clone())
                                .unwrap_or_default();
                            let example = format!(
                                "app {app}, platform {}, client `{client}`, from {place}, sign-in risk {}",
                                if os.is_empty() { "unknown" } else { s.platform.as_str() },
                                risk.as_str()
                            );
                            let e = hits.entry((by, o.impact.as_str())).or_insert((0, example));
                            e.0 += 1;
                        }
                    }
                }
            }
        }
        let total = apps.len() * platforms.len() * clients.len() * places.len() * risks.len();
        for ((policy, impact), (n, example)) in hits {
            r.findings.push(Finding {
                severity: "error",
                account: name.clone(),
                policy,
                what: format!(
                    "the proposed set would answer {n} of {total} synthetic sign-ins with {impact}, e.g. {example}"
                ),
            });
        }
    }
}

/// Every real sign-in of an account, with the current and proposed outcomes.
fn behavioural(
    tenant: &Tenant,
    env: &Env,
    signins: &[SignIn],
    accounts: &BTreeSet<UserIdx>,
    r: &mut Report,
) {
    for s in signins {
        let Some(u) = tenant.dir.user_by_id(&s.user_id) else {
            continue;
        };
        if !accounts.contains(&u) {
            continue;
        }
        let name = label(tenant, u);
        let (current, proposed, decided_by) = if let Some(why) = engine::not_evaluated(s) {
            (why, why, String::new())
        } else {
            let f = Facts::prepare(env, s, false);
            let evals: Vec<Option<Evaluation>> = tenant
                .set
                .policies
                .iter()
                .map(|p| (p.state != PolicyState::Disabled).then(|| engine::evaluate(env, p, &f)))
                .collect();
            let cur = combine(&tenant.set, &evals, SetKind::Current);
            let prop = combine(&tenant.set, &evals, SetKind::Proposed);
            let by = prop
                .decided_by
                .and_then(|i| tenant.set.policies.get(i))
                .map(|p| p.display_name.clone())
                .unwrap_or_default();
            let capable = tenant
                .dir
                .registration(u)
                .is_some_and(|reg| reg.is_mfa_capable);
            let locked = match prop.impact {
                Impact::Blocked | Impact::PasswordChange | Impact::MfaRegistration => true,
                Impact::MfaPrompt | Impact::InteractiveReauth => !capable,
                _ => false,
            };
            if locked {
                r.findings.push(Finding {
                    severity: "error",
                    account: name.clone(),
                    policy: by.clone(),
                    what: format!(
                        "the proposed set would answer its sign-in {} ({}) with {}",
                        s.id,
                        s.created_at.to_rfc3339(),
                        prop.impact.as_str()
                    ),
                });
            }
            (cur.impact.as_str(), prop.impact.as_str(), by)
        };
        r.signins.push(AccountSignIn {
            account: name,
            signin_id: s.id.clone(),
            created_at: s.created_at.to_rfc3339(),
            app: if s.app_display_name.is_empty() {
                s.app_id.to_string()
            } else {
                s.app_display_name.to_string()
            },
            current,
            proposed,
            decided_by,
        });
    }
}

/// Users excluded from at least half of the challenging policies: likely emergency accounts.
fn candidates(tenant: &Tenant, env: &Env, challenging: &[&CompiledPolicy]) -> Vec<(String, usize)> {
    if challenging.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<(String, usize)> = (0..tenant.dir.users.len() as UserIdx)
        .filter(|&u| tenant.dir.user(u).listed)
        .filter_map(|u| {
            let s = probe(tenant, u);
            let f = Facts::prepare(env, &s, false);
            let n = challenging
                .iter()
                .filter(|p| matches!(engine::users_check(env, p, &f), Check::Excluded(_)))
                .count();
            (n * 2 >= challenging.len()).then(|| (label(tenant, u), n))
        })
        .collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out.truncate(10);
    out
}
