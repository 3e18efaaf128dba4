//! Exclusion hygiene: what every exclude entry of every policy did, and what is wrong with it.
//!
//! In: the tenant and, for the behavioural part, the sign-ins replayed and the `Replay` (its
//! `exclusions`: which exclude entry decided, for how many sign-ins and users). Out: one
//! `Excluded` item per exclude entry of the users condition of every non-disabled policy (users,
//! groups, roles, guests or external users; legacy Identity Protection policies too) with its
//! blast radius, and `Finding`s:
//! - `placeholder` (error, as validation rated it): an entry that is not an object id (template
//!   text, `<…>`, a display name, a UPN) excludes nobody;
//! - `missing` (warning): a user or group id the directory does not have excludes nobody;
//! - `empty` (warning): a group with no transitive members; a role nobody holds (info: role
//!   exclusions are often kept for whoever gets the role later); `unknown_membership` (info)
//!   where the directory does not carry the members, so "empty" cannot be told;
//! - `stale` (info, needs sign-ins): a user with no sign-in in the window; a group or role none
//!   of whose users signed in. Entries naming only break-glass accounts are not stale: those
//!   accounts are meant not to sign in;
//! - `coverage_gap` (warning; info for break-glass accounts): users excluded from every policy
//!   of the proposed set (enabled + report-only, design.md) that requires MFA (`mfa` or an
//!   authentication strength) among those whose include side names them. Only the users
//!   condition is read: a user caught by a narrower MFA policy (one app, risky sign-ins only) is
//!   not in the gap; `coverage` measures what real traffic gets.
//!
//! [`static_findings`] is the part that needs no sign-ins (for `lint`).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use super::{breakglass, directory_users, probe, user_label, Severity};
use crate::directory::UserIdx;
use crate::engine::{self, explain, Check, Condition, Facts};
use crate::policy::{self, CompiledPolicy, PolicyKind, UserRef};
use crate::replay::Replay;
use crate::report::thousands;
use crate::signin::SignIn;
use crate::tenant::Tenant;

/// Users named per coverage-gap group (all are counted).
pub const GAP_USERS_LISTED: usize = 20;

/// One finding about one exclude entry (or, for `coverage_gap`, about users).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub severity: Severity,
    /// `placeholder`, `missing`, `empty`, `unknown_membership`, `stale` or `coverage_gap`.
    pub kind: &'static str,
    /// The policy's display name (empty for a coverage gap).
    pub policy: String,
    pub policy_id: String,
    /// The entry as `engine::explain::exclusion_text` names it (empty for a coverage gap).
    pub entry: String,
    pub what: String,
}

/// One exclude entry of one policy.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Excluded {
    pub policy_id: String,
    pub policy: String,
    pub state: &'static str,
    /// The Graph list: `excludeUsers`, `excludeGroups`, `excludeRoles`,
    /// `excludeGuestsOrExternalUsers`.
    pub clause: String,
    /// The entry as `engine::explain::exclusion_text` names it: `excludeGroups[0] group `X``.
    pub entry: String,
    /// `user`, `group`, `role`, `guests_or_external_users` or `placeholder`.
    pub kind: &'static str,
    /// Sign-ins this entry took out of the policy's scope (the exclusion decided), and their
    /// distinct users; `None` without a replay. A user matched by several exclude entries is
    /// credited to the first, as the engine decides.
    pub signins: Option<u64>,
    pub users: Option<u64>,
    /// Users the entry names (a user: 1; a group: transitive members; a role: active holders);
    /// `None` when unknown or not a list of users (guests by type).
    pub members: Option<u64>,
    /// Of them, those with a sign-in in the window; `None` without sign-ins.
    pub members_signed_in: Option<u64>,
    /// `ok`, `placeholder`, `missing`, `empty`, `unknown`, `stale`, or `break_glass` (no sign-in
    /// in the window, but it names only break-glass accounts, which should not sign in).
    pub status: &'static str,
}

/// Users excluded from every MFA policy that includes them, grouped by how they are excluded.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Gap {
    pub severity: Severity,
    /// Every user of the group is a configured break-glass account.
    pub break_glass: bool,
    pub users: usize,
    /// The first users, by label.
    pub first: Vec<String>,
    /// Per MFA policy that includes them: `policy: entry` of the exclusion that removes them.
    pub excluded_by: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    /// Non-disabled policies with a users condition.
    pub policies_checked: usize,
    pub entries: Vec<Excluded>,
    /// False when there were no sign-ins to tell stale entries by.
    pub stale_assessed: bool,
    /// The policies of the proposed set that require MFA, which the coverage gap reads.
    pub mfa_policies: Vec<String>,
    pub coverage_gap: Vec<Gap>,
    /// Users who might be in the gap, but whose inclusion the inputs cannot decide.
    pub coverage_gap_unknown_users: usize,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }
}

/// An entry while the check runs: where it is, and the users it names.
struct Row {
    policy: usize,
    /// Index into the compiled exclude list (`None`: dropped while compiling, a placeholder).
    index: Option<u16>,
    members: Option<Vec<UserIdx>>,
    item: Excluded,
}

/// The findings that need no sign-ins: placeholders, missing ids, empty groups and roles,
/// unknown memberships, and the coverage gap. What `lint` reports.
pub fn static_findings(tenant: &Tenant) -> Vec<Finding> {
    let (_, mut findings) = entries(tenant);
    let (_, gap_findings, _) = coverage_gap(tenant);
    findings.extend(gap_findings);
    findings.sort();
    findings
}

/// The whole check: the static findings, each entry's blast radius from the replay, and stale
/// entries from the sign-ins.
pub fn check(tenant: &Tenant, signins: &[SignIn], replay: &Replay) -> Report {
    let mut signed_in = HashSet::new();
    add_signed_in(tenant, signins, &mut signed_in);
    check_with(tenant, &signed_in, !signins.is_empty(), replay)
}

/// Adds the directory users the sign-ins belong to (what [`check_with`] needs of them).
pub fn add_signed_in(tenant: &Tenant, signins: &[SignIn], signed_in: &mut HashSet<UserIdx>) {
    signed_in.extend(
        signins
            .iter()
            .filter(|s| !s.user_id.is_empty())
            .filter_map(|s| tenant.dir.user_by_id(&s.user_id)),
    );
}

/// [`check`] from the users who signed in (`add_signed_in`); `any_signins`: whether the run
/// had sign-ins at all (without, staleness is not assessed).
pub fn check_with(
    tenant: &Tenant,
    signed_in: &HashSet<UserIdx>,
    any_signins: bool,
    replay: &Replay,
) -> Report {
    let (rows, mut findings) = entries(tenant);
    let break_glass = breakglass::configured_accounts(tenant);
    let stale_assessed = any_signins;
    let mut out = Vec::with_capacity(rows.len());
    for mut row in rows {
        let fired = row
            .index
            .and_then(|j| {
                replay
                    .exclusions
                    .get(&(row.policy, Condition::Users, Some(j)))
            })
            .map_or((0, 0), |f| (f.signins, f.users.len() as u64));
        row.item.signins = Some(fired.0);
        row.item.users = Some(fired.1);
        if let (Some(members), true) = (&row.members, stale_assessed) {
            let active = members.iter().filter(|u| signed_in.contains(u)).count();
            row.item.members_signed_in = Some(active as u64);
            if active == 0 && !members.is_empty() && row.item.status == "ok" {
                if members.iter().all(|u| break_glass.contains(u)) {
                    row.item.status = "break_glass";
                } else {
                    row.item.status = "stale";
                    let who = match row.item.kind {
                        "user" => "the user".to_owned(),
                        "role" => format!("none of its {} holder(s)", members.len()),
                        _ => format!("none of its {} member(s)", members.len()),
                    };
                    findings.push(Finding {
                        severity: Severity::Info,
                        kind: "stale",
                        policy: row.item.policy.clone(),
                        policy_id: row.item.policy_id.clone(),
                        entry: row.item.entry.clone(),
                        what: format!(
                            "stale: {who} signed in not once in the window; the exclusion is kept for nobody active (a departed or dormant account?)"
                        ),
                    });
                }
            }
        }
        out.push(row.item);
    }
    let (gaps, gap_findings, unknown) = coverage_gap(tenant);
    findings.extend(gap_findings);
    findings.sort();
    Report {
        policies_checked: tenant
            .set
            .active()
            .filter(|(_, p)| p.users.is_some())
            .count(),
        entries: out,
        stale_assessed,
        mfa_policies: mfa_policies(tenant)
            .map(|(_, p)| p.display_name.clone())
            .collect(),
        coverage_gap: gaps,
        coverage_gap_unknown_users: unknown,
        findings,
    }
}

fn finding(
    severity: Severity,
    kind: &'static str,
    p: &CompiledPolicy,
    entry: &str,
    what: String,
) -> Finding {
    Finding {
        severity,
        kind,
        policy: p.display_name.clone(),
        policy_id: p.id.clone(),
        entry: entry.to_owned(),
        what,
    }
}

/// `/conditions/users/excludeGroups/2` → `excludeGroups`.
fn clause(pointer: &str) -> String {
    let mut parts = pointer.rsplit('/');
    match (parts.next(), parts.next()) {
        (Some(i), Some(field)) if i.chars().all(|c| c.is_ascii_digit()) => field.to_owned(),
        (Some(field), _) => field.to_owned(),
        _ => pointer.to_owned(),
    }
}

/// The text between the first pair of backticks of a validation message: the value.
fn backticked(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once('`')?;
    rest.split_once('`').map(|(v, _)| v)
}

/// Every exclude entry of the users condition of every non-disabled policy, with the static
/// findings about it.
fn entries(tenant: &Tenant) -> (Vec<Row>, Vec<Finding>) {
    let dir = &tenant.dir;
    let set = &tenant.set;
    let mut rows = Vec::new();
    let mut findings = Vec::new();
    for (pi, p) in set.active() {
        let Some(users) = &p.users else { continue };
        for (j, e) in users.exclude.iter().enumerate() {
            let index = u16::try_from(j).ok();
            let entry = explain::exclusion_text(dir, set, p, Condition::Users, index);
            let mut item = Excluded {
                policy_id: p.id.clone(),
                policy: p.display_name.clone(),
                state: p.state.as_str(),
                clause: clause(&e.pointer),
                entry: entry.clone(),
                kind: "user",
                signins: None,
                users: None,
                members: None,
                members_signed_in: None,
                status: "ok",
            };
            let mut members = None;
            let mut flag = |item: &mut Excluded, status, severity, kind, what: String| {
                item.status = status;
                findings.push(finding(severity, kind, p, &entry, what));
            };
            match &e.target {
                UserRef::User(u) => {
                    if dir.provided.users && !dir.user(*u).listed {
                        flag(
                            &mut item,
                            "missing",
                            Severity::Warning,
                            "missing",
                            format!(
                                "user `{}` is not in users.json: the entry excludes nobody (a deleted account?)",
                                e.raw
                            ),
                        );
                    } else {
                        members = Some(vec![*u]);
                    }
                }
                UserRef::Group(sym) => {
                    item.kind = "group";
                    let Some(&g) = set.symbols.groups.get(*sym as usize) else {
                        continue;
                    };
                    let name = &dir.group(g).display_name;
                    let name = if name.is_empty() { &e.raw } else { name };
                    if !dir.membership_known(g) {
                        flag(
                            &mut item,
                            "unknown",
                            Severity::Info,
                            "unknown_membership",
                            format!(
                                "groups.json does not carry the members of group `{name}` or of a group nested in it: whom it excludes is unknown"
                            ),
                        );
                    } else {
                        let mut m: Vec<UserIdx> = dir.transitive_users(g).into_iter().collect();
                        m.sort_unstable();
                        if m.is_empty() {
                            flag(
                                &mut item,
                                "empty",
                                Severity::Warning,
                                "empty",
                                format!(
                                    "group `{name}` has no members, also through nested groups: the entry excludes nobody"
                                ),
                            );
                        }
                        members = Some(m);
                    }
                }
                UserRef::MissingGroup => {
                    item.kind = "group";
                    if dir.provided.groups {
                        flag(
                            &mut item,
                            "missing",
                            Severity::Warning,
                            "missing",
                            format!(
                                "group `{}` is not in groups.json: the entry excludes nobody (a deleted group?)",
                                e.raw
                            ),
                        );
                    } else {
                        flag(
                            &mut item,
                            "unknown",
                            Severity::Info,
                            "unknown_membership",
                            "groups.json is not provided: whom the group excludes is unknown"
                                .into(),
                        );
                    }
                }
                UserRef::Role(sym) => {
                    item.kind = "role";
                    let Some(role) = set.symbols.roles.get(*sym as usize) else {
                        continue;
                    };
                    if !dir.provided.roles {
                        flag(
                            &mut item,
                            "unknown",
                            Severity::Info,
                            "unknown_membership",
                            "roleAssignments.json is not provided: whom the role excludes is unknown"
                                .into(),
                        );
                    } else {
                        let m = dir.role_holders(role);
                        if m.is_empty() {
                            flag(
                                &mut item,
                                "empty",
                                Severity::Info,
                                "empty",
                                format!(
                                    "nobody holds role {} actively at directory scope: the entry excludes nobody today",
                                    explain::role_name(role)
                                ),
                            );
                        }
                        members = Some(m);
                    }
                }
                UserRef::GuestsOrExternal | UserRef::External(_) => {
                    item.kind = "guests_or_external_users";
                }
                // Compilation refuses `All` in an exclude list; kept for completeness.
                UserRef::All => item.kind = "all_users",
            }
            item.members = members.as_ref().map(|m| m.len() as u64);
            rows.push(Row {
                policy: pi,
                index,
                members,
                item,
            });
        }
        placeholders(tenant, pi, p, &mut rows, &mut findings);
    }
    (rows, findings)
}

/// Exclude entries that validation dropped (not object ids): each named by its clause and value,
/// with validation's message and severity.
fn placeholders(
    tenant: &Tenant,
    pi: usize,
    p: &CompiledPolicy,
    rows: &mut Vec<Row>,
    findings: &mut Vec<Finding>,
) {
    let Some(users) = &p.users else { return };
    // Compiled entries of Conditional Access policies point inside the policy object; findings
    // carry the policy's place in its file too. Legacy policies' entries point from the file.
    let full = |pointer: &str| match p.kind {
        PolicyKind::ConditionalAccess => format!("{}{pointer}", p.origin.pointer),
        _ => pointer.to_owned(),
    };
    let prefix = match p.kind {
        PolicyKind::ConditionalAccess => format!("{}/conditions/users/", p.origin.pointer),
        _ => format!("{}/", p.origin.pointer),
    };
    let kept: HashSet<String> = users.exclude.iter().map(|e| full(&e.pointer)).collect();
    let mut seen = HashSet::new();
    for f in &tenant.set.findings {
        if f.file != p.origin.file || kept.contains(&f.pointer) {
            continue;
        }
        let Some(rest) = f.pointer.strip_prefix(&prefix) else {
            continue;
        };
        let Some((list, i)) = rest.split_once('/') else {
            continue;
        };
        if !["excludeUsers", "excludeGroups", "excludeRoles"].contains(&list)
            || i.is_empty()
            || !i.chars().all(|c| c.is_ascii_digit())
            || !seen.insert(f.pointer.clone())
        {
            continue;
        }
        let entry = match backticked(&f.message) {
            Some(v) => format!("{list}[{i}] `{v}`"),
            None => format!("{list}[{i}]"),
        };
        let severity = match f.severity {
            policy::Severity::Error => Severity::Error,
            policy::Severity::Unsupported | policy::Severity::Warning => Severity::Warning,
        };
        findings.push(finding(
            severity,
            "placeholder",
            p,
            &entry,
            format!("not an object id, so it excludes nobody: {}", f.message),
        ));
        rows.push(Row {
            policy: pi,
            index: None,
            members: None,
            item: Excluded {
                policy_id: p.id.clone(),
                policy: p.display_name.clone(),
                state: p.state.as_str(),
                clause: list.to_owned(),
                entry,
                kind: "placeholder",
                signins: None,
                users: None,
                members: None,
                members_signed_in: None,
                status: "placeholder",
            },
        });
    }
}

/// The policies of the proposed set (every non-disabled one) that require MFA of users.
fn mfa_policies(tenant: &Tenant) -> impl Iterator<Item = (usize, &CompiledPolicy)> {
    tenant
        .set
        .active()
        .filter(|(_, p)| p.users.is_some() && p.requires_mfa())
}

/// How a gap's users are left out: (all break-glass accounts, [(policy, exclude entry)]).
type GapKey = (bool, Vec<(usize, Option<u16>)>);

/// Users excluded from every MFA policy whose include side names them, grouped by the
/// exclusions that remove them (and by whether they are break-glass accounts); the findings;
/// and how many users the inputs could not decide.
fn coverage_gap(tenant: &Tenant) -> (Vec<Gap>, Vec<Finding>, usize) {
    let mfa: Vec<(usize, &CompiledPolicy)> = mfa_policies(tenant).collect();
    if mfa.is_empty() {
        let f = Finding {
            severity: Severity::Warning,
            kind: "coverage_gap",
            policy: String::new(),
            policy_id: String::new(),
            entry: String::new(),
            what: "no policy of the proposed set (enabled and report-only) requires MFA: nobody is covered"
                .into(),
        };
        return (Vec::new(), vec![f], 0);
    }
    let no_clocks = HashMap::new();
    let env = tenant.env(&no_clocks);
    let break_glass = breakglass::configured_accounts(tenant);
    let mut groups: BTreeMap<GapKey, Vec<UserIdx>> = BTreeMap::new();
    let mut unknown = 0;
    for u in directory_users(tenant) {
        let s = probe(tenant, u);
        let f = Facts::prepare(&env, &s, false);
        let mut excluded = Vec::new();
        let (mut covered, mut undecided) = (false, false);
        for &(pi, p) in &mfa {
            match engine::users_check(&env, p, &f) {
                Check::Matched(_) => {
                    covered = true;
                    break;
                }
                Check::Excluded(j) => excluded.push((pi, j)),
                Check::Unknown(_) => undecided = true,
                _ => {}
            }
        }
        if covered || excluded.is_empty() {
            continue;
        }
        if undecided {
            unknown += 1;
            continue;
        }
        groups
            .entry((break_glass.contains(&u), excluded))
            .or_default()
            .push(u);
    }
    let mut gaps = Vec::new();
    let mut findings = Vec::new();
    for ((bg, excluded), users) in groups {
        let mut labels: Vec<String> = users.iter().map(|&u| user_label(tenant, u)).collect();
        labels.sort();
        let excluded_by: Vec<String> = excluded
            .iter()
            .filter_map(|&(pi, j)| {
                let p = tenant.set.policies.get(pi)?;
                Some(format!(
                    "{}: {}",
                    p.display_name,
                    explain::exclusion_text(&tenant.dir, &tenant.set, p, Condition::Users, j)
                ))
            })
            .collect();
        let severity = if bg {
            Severity::Info
        } else {
            Severity::Warning
        };
        let shown: Vec<&str> = labels.iter().take(5).map(String::as_str).collect();
        let more = labels.len().saturating_sub(shown.len());
        findings.push(Finding {
            severity,
            kind: "coverage_gap",
            policy: String::new(),
            policy_id: String::new(),
            entry: String::new(),
            what: format!(
                "{} user(s) excluded from every policy of the proposed set that requires MFA and includes them ({}{}): {}{}",
                thousands(labels.len() as u64),
                shown.join(", "),
                if more > 0 {
                    format!(", and {} more", thousands(more as u64))
                } else {
                    String::new()
                },
                excluded_by.join("; "),
                if bg {
                    " (break-glass accounts: expected if they are to be left out of MFA policies; Microsoft now recommends a phishing-resistant MFA policy for them)"
                } else {
                    ""
                }
            ),
        });
        gaps.push(Gap {
            severity,
            break_glass: bg,
            users: labels.len(),
            first: labels.into_iter().take(GAP_USERS_LISTED).collect(),
            excluded_by,
        });
    }
    (gaps, findings, unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clause_and_value_from_pointers_and_messages() {
        assert_eq!(clause("/conditions/users/excludeGroups/2"), "excludeGroups");
        assert_eq!(
            clause("/conditions/users/excludeGuestsOrExternalUsers"),
            "excludeGuestsOrExternalUsers"
        );
        assert_eq!(
            backticked("placeholder `<BreakGlass>` where an object id is expected"),
            Some("<BreakGlass>")
        );
        assert_eq!(backticked("no value here"), None);
    }

    #[test]
    fn severities_sort_errors_first() {
        let mut v = vec![Severity::Info, Severity::Error, Severity::Warning];
        v.sort();
        assert_eq!(v, [Severity::Error, Severity::Warning, Severity::Info]);
    }
}
