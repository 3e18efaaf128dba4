//! What a policy change does (`ca-replay diff`): two policy sets, *base* and *head* (the
//! `policies/` folder on `main` and in a pull request), replayed over the same sign-ins with the
//! same directory, compared sign-in by sign-in in two views: **enforced** (enabled policies
//! only: what users feel once the change merges) and **proposed** (enabled and report-only,
//! design.md's proposed set).
//!
//! In: the two loaded tenants, the policies as read (for the fields that differ), the sign-ins
//! and each side's MFA registration clocks. Out: a [`Diff`]: the policies added, removed and
//! changed (with the JSON pointers that differ); per view the users and sign-ins newly blocked,
//! prompted, forced to register or to change their password, no longer protected, and the
//! reverse, with the policy that decided each, per user; and the break-glass findings new and
//! fixed in head. Outcomes are combined with the engine's rules (`engine::combine`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use crate::checks::breakglass::{self, Finding};
use crate::domain::Impact;
use crate::engine::{self, combine, Env, Evaluation, Facts, SetKind, Why};
use crate::policy::{LoadedPolicy, PolicySet};
use crate::replay::{self, Shift, UserNumbers, UserSet};
use crate::report::affected::is_affected;
use crate::signin::SignIn;
use crate::tenant::Tenant;

/// Which side of the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    Base,
    Head,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Base => "base",
            Side::Head => "head",
        }
    }
}

/// What the change does to one sign-in in one view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Effect {
    /// The outcome is more severe in head; the impact in head.
    Newly(Impact),
    /// Base required MFA (or registration, a password change) or blocked; head does neither.
    NoLongerProtected,
    /// Head requires MFA or blocks; base did neither.
    NewlyProtected,
    /// The outcome is less severe in head; the impact in base (what the user no longer gets).
    Eased(Impact),
}

/// The effects reports show, in their order: tightening first, then protection, then easing.
pub const EFFECTS: [Effect; 14] = [
    Effect::Newly(Impact::Blocked),
    Effect::Newly(Impact::PasswordChange),
    Effect::Newly(Impact::MfaRegistration),
    Effect::Newly(Impact::MfaPrompt),
    Effect::Newly(Impact::InteractiveReauth),
    Effect::Newly(Impact::RegistrationNudge),
    Effect::NoLongerProtected,
    Effect::NewlyProtected,
    Effect::Eased(Impact::Blocked),
    Effect::Eased(Impact::PasswordChange),
    Effect::Eased(Impact::MfaRegistration),
    Effect::Eased(Impact::MfaPrompt),
    Effect::Eased(Impact::InteractiveReauth),
    Effect::Eased(Impact::RegistrationNudge),
];

impl Effect {
    /// The JSON key (`newly_blocked`, `no_longer_protected`, `no_longer_prompted`, …).
    pub fn key(self) -> &'static str {
        match self {
            Effect::Newly(i) => match i {
                Impact::Blocked => "newly_blocked",
                Impact::PasswordChange => "newly_password_change",
                Impact::MfaRegistration => "newly_registering",
                Impact::MfaPrompt => "newly_prompted",
                Impact::InteractiveReauth => "newly_reauth",
                Impact::RegistrationNudge => "newly_nudged",
                _ => "newly_other",
            },
            Effect::NoLongerProtected => "no_longer_protected",
            Effect::NewlyProtected => "newly_protected",
            Effect::Eased(i) => match i {
                Impact::Blocked => "no_longer_blocked",
                Impact::PasswordChange => "no_longer_password_change",
                Impact::MfaRegistration => "no_longer_registering",
                Impact::MfaPrompt => "no_longer_prompted",
                Impact::InteractiveReauth => "no_longer_reauth",
                Impact::RegistrationNudge => "no_longer_nudged",
                _ => "no_longer_other",
            },
        }
    }
    /// Words for a report: "newly blocked", "no longer prompted for MFA", ….
    pub fn label(self) -> &'static str {
        match self {
            Effect::Newly(i) => match i {
                Impact::Blocked => "newly blocked",
                Impact::PasswordChange => "newly forced to change their password",
                Impact::MfaRegistration => "newly forced to register for MFA",
                Impact::MfaPrompt => "newly prompted for MFA",
                Impact::InteractiveReauth => "newly sent back to sign in interactively",
                Impact::RegistrationNudge => "newly nudged to register for MFA",
                _ => "newly challenged",
            },
            Effect::NoLongerProtected => "no longer protected by MFA or a block",
            Effect::NewlyProtected => "newly protected by MFA or a block",
            Effect::Eased(i) => match i {
                Impact::Blocked => "no longer blocked",
                Impact::PasswordChange => "no longer forced to change their password",
                Impact::MfaRegistration => "no longer forced to register for MFA",
                Impact::MfaPrompt => "no longer prompted for MFA",
                Impact::InteractiveReauth => "no longer sent back to sign in interactively",
                Impact::RegistrationNudge => "no longer nudged to register for MFA",
                _ => "no longer challenged",
            },
        }
    }
    /// Position in [`EFFECTS`]: lower is worse for the users (or the tenant).
    pub fn rank(self) -> usize {
        EFFECTS
            .iter()
            .position(|e| *e == self)
            .unwrap_or(EFFECTS.len())
    }
    /// Whether the sign-in's outcome got stricter in head (`Newly`).
    pub fn is_tightening(self) -> bool {
        matches!(self, Effect::Newly(_))
    }
}

/// Sign-ins and distinct users.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counted {
    pub signins: u64,
    pub users: usize,
}

/// How a policy changed between base and head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    Changed,
    Added,
    Removed,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Changed => "changed",
            Change::Added => "added",
            Change::Removed => "removed",
        }
    }
}

/// One policy added, removed or changed (matched by id, case-insensitively).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyChange {
    pub change: Change,
    pub id: String,
    /// `displayName` (head's when both have one), else the id.
    pub name: String,
    /// `state` as written, on each side that has the policy.
    pub state_base: Option<String>,
    pub state_head: Option<String>,
    /// JSON pointers that differ (changed policies only), e.g. `/state`,
    /// `/conditions/users/excludeGroups`.
    pub pointers: Vec<String>,
}

/// The effects attributed to one policy: for a sign-in made stricter (or newly protected) the
/// head policy that decided head's outcome; for one eased (or no longer protected) the base
/// policy that decided base's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyEffects {
    pub side: Side,
    pub id: String,
    pub name: String,
    pub effects: BTreeMap<Effect, Counted>,
}

/// One view's comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub kind: SetKind,
    /// Sign-ins whose outcome differs (also between `not_applied` and `satisfied`).
    pub signins_changed: u64,
    pub effects: BTreeMap<Effect, Counted>,
    /// Most affected first.
    pub by_policy: Vec<PolicyEffects>,
    /// Sign-ins where at least one policy of the set was indeterminate, per side: their outcome
    /// may be more severe than the one compared.
    pub indeterminate_base: u64,
    pub indeterminate_head: u64,
    pub newly_blocked_users: usize,
    pub newly_prompted_users: usize,
    pub newly_registering_users: usize,
    pub newly_password_change_users: usize,
    pub no_longer_protected_users: usize,
}

impl View {
    /// "enforced" (enabled policies) or "proposed" (enabled and report-only).
    pub fn name(&self) -> &'static str {
        view_name(self.kind)
    }
    pub fn get(&self, e: Effect) -> Counted {
        self.effects.get(&e).copied().unwrap_or_default()
    }
}

pub fn view_name(kind: SetKind) -> &'static str {
    match kind {
        SetKind::Current => "enforced",
        SetKind::Proposed => "proposed",
    }
}

/// One user whose sign-ins the change affects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEffects {
    pub user_id: String,
    /// The user principal name, else the id.
    pub label: String,
    /// Sign-ins per effect, in the enforced and the proposed view.
    pub enforced: BTreeMap<Effect, u64>,
    pub proposed: BTreeMap<Effect, u64>,
    /// The policies that decided (by display name, sorted).
    pub policies: Vec<String>,
}

impl UserEffects {
    /// The worst effect in a view, if any.
    pub fn worst(&self, kind: SetKind) -> Option<Effect> {
        let m = match kind {
            SetKind::Current => &self.enforced,
            SetKind::Proposed => &self.proposed,
        };
        m.keys().copied().min_by_key(|e| e.rank())
    }
}

/// Break-glass findings of base and head side by side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BreakGlassDiff {
    pub configured: bool,
    /// Head's accounts.
    pub accounts: Vec<String>,
    pub base_errors: usize,
    pub head_errors: usize,
    /// Findings of head that base does not have (neither word for word nor for the same
    /// account and policy).
    pub new_in_head: Vec<Finding>,
    /// Findings of base that head no longer has.
    pub fixed_in_head: Vec<Finding>,
    /// The same account and policy in both, worded differently: (base, head).
    pub changed: Vec<(Finding, Finding)>,
}

impl BreakGlassDiff {
    /// Error findings new in head: what a CI gate fails on.
    pub fn new_errors(&self) -> usize {
        self.new_in_head
            .iter()
            .filter(|f| f.severity == "error")
            .count()
    }
}

/// Everything `diff` found.
#[derive(Debug, Clone)]
pub struct Diff {
    /// The tenant folder's name.
    pub tenant: String,
    pub base_label: String,
    pub head_label: String,
    /// The commit the base revision names (git revisions only).
    pub base_commit: Option<String>,
    pub base_policies: usize,
    pub head_policies: usize,
    /// Added, removed and changed policies, by name.
    pub policies: Vec<PolicyChange>,
    pub policies_unchanged: usize,
    pub signins: u64,
    pub evaluated: u64,
    pub not_evaluated: BTreeMap<&'static str, u64>,
    pub users: u64,
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    pub enforced: View,
    pub proposed: View,
    /// Users with any effect in either view, worst first.
    pub changed_users: Vec<UserEffects>,
    pub break_glass: BreakGlassDiff,
    /// Error findings of break-glass new in head (see [`BreakGlassDiff::new_errors`]).
    pub break_glass_new_errors: usize,
    /// Non-blocking policy findings of each side and directory problems.
    pub warnings: Vec<String>,
    /// The CI gates, checked (set by the command before the reports are written).
    pub gates: Vec<crate::checks::gates::GateResult>,
    /// Users, IPs and devices are pseudonyms (`diff --pseudonymize`; set by
    /// `report::pseudonymize::diff`).
    pub pseudonymized: bool,
}

impl Diff {
    pub fn view(&self, kind: SetKind) -> &View {
        match kind {
            SetKind::Current => &self.enforced,
            SetKind::Proposed => &self.proposed,
        }
    }
}

/// Orders changed users worst first (enforced view, then proposed), then by more sign-ins,
/// then by label and id (again after the labels were pseudonymized, so that the order does not
/// tell how the original labels sort).
pub fn sort_users(users: &mut [UserEffects]) {
    let rank = |u: &UserEffects| {
        let worst = |k| u.worst(k).map_or(EFFECTS.len(), Effect::rank);
        let signins: u64 = u.enforced.values().chain(u.proposed.values()).sum();
        (
            worst(SetKind::Current),
            worst(SetKind::Proposed),
            std::cmp::Reverse(signins),
        )
    };
    users.sort_by(|a, b| {
        rank(a)
            .cmp(&rank(b))
            .then_with(|| (&a.label, &a.user_id).cmp(&(&b.label, &b.user_id)))
    });
}

/// The two sides to compare.
pub struct Sides<'a> {
    pub base: &'a Tenant,
    pub head: &'a Tenant,
    pub base_clocks: &'a HashMap<String, i64>,
    pub head_clocks: &'a HashMap<String, i64>,
    /// The policies as read, for the fields that differ.
    pub base_loaded: &'a [LoadedPolicy],
    pub head_loaded: &'a [LoadedPolicy],
    pub tenant: String,
    pub base_label: String,
    pub head_label: String,
    pub base_commit: Option<String>,
    pub options: crate::policy::BuildOptions,
}

// ---- policies: added, removed, changed ------------------------------------------------------

fn json_str(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// The policies added, removed and changed between base and head, matched by id
/// (case-insensitively), and how many are the same.
pub fn policy_changes(base: &[LoadedPolicy], head: &[LoadedPolicy]) -> (Vec<PolicyChange>, usize) {
    let by_id = |ps: &[LoadedPolicy]| -> BTreeMap<String, LoadedPolicy> {
        ps.iter()
            .map(|p| (p.id.to_ascii_lowercase(), p.clone()))
            .collect()
    };
    let (b, h) = (by_id(base), by_id(head));
    let mut out = Vec::new();
    let mut same = 0;
    let ids: BTreeSet<&String> = b.keys().chain(h.keys()).collect();
    for id in ids {
        let name = |p: &LoadedPolicy| json_str(&p.json, "displayName").unwrap_or(p.id.clone());
        let (change, pointers, p) = match (b.get(id), h.get(id)) {
            (Some(x), Some(y)) => {
                let pointers = json_differences(&x.json, &y.json);
                if pointers.is_empty() {
                    same += 1;
                    continue;
                }
                (Change::Changed, pointers, y)
            }
            (None, Some(y)) => (Change::Added, Vec::new(), y),
            (Some(x), None) => (Change::Removed, Vec::new(), x),
            (None, None) => continue,
        };
        out.push(PolicyChange {
            change,
            id: p.id.clone(),
            name: name(p),
            state_base: b.get(id).and_then(|x| json_str(&x.json, "state")),
            state_head: h.get(id).and_then(|x| json_str(&x.json, "state")),
            pointers,
        });
    }
    out.sort_by(|x, y| (&x.name, &x.id).cmp(&(&y.name, &y.id)));
    (out, same)
}

/// The JSON pointers at which two policy objects differ. A missing key, `null`, `[]`, `""` and
/// an object of such values all mean "not set" and compare equal; a list of plain values
/// (ids, keywords) is compared as a set, so reordering it is no change, and a differing one is
/// named by the list's own pointer (`/conditions/users/excludeGroups`).
pub fn json_differences(a: &Value, b: &Value) -> Vec<String> {
    let mut out = Vec::new();
    differ(Some(a), Some(b), "", &mut out);
    out
}

fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn differ(a: Option<&Value>, b: Option<&Value>, at: &str, out: &mut Vec<String>) {
    let empty = |v: Option<&Value>| v.is_none_or(crate::source::is_empty);
    if empty(a) && empty(b) {
        return;
    }
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                differ(
                    x.get(k),
                    y.get(k),
                    &format!("{at}/{}", escape_pointer(k)),
                    out,
                );
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            let plain = |v: &Vec<Value>| v.iter().all(|e| !e.is_object() && !e.is_array());
            if plain(x) && plain(y) {
                let sorted = |v: &Vec<Value>| {
                    let mut s: Vec<String> = v.iter().map(Value::to_string).collect();
                    s.sort();
                    s
                };
                if sorted(x) != sorted(y) {
                    out.push(at.to_owned());
                }
            } else if x.len() == y.len() {
                for (i, (p, q)) in x.iter().zip(y).enumerate() {
                    differ(Some(p), Some(q), &format!("{at}/{i}"), out);
                }
            } else {
                out.push(at.to_owned());
            }
        }
        _ => {
            if a != b {
                out.push(if at.is_empty() {
                    "/".into()
                } else {
                    at.to_owned()
                });
            }
        }
    }
}

// ---- break-glass ----------------------------------------------------------------------------

/// Compares the break-glass reports of base and head: findings word for word first; what is
/// left pairs up by (severity, account, policy) as *changed* (a count or the policy's state
/// worded differently is not a new finding); the rest is new in head or fixed in head.
pub fn break_glass(base: &breakglass::Report, head: &breakglass::Report) -> BreakGlassDiff {
    let mut left_base: Vec<Finding> = base.findings.clone();
    let mut unmatched_head = Vec::new();
    for f in &head.findings {
        match left_base.iter().position(|b| b == f) {
            Some(i) => {
                left_base.remove(i);
            }
            None => unmatched_head.push(f.clone()),
        }
    }
    let key = |f: &Finding| (f.severity, f.account.clone(), f.policy.clone());
    let mut new_in_head = Vec::new();
    let mut changed = Vec::new();
    for f in unmatched_head {
        match left_base.iter().position(|b| key(b) == key(&f)) {
            Some(i) => changed.push((left_base.remove(i), f)),
            None => new_in_head.push(f),
        }
    }
    BreakGlassDiff {
        configured: head.configured,
        accounts: head.accounts.clone(),
        base_errors: base.errors(),
        head_errors: head.errors(),
        new_in_head,
        fixed_in_head: left_base,
        changed,
    }
}

// ---- the replay of both sides ---------------------------------------------------------------

/// Whether a policy's evaluation protects the sign-in: it blocks, or asks for MFA (or more: MFA
/// registration, a password change), or would have if the sign-in had not already done MFA.
fn protects(e: &Evaluation) -> bool {
    match e.impact {
        Impact::Blocked
        | Impact::PasswordChange
        | Impact::MfaRegistration
        | Impact::MfaPrompt
        | Impact::InteractiveReauth => true,
        Impact::Satisfied => e.why == Why::MfaAlreadySatisfied,
        _ => false,
    }
}

/// The policy of the set that protects the sign-in most (the most severe protective
/// evaluation; the first on ties), if any.
fn protector(set: &PolicySet, evals: &[Option<Evaluation>], kind: SetKind) -> Option<usize> {
    let mut best: Option<(usize, Impact)> = None;
    for (i, (p, e)) in set.policies.iter().zip(evals).enumerate() {
        let Some(e) = e else { continue };
        if !kind.includes(p.state) || !protects(e) {
            continue;
        }
        if best.is_none_or(|(_, b)| e.impact.severity() > b.severity()) {
            best = Some((i, e.impact));
        }
    }
    best.map(|(i, _)| i)
}

#[derive(Debug, Clone, Default)]
struct Count {
    signins: u64,
    users: UserSet,
}

impl Count {
    fn add(&mut self, user: Option<u32>) {
        self.signins += 1;
        if let Some(u) = user {
            self.users.insert(u);
        }
    }
    fn merge(&mut self, o: &Count) {
        self.signins += o.signins;
        self.users.merge(&o.users);
    }
    fn counted(&self) -> Counted {
        Counted {
            signins: self.signins,
            users: self.users.len(),
        }
    }
}

#[derive(Debug, Clone, Default)]
struct UserAcc {
    effects: BTreeMap<Effect, u64>,
    policies: BTreeSet<(Side, usize)>,
}

#[derive(Debug, Clone, Default)]
struct ViewAcc {
    shift: Shift,
    lost: Count,
    gained: Count,
    by_policy: BTreeMap<(Side, usize, Effect), Count>,
    users: HashMap<u32, UserAcc>,
    indeterminate: [u64; 2],
}

impl ViewAcc {
    fn merge(&mut self, o: ViewAcc) {
        self.shift.merge(&o.shift);
        self.lost.merge(&o.lost);
        self.gained.merge(&o.gained);
        for (k, c) in &o.by_policy {
            self.by_policy.entry(*k).or_default().merge(c);
        }
        for (u, a) in o.users {
            let x = self.users.entry(u).or_default();
            for (e, n) in a.effects {
                *x.effects.entry(e).or_default() += n;
            }
            x.policies.extend(a.policies);
        }
        self.indeterminate[0] += o.indeterminate[0];
        self.indeterminate[1] += o.indeterminate[1];
    }
}

#[derive(Default)]
struct Acc {
    views: [ViewAcc; 2],
    evaluated: u64,
    not_evaluated: BTreeMap<&'static str, u64>,
    /// Scratch: one sign-in's evaluations per side (not merged).
    base_evals: Vec<Option<Evaluation>>,
    head_evals: Vec<Option<Evaluation>>,
}

impl Acc {
    fn merge(mut self, o: Acc) -> Acc {
        for (a, b) in self.views.iter_mut().zip(o.views) {
            a.merge(b);
        }
        self.evaluated += o.evaluated;
        for (k, n) in o.not_evaluated {
            *self.not_evaluated.entry(k).or_default() += n;
        }
        self
    }
}

const VIEWS: [SetKind; 2] = [SetKind::Current, SetKind::Proposed];

fn step(sides: (&Env, &Env), s: &SignIn, user: Option<u32>, acc: &mut Acc) {
    if let Some(why) = engine::not_evaluated(s) {
        *acc.not_evaluated.entry(why).or_default() += 1;
        return;
    }
    acc.evaluated += 1;
    let (base, head) = sides;
    let mut be = std::mem::take(&mut acc.base_evals);
    let mut he = std::mem::take(&mut acc.head_evals);
    replay::evaluate_set(base, &Facts::prepare(base, s, false), &mut be);
    replay::evaluate_set(head, &Facts::prepare(head, s, false), &mut he);
    for (v, kind) in acc.views.iter_mut().zip(VIEWS) {
        let ob = combine(base.set, &be, kind);
        let oh = combine(head.set, &he, kind);
        v.indeterminate[0] += u64::from(ob.indeterminate > 0);
        v.indeterminate[1] += u64::from(oh.indeterminate > 0);
        v.shift.add(ob.impact, oh.impact, user);
        let mut effects: Vec<(Effect, Side, Option<usize>)> = Vec::new();
        if oh.impact.severity() > ob.impact.severity() && is_affected(oh.impact) {
            effects.push((Effect::Newly(oh.impact), Side::Head, oh.decided_by));
        }
        if oh.impact.severity() < ob.impact.severity() && is_affected(ob.impact) {
            effects.push((Effect::Eased(ob.impact), Side::Base, ob.decided_by));
        }
        match (
            protector(base.set, &be, kind),
            protector(head.set, &he, kind),
        ) {
            (Some(i), None) => {
                v.lost.add(user);
                effects.push((Effect::NoLongerProtected, Side::Base, Some(i)));
            }
            (None, Some(i)) => {
                v.gained.add(user);
                effects.push((Effect::NewlyProtected, Side::Head, Some(i)));
            }
            _ => {}
        }
        for (effect, side, policy) in effects {
            if let Some(pi) = policy {
                v.by_policy.entry((side, pi, effect)).or_default().add(user);
            }
            if let Some(u) = user {
                let x = v.users.entry(u).or_default();
                *x.effects.entry(effect).or_default() += 1;
                if let Some(pi) = policy {
                    x.policies.insert((side, pi));
                }
            }
        }
    }
    acc.base_evals = be;
    acc.head_evals = he;
}

fn env<'a>(t: &'a Tenant, clocks: &'a HashMap<String, i64>) -> Env<'a> {
    t.env(clocks)
}

/// Replays the sign-ins against both sides in parallel, calling `on_chunk(sign-ins done)` as
/// chunks finish, and compares them; runs the break-glass checks on both sides.
pub fn compare(sides: Sides, signins: &[SignIn], on_chunk: &(dyn Fn(u64) + Sync)) -> Diff {
    let base_env = env(sides.base, sides.base_clocks);
    let head_env = env(sides.head, sides.head_clocks);
    let users = UserNumbers::new(signins);
    let (acc, (bg_base, bg_head)) = rayon::join(
        || {
            replay::drive(
                signins,
                &users,
                Acc::default,
                |acc, _, s, user| step((&base_env, &head_env), s, user, acc),
                Acc::merge,
                on_chunk,
            )
        },
        || {
            rayon::join(
                || breakglass::check(sides.base, signins, sides.base_clocks),
                || breakglass::check(sides.head, signins, sides.head_clocks),
            )
        },
    );
    let policy_name = |side: Side, pi: usize| -> (String, String) {
        let t = match side {
            Side::Base => sides.base,
            Side::Head => sides.head,
        };
        t.set
            .policies
            .get(pi)
            .map(|p| (p.id.clone(), p.display_name.clone()))
            .unwrap_or_default()
    };
    let [enforced_acc, proposed_acc] = acc.views;
    let mut per_user: BTreeMap<u32, UserEffects> = BTreeMap::new();
    let mut view = |kind: SetKind, v: ViewAcc| -> View {
        let mut effects = BTreeMap::new();
        let shifted = [
            (
                &v.shift.newly_signins,
                &v.shift.newly,
                Effect::Newly as fn(Impact) -> Effect,
            ),
            (&v.shift.eased_signins, &v.shift.eased, Effect::Eased),
        ];
        for (signins, users, effect) in shifted {
            for (impact, n) in signins {
                if is_affected(*impact) {
                    let users = users.get(impact).map_or(0, UserSet::len);
                    effects.insert(effect(*impact), Counted { signins: *n, users });
                }
            }
        }
        if v.lost.signins > 0 {
            effects.insert(Effect::NoLongerProtected, v.lost.counted());
        }
        if v.gained.signins > 0 {
            effects.insert(Effect::NewlyProtected, v.gained.counted());
        }
        let mut by_policy: BTreeMap<(Side, usize), BTreeMap<Effect, Counted>> = BTreeMap::new();
        for ((side, pi, effect), c) in &v.by_policy {
            by_policy
                .entry((*side, *pi))
                .or_default()
                .insert(*effect, c.counted());
        }
        let mut by_policy: Vec<PolicyEffects> = by_policy
            .into_iter()
            .map(|((side, pi), effects)| {
                let (id, name) = policy_name(side, pi);
                PolicyEffects {
                    side,
                    id,
                    name,
                    effects,
                }
            })
            .collect();
        let weight = |p: &PolicyEffects| -> Vec<std::cmp::Reverse<usize>> {
            EFFECTS
                .iter()
                .map(|e| std::cmp::Reverse(p.effects.get(e).map_or(0, |c| c.users)))
                .collect()
        };
        by_policy.sort_by(|a, b| {
            weight(a)
                .cmp(&weight(b))
                .then_with(|| (&a.name, a.side).cmp(&(&b.name, b.side)))
        });
        for (u, a) in v.users {
            let Some(&si) = users.first_signin.get(u as usize) else {
                continue;
            };
            let Some(s) = signins.get(si) else { continue };
            let entry = per_user.entry(u).or_insert_with(|| UserEffects {
                user_id: s.user_id.to_string(),
                label: if s.user_principal_name.is_empty() {
                    s.user_id.to_string()
                } else {
                    s.user_principal_name.to_string()
                },
                enforced: BTreeMap::new(),
                proposed: BTreeMap::new(),
                policies: Vec::new(),
            });
            match kind {
                SetKind::Current => entry.enforced = a.effects,
                SetKind::Proposed => entry.proposed = a.effects,
            }
            for (side, pi) in a.policies {
                let name = policy_name(side, pi).1;
                if !entry.policies.contains(&name) {
                    entry.policies.push(name);
                }
            }
        }
        let users_of = |e: Effect| effects.get(&e).map_or(0, |c: &Counted| c.users);
        View {
            kind,
            signins_changed: v.shift.signins_changed,
            newly_blocked_users: users_of(Effect::Newly(Impact::Blocked)),
            newly_prompted_users: users_of(Effect::Newly(Impact::MfaPrompt)),
            newly_registering_users: users_of(Effect::Newly(Impact::MfaRegistration)),
            newly_password_change_users: users_of(Effect::Newly(Impact::PasswordChange)),
            no_longer_protected_users: users_of(Effect::NoLongerProtected),
            indeterminate_base: v.indeterminate[0],
            indeterminate_head: v.indeterminate[1],
            effects,
            by_policy,
        }
    };
    let enforced = view(SetKind::Current, enforced_acc);
    let proposed = view(SetKind::Proposed, proposed_acc);
    let mut changed_users: Vec<UserEffects> = per_user
        .into_values()
        .map(|mut u| {
            u.policies.sort();
            u
        })
        .collect();
    sort_users(&mut changed_users);

    let (policies, policies_unchanged) = policy_changes(sides.base_loaded, sides.head_loaded);
    let break_glass = break_glass(&bg_base, &bg_head);
    let mut warnings: Vec<String> = Vec::new();
    for (side, t) in [(Side::Head, sides.head), (Side::Base, sides.base)] {
        for f in t.warnings(sides.options) {
            let w = format!("{}: {f}", side.as_str());
            if !warnings.contains(&w) {
                warnings.push(w);
            }
        }
    }
    warnings.extend(sides.head.dir.problems.iter().map(|p| p.to_string()));
    Diff {
        gates: Vec::new(),
        pseudonymized: false,
        tenant: sides.tenant,
        base_label: sides.base_label,
        head_label: sides.head_label,
        base_commit: sides.base_commit,
        base_policies: sides.base.set.policies.len(),
        head_policies: sides.head.set.policies.len(),
        policies,
        policies_unchanged,
        signins: signins.len() as u64,
        evaluated: acc.evaluated,
        not_evaluated: acc.not_evaluated,
        users: users.len() as u64,
        from: signins.iter().map(|s| s.created_at).min(),
        to: signins.iter().map(|s| s.created_at).max(),
        break_glass_new_errors: break_glass.new_errors(),
        enforced,
        proposed,
        changed_users,
        break_glass,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_differences_name_the_fields_that_changed() {
        let a = json!({
            "id": "x", "state": "enabledForReportingButNotEnforced",
            "conditions": {"users": {"includeUsers": ["All"], "excludeGroups": ["g1", "g2"]},
                           "locations": null},
            "sessionControls": null
        });
        let b = json!({
            "id": "x", "state": "enabled",
            "conditions": {"users": {"includeUsers": ["All"], "excludeGroups": ["g2"],
                                     "excludeUsers": []}},
            "grantControls": {"builtInControls": ["mfa"]}
        });
        assert_eq!(
            json_differences(&a, &b),
            [
                "/conditions/users/excludeGroups",
                "/grantControls",
                "/state"
            ]
        );
        // Reordering a list of ids, or writing `[]` or null for nothing, is no change.
        let c =
            json!({"conditions": {"users": {"excludeGroups": ["b", "a"], "excludeUsers": null}}});
        let d =
            json!({"conditions": {"users": {"excludeGroups": ["a", "b"]}}, "sessionControls": {}});
        assert!(json_differences(&c, &d).is_empty());
        // Keys with `/` or `~` are escaped as RFC 6901 says.
        let e = json!({"a/b": 1, "c~d": [{"x": 1}]});
        let f = json!({"a/b": 2, "c~d": [{"x": 2}]});
        assert_eq!(json_differences(&e, &f), ["/a~1b", "/c~0d/0/x"]);
    }

    #[test]
    fn shift_counts_both_directions() {
        let mut s = Shift::default();
        s.add(Impact::NotApplied, Impact::Blocked, Some(1));
        s.add(Impact::MfaPrompt, Impact::NotApplied, Some(2));
        s.add(Impact::MfaPrompt, Impact::MfaPrompt, Some(3));
        s.add(Impact::Satisfied, Impact::Blocked, None);
        assert_eq!(s.signins_changed, 3);
        assert_eq!(s.newly_signins[&Impact::Blocked], 2);
        assert_eq!(s.newly[&Impact::Blocked].len(), 1);
        assert_eq!(s.eased_signins[&Impact::MfaPrompt], 1);
        assert!(s.eased[&Impact::MfaPrompt].contains(2));
    }

    fn finding(severity: &'static str, account: &str, policy: &str, what: &str) -> Finding {
        Finding {
            severity,
            account: account.into(),
            policy: policy.into(),
            what: what.into(),
        }
    }

    #[test]
    fn break_glass_findings_pair_up_by_account_and_policy() {
        let base = breakglass::Report {
            configured: true,
            findings: vec![
                finding(
                    "error",
                    "bg1",
                    "CA010",
                    "not excluded from a report-only policy",
                ),
                finding("error", "bg1", "CA010", "12 of 600 synthetic sign-ins"),
                finding(
                    "error",
                    "bg2",
                    "CA002",
                    "not excluded from an enabled policy",
                ),
            ],
            ..Default::default()
        };
        let head = breakglass::Report {
            configured: true,
            findings: vec![
                finding(
                    "error",
                    "bg1",
                    "CA010",
                    "not excluded from an enabled policy",
                ),
                finding("error", "bg1", "CA010", "12 of 600 synthetic sign-ins"),
                finding(
                    "error",
                    "bg1",
                    "CA011",
                    "not excluded from an enabled policy",
                ),
                finding("warning", "", "", "1 break-glass account(s)"),
            ],
            ..Default::default()
        };
        let d = break_glass(&base, &head);
        assert_eq!(d.changed.len(), 1);
        assert_eq!(d.changed[0].1.what, "not excluded from an enabled policy");
        let new: Vec<&str> = d.new_in_head.iter().map(|f| f.policy.as_str()).collect();
        assert_eq!(new, ["CA011", ""]);
        assert_eq!(d.new_errors(), 1);
        assert_eq!(d.fixed_in_head.len(), 1);
        assert_eq!(d.fixed_in_head[0].account, "bg2");
        assert_eq!((d.base_errors, d.head_errors), (3, 3));
    }
}
