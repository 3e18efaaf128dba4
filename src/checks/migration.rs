//! Legacy migration: the Identity Protection risk policies against the Conditional Access
//! policies that replace them, replayed over the same sign-ins.
//!
//! Microsoft retired the legacy risk policies on 2026-10-01 (entra-semantics.md §4.1). Matching rule: a
//! Conditional Access policy replaces `idp-signin-risk` when it is not disabled, targets users and
//! has a sign-in risk condition (`signInRiskLevels`); it replaces `idp-user-risk` when it has a
//! user risk condition (`userRiskLevels`). Several replacements act together, as in a policy set:
//! their impact on a sign-in is the most severe one, `indeterminate` only when none decided.
//! `idp-mfa-registration` has no Conditional Access replacement: the report says so and compares
//! nothing.
//!
//! In: the tenant, the sign-ins, the MFA registration clocks. Out: per legacy policy, the users
//! in the scope of one side only (the users condition, over the directory's users), the
//! sign-ins whose impact differs (counts per (legacy, replacement) impact pair, the first
//! examples), and a one-line verdict. Both sides are evaluated as if enforced, whatever their
//! state, so a report-only replacement is compared with what the legacy policy enforces.

use std::collections::{BTreeMap, HashMap};

use rayon::prelude::*;
use serde::Serialize;

use super::{directory_users, probe, user_label};
use crate::domain::{Impact, PolicyState};
use crate::engine::{self, evaluate, Check, Env, Facts};
use crate::policy::{CompiledPolicy, PolicyKind};
use crate::report::thousands;
use crate::signin::SignIn;
use crate::tenant::Tenant;

/// When Microsoft retired the legacy risk policies.
pub const RETIREMENT: &str = "2026-10-01";

/// Examples of differing sign-ins kept per legacy policy (all are counted).
pub const EXAMPLES_KEPT: usize = 20;

/// Users listed per side (all are counted).
pub const USERS_LISTED: usize = 20;

const CHUNK: usize = 4096;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PolicyRef {
    pub id: String,
    pub name: String,
    pub state: &'static str,
}

impl PolicyRef {
    fn of(p: &CompiledPolicy) -> PolicyRef {
        PolicyRef {
            id: p.id.clone(),
            name: p.display_name.clone(),
            state: p.state.as_str(),
        }
    }
}

/// Users in the scope of one side only.
#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
pub struct Scope {
    pub legacy: usize,
    pub replacement: usize,
    pub legacy_only: usize,
    pub replacement_only: usize,
    /// Users whose inclusion on either side the inputs cannot decide.
    pub unknown: usize,
    pub legacy_only_first: Vec<String>,
    pub replacement_only_first: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Pair {
    pub legacy: &'static str,
    pub replacement: &'static str,
    pub signins: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Example {
    pub signin_id: String,
    pub created_at: String,
    pub user: String,
    pub legacy: &'static str,
    pub replacement: &'static str,
}

/// The sign-ins both sides were replayed over.
#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
pub struct Outcomes {
    pub compared: u64,
    pub same: u64,
    pub different: u64,
    /// Of the differences: the replacement is more severe, less severe, or one side is
    /// indeterminate.
    pub replacement_stricter: u64,
    pub replacement_laxer: u64,
    pub indeterminate: u64,
    /// Of the same: sign-ins both sides find indeterminate (agreement not shown, only not
    /// contradicted).
    pub both_indeterminate: u64,
    /// Every (legacy, replacement) impact pair that occurred, most sign-ins first.
    pub pairs: Vec<Pair>,
    pub differences_first: Vec<Example>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub legacy: PolicyRef,
    /// `compared`, `no_replacement`, or `no_ca_equivalent` (the MFA registration policy).
    pub status: &'static str,
    pub replacements: Vec<PolicyRef>,
    pub users: Option<Scope>,
    pub signins: Option<Outcomes>,
    pub verdict: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    pub retirement: &'static str,
    pub matching_rule: &'static str,
    pub policies: Vec<Comparison>,
    /// One line for the whole section (also when there is nothing to compare).
    pub summary: String,
}

const MATCHING_RULE: &str = "a Conditional Access policy that is not disabled, targets users and has a sign-in risk condition replaces the legacy sign-in risk policy; one with a user risk condition replaces the legacy user risk policy; several replacements act together (the most severe impact)";

/// Whether `p` replaces the legacy policy of kind `kind` (the module's matching rule).
pub fn replaces(p: &CompiledPolicy, kind: PolicyKind) -> bool {
    p.kind == PolicyKind::ConditionalAccess
        && p.state != PolicyState::Disabled
        && p.users.is_some()
        && match kind {
            PolicyKind::LegacySignInRisk => p.sign_in_risk.is_some(),
            PolicyKind::LegacyUserRisk => p.user_risk.is_some(),
            _ => false,
        }
}

pub fn check(tenant: &Tenant, signins: &[SignIn], clocks: &HashMap<String, i64>) -> Report {
    let mut acc = MigrationAcc::new(tenant);
    acc.add(tenant, clocks, signins);
    check_with(tenant, clocks, acc)
}

/// The policies (by index) that replace a legacy policy of this kind.
fn replacements_of(tenant: &Tenant, kind: PolicyKind) -> Vec<usize> {
    tenant
        .set
        .policies
        .iter()
        .enumerate()
        .filter(|(_, p)| replaces(p, kind))
        .map(|(i, _)| i)
        .collect()
}

/// The legacy risk policies that have replacements: (legacy policy, replacements), in policy
/// order.
fn comparisons(tenant: &Tenant) -> Vec<(usize, Vec<usize>)> {
    tenant
        .set
        .policies
        .iter()
        .enumerate()
        .filter(|(_, l)| {
            matches!(
                l.kind,
                PolicyKind::LegacySignInRisk | PolicyKind::LegacyUserRisk
            )
        })
        .map(|(li, l)| (li, replacements_of(tenant, l.kind)))
        .filter(|(_, rs)| !rs.is_empty())
        .collect()
}

/// The sign-in side of the check, built batch by batch: each (legacy policy, replacements)
/// pair replayed over the sign-ins.
pub struct MigrationAcc {
    pairs: Vec<(usize, Vec<usize>)>,
    accs: Vec<Acc>,
    seen: usize,
}

impl MigrationAcc {
    pub fn new(tenant: &Tenant) -> MigrationAcc {
        let pairs = comparisons(tenant);
        MigrationAcc {
            accs: pairs.iter().map(|_| Acc::default()).collect(),
            pairs,
            seen: 0,
        }
    }

    /// Adds a batch of sign-ins, evaluated with the given MFA registration clocks.
    pub fn add(&mut self, tenant: &Tenant, clocks: &HashMap<String, i64>, signins: &[SignIn]) {
        if self.pairs.is_empty() {
            return;
        }
        let env = tenant.env(clocks);
        let pairs: Vec<(usize, &[usize])> = self
            .pairs
            .iter()
            .map(|(li, rs)| (*li, rs.as_slice()))
            .collect();
        let found = outcomes(tenant, &env, signins, &pairs, self.seen);
        for (a, b) in self.accs.iter_mut().zip(found) {
            a.merge(b);
        }
        self.seen += signins.len();
    }
}

/// [`check`] from the sign-in side built beforehand.
pub fn check_with(tenant: &Tenant, clocks: &HashMap<String, i64>, acc: MigrationAcc) -> Report {
    let env = tenant.env(clocks);
    let mut found: HashMap<usize, Acc> =
        acc.pairs.iter().map(|(li, _)| *li).zip(acc.accs).collect();
    let mut policies = Vec::new();
    // (place in `policies`, legacy policy, replacements) of the comparisons to replay.
    let mut pending: Vec<(usize, usize, Vec<usize>)> = Vec::new();
    for (li, l) in tenant.set.policies.iter().enumerate() {
        let what = match l.kind {
            PolicyKind::ConditionalAccess => continue,
            PolicyKind::LegacyMfaRegistration => {
                policies.push(Comparison {
                    legacy: PolicyRef::of(l),
                    status: "no_ca_equivalent",
                    replacements: Vec::new(),
                    users: None,
                    signins: None,
                    verdict: "Conditional Access has no MFA registration policy to replace it (the closest, the `registersecurityinfo` user action, secures registration rather than requiring it); Microsoft names no retirement date for it, so nothing is compared.".into(),
                });
                continue;
            }
            PolicyKind::LegacySignInRisk => "sign-in risk",
            PolicyKind::LegacyUserRisk => "user risk",
        };
        let rs = replacements_of(tenant, l.kind);
        let replacements: Vec<PolicyRef> = rs
            .iter()
            .map(|&i| PolicyRef::of(&tenant.set.policies[i]))
            .collect();
        if rs.is_empty() {
            policies.push(Comparison {
                legacy: PolicyRef::of(l),
                status: "no_replacement",
                replacements,
                users: None,
                signins: None,
                verdict: format!(
                    "No Conditional Access policy with a {what} condition replaces it: create one (in report-only first); Microsoft retired the legacy risk policies on {RETIREMENT}."
                ),
            });
            continue;
        }
        let users = scope(tenant, &env, li, &rs);
        pending.push((policies.len(), li, rs));
        policies.push(Comparison {
            legacy: PolicyRef::of(l),
            status: "compared",
            replacements,
            users: Some(users),
            signins: None,
            verdict: String::new(),
        });
    }
    for (at, li, rs) in &pending {
        let o = summarize(found.remove(li).unwrap_or_default());
        if let Some(c) = policies.get_mut(*at) {
            if let Some(users) = &c.users {
                c.verdict = verdict(tenant, rs, users, &o);
            }
            c.signins = Some(o);
        }
    }
    let compared = policies.iter().filter(|c| c.status == "compared").count();
    let summary = if policies.is_empty() {
        "No legacy Identity Protection policies in this tenant (identityProtection.json): nothing to migrate.".to_owned()
    } else {
        format!(
            "Microsoft retired the legacy Identity Protection risk policies on {RETIREMENT}. Of the {} legacy polic{} here, {compared} {} compared with {} Conditional Access replacement{}.",
            policies.len(),
            if policies.len() == 1 { "y" } else { "ies" },
            if compared == 1 { "is" } else { "are" },
            if compared == 1 { "its" } else { "their" },
            if compared == 1 { "" } else { "s" },
        )
    };
    Report {
        retirement: RETIREMENT,
        matching_rule: MATCHING_RULE,
        policies,
        summary,
    }
}

/// The directory's users in the scope (users condition) of the legacy policy and of any
/// replacement.
fn scope(tenant: &Tenant, env: &Env, legacy: usize, replacements: &[usize]) -> Scope {
    let policies = &tenant.set.policies;
    let mut out = Scope::default();
    let (mut legacy_only, mut replacement_only) = (Vec::new(), Vec::new());
    for u in directory_users(tenant) {
        let s = probe(tenant, u);
        let f = Facts::prepare(env, &s, false);
        let side = |p: &CompiledPolicy| match engine::users_check(env, p, &f) {
            Check::Matched(_) => Some(true),
            Check::Unknown(_) => None,
            _ => Some(false),
        };
        let l = side(&policies[legacy]);
        let mut r = Some(false);
        for &i in replacements {
            match side(&policies[i]) {
                Some(true) => {
                    r = Some(true);
                    break;
                }
                None => r = None,
                Some(false) => {}
            }
        }
        match (l, r) {
            (Some(l), Some(r)) => {
                out.legacy += usize::from(l);
                out.replacement += usize::from(r);
                if l && !r {
                    legacy_only.push(user_label(tenant, u));
                } else if r && !l {
                    replacement_only.push(user_label(tenant, u));
                }
            }
            _ => out.unknown += 1,
        }
    }
    legacy_only.sort();
    replacement_only.sort();
    out.legacy_only = legacy_only.len();
    out.replacement_only = replacement_only.len();
    out.legacy_only_first = legacy_only.into_iter().take(USERS_LISTED).collect();
    out.replacement_only_first = replacement_only.into_iter().take(USERS_LISTED).collect();
    out
}

/// The replacements' impact together: the most severe one decided, else `indeterminate` when
/// one is, else `not_applied`.
fn together(impacts: impl Iterator<Item = Impact>) -> Impact {
    let mut worst = Impact::NotApplied;
    let mut unknown = false;
    for i in impacts {
        if i == Impact::Indeterminate {
            unknown = true;
        } else if i.severity() > worst.severity() {
            worst = i;
        }
    }
    if worst == Impact::NotApplied && unknown {
        Impact::Indeterminate
    } else {
        worst
    }
}

#[derive(Default)]
struct Acc {
    compared: u64,
    pairs: BTreeMap<(Impact, Impact), u64>,
    /// The first differences: (place in the replay's order, the example).
    examples: Vec<(usize, Example)>,
}

impl Acc {
    fn merge(&mut self, b: Acc) {
        self.compared += b.compared;
        for (k, n) in b.pairs {
            *self.pairs.entry(k).or_default() += n;
        }
        self.examples.extend(b.examples);
        self.examples.sort_by_key(|e| e.0);
        self.examples.truncate(EXAMPLES_KEPT);
    }
}

fn example(s: &SignIn, l: Impact, r: Impact) -> Example {
    Example {
        signin_id: s.id.clone(),
        created_at: s.created_at.to_rfc3339(),
        user: if s.user_principal_name.is_empty() {
            s.user_id.to_string()
        } else {
            s.user_principal_name.to_string()
        },
        legacy: l.as_str(),
        replacement: r.as_str(),
    }
}

/// Replays each (legacy policy, replacements) pair over the sign-ins, in one parallel pass;
/// `base`: the sign-ins before these, in the replay's order.
fn outcomes(
    tenant: &Tenant,
    env: &Env,
    signins: &[SignIn],
    pairs: &[(usize, &[usize])],
    base: usize,
) -> Vec<Acc> {
    let policies = &tenant.set.policies;
    let fresh = || -> Vec<Acc> { pairs.iter().map(|_| Acc::default()).collect() };
    signins
        .par_chunks(CHUNK)
        .enumerate()
        .fold(fresh, |mut accs, (ci, chunk)| {
            for (k, s) in chunk.iter().enumerate() {
                if engine::not_evaluated(s).is_some() {
                    continue;
                }
                let f = Facts::prepare(env, s, false);
                for (acc, &(legacy, replacements)) in accs.iter_mut().zip(pairs) {
                    let l = evaluate(env, &policies[legacy], &f).impact;
                    let r = together(
                        replacements
                            .iter()
                            .map(|&i| evaluate(env, &policies[i], &f).impact),
                    );
                    acc.compared += 1;
                    *acc.pairs.entry((l, r)).or_default() += 1;
                    if l != r && acc.examples.len() < EXAMPLES_KEPT {
                        acc.examples.push((base + ci * CHUNK + k, example(s, l, r)));
                    }
                }
            }
            accs
        })
        .reduce(fresh, |mut a, b| {
            for (a, b) in a.iter_mut().zip(b) {
                a.merge(b);
            }
            a
        })
}

fn summarize(acc: Acc) -> Outcomes {
    let mut out = Outcomes {
        compared: acc.compared,
        ..Outcomes::default()
    };
    for (&(l, r), &n) in &acc.pairs {
        if l == r {
            out.same += n;
            if l == Impact::Indeterminate {
                out.both_indeterminate += n;
            }
            continue;
        }
        out.different += n;
        if l == Impact::Indeterminate || r == Impact::Indeterminate {
            out.indeterminate += n;
        } else if r.severity() > l.severity() {
            out.replacement_stricter += n;
        } else {
            out.replacement_laxer += n;
        }
    }
    let mut pairs: Vec<Pair> = acc
        .pairs
        .iter()
        .map(|(&(l, r), &n)| Pair {
            legacy: l.as_str(),
            replacement: r.as_str(),
            signins: n,
        })
        .collect();
    pairs.sort_by_key(|p| std::cmp::Reverse(p.signins));
    out.pairs = pairs;
    out.differences_first = acc.examples.into_iter().map(|(_, e)| e).collect();
    out
}

fn verdict(tenant: &Tenant, replacements: &[usize], users: &Scope, o: &Outcomes) -> String {
    let names: Vec<&str> = replacements
        .iter()
        .filter_map(|&i| tenant.set.policies.get(i))
        .map(|p| p.display_name.as_str())
        .collect();
    let not_on: Vec<&str> = replacements
        .iter()
        .filter_map(|&i| tenant.set.policies.get(i))
        .filter(|p| p.state != PolicyState::Enabled)
        .map(|p| p.display_name.as_str())
        .collect();
    if o.different == 0
        && users.legacy_only == 0
        && users.replacement_only == 0
        && users.unknown == 0
    {
        let next = if not_on.is_empty() {
            "the legacy policy can be disabled".to_owned()
        } else {
            format!(
                "switch {} on, then disable the legacy policy",
                not_on.join(", ")
            )
        };
        let unknown = match o.both_indeterminate {
            0 => String::new(),
            n => format!(" ({} of them indeterminate on both sides)", thousands(n)),
        };
        return format!(
            "Equivalent: {} covers the same users and gives the same outcome on all {} sign-ins replayed{unknown}; {next}.",
            names.join(" + "),
            thousands(o.compared)
        );
    }
    let mut parts = Vec::new();
    if o.different > 0 {
        parts.push(format!(
            "{} of {} sign-ins end differently ({} stricter under the replacement, {} laxer, {} indeterminate on one side)",
            thousands(o.different),
            thousands(o.compared),
            thousands(o.replacement_stricter),
            thousands(o.replacement_laxer),
            thousands(o.indeterminate)
        ));
    }
    if users.legacy_only > 0 {
        parts.push(format!(
            "{} user(s) only in the legacy policy's scope",
            thousands(users.legacy_only as u64)
        ));
    }
    if users.replacement_only > 0 {
        parts.push(format!(
            "{} user(s) only in the replacement's",
            thousands(users.replacement_only as u64)
        ));
    }
    if users.unknown > 0 {
        parts.push(format!(
            "{} user(s) whose scope the inputs cannot decide",
            thousands(users.unknown as u64)
        ));
    }
    format!(
        "Differs: {}: review {} before disabling the legacy policy (retired by Microsoft on {RETIREMENT}).",
        parts.join("; "),
        names.join(" + ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacements_act_together() {
        use Impact::*;
        assert_eq!(together([NotApplied, MfaPrompt].into_iter()), MfaPrompt);
        assert_eq!(together([Indeterminate, MfaPrompt].into_iter()), MfaPrompt);
        assert_eq!(
            together([Indeterminate, NotApplied].into_iter()),
            Indeterminate
        );
        assert_eq!(together([Blocked, MfaPrompt].into_iter()), Blocked);
        assert_eq!(together(std::iter::empty()), NotApplied);
    }
}
