//! The batch driver: every sign-in against every non-disabled policy, in parallel (rayon over
//! chunks), with per-chunk accumulators merged in order.
//!
//! In: a loaded `Tenant` and normalized sign-ins, as one slice ([`run`]) or streamed in batches
//! ([`Replayer::feed`]). Out: `Replay` aggregates (per policy and per policy set, sign-ins and
//! distinct users by impact, indeterminate reasons), and per batch what the report writers need
//! of each sign-in ([`BatchOut`]: its user number, its protection, its detail rows), so that
//! nothing holds the whole log.
//!
//! Per-user state: the MFA registration clock is a minimum over every sign-in. Streamed, each
//! batch's clocks are merged in before the batch is evaluated; at the end, if a sign-in was
//! answered inside the 14-day grace by a clock that a later batch moved back far enough to
//! change that answer, [`Replayer::finish`] asks for a second pass with the final clocks
//! (sign-ins in time order never need one).

use std::collections::{BTreeMap, HashMap};

use rayon::prelude::*;

use crate::domain::Impact;
use crate::engine::{
    self, combine, evaluate_nth, explain, Check, Condition, Env, Evaluation, Facts, SetKind, Why,
};
use crate::signin::{SignIn, Ustr};
use crate::tenant::Tenant;
use rustc_hash::FxHashMap;

const CHUNK: usize = 4096;
/// Reason texts the `Replayer` keeps between batches (a bound on their memory; a text not kept
/// is formatted again by each chunk that needs it).
const REASONS_KEPT: usize = 1 << 16;
const IMPACTS: usize = Impact::ALL.len();

/// Which detail rows to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Details {
    /// Rows whose impact is not `not_applied` (design.md).
    #[default]
    Applied,
    /// Every evaluated (sign-in, policy) pair.
    All,
}

/// One row of `details.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetailRow {
    /// The sign-in's index in its batch ([`BatchOut`]).
    pub signin: usize,
    pub policy: usize,
    pub impact: Impact,
    /// `engine::explain::reason`'s text, interned (the same few texts recur on every row).
    pub reason: Ustr,
}

/// Whether the proposed set protects a sign-in with MFA or a block (the coverage check,
/// `checks::coverage`): one byte per sign-in, written by the replay in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(u8)]
pub enum Protection {
    /// Not evaluated at all (`engine::not_evaluated`: first factor failed, managed identity).
    #[default]
    NotEvaluated,
    /// A policy of the proposed set applies and blocks or requires MFA
    /// (`CompiledPolicy::protects`), whatever its impact (MFA may already be satisfied).
    Protected,
    /// No such policy is known to apply, and one whose applicability the inputs cannot decide
    /// would protect it.
    Indeterminate,
    /// No policy of the proposed set blocks it or requires MFA.
    Unprotected,
}

impl Protection {
    pub fn as_str(self) -> &'static str {
        match self {
            Protection::NotEvaluated => "not_evaluated",
            Protection::Protected => "protected",
            Protection::Indeterminate => "indeterminate",
            Protection::Unprotected => "unprotected",
        }
    }
}

/// Distinct users as a bitset over the run's user numbering.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserSet(Vec<u64>);

impl UserSet {
    pub fn insert(&mut self, u: u32) {
        crate::policy::set_bit(&mut self.0, u);
    }
    pub fn merge(&mut self, other: &UserSet) {
        if self.0.len() < other.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= *b;
        }
    }
    pub fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn contains(&self, u: u32) -> bool {
        crate::policy::bit(&self.0, u)
    }
    /// The numbers in the set, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().enumerate().flat_map(|(i, &w)| {
            (0..64u32)
                .filter(move |b| w & (1u64 << b) != 0)
                .map(move |b| i as u32 * 64 + b)
        })
    }
    pub fn difference_len(&self, other: &UserSet) -> usize {
        self.0
            .iter()
            .enumerate()
            .map(|(i, w)| (w & !other.0.get(i).copied().unwrap_or(0)).count_ones() as usize)
            .sum()
    }
}

/// Sign-ins and distinct users by impact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub signins: [u64; IMPACTS],
    pub users: Vec<UserSet>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            signins: [0; IMPACTS],
            users: vec![UserSet::default(); IMPACTS],
        }
    }
    fn add(&mut self, impact: Impact, user: Option<u32>) {
        let i = impact as usize;
        self.signins[i] += 1;
        if let Some(u) = user {
            self.users[i].insert(u);
        }
    }
    fn merge(&mut self, o: &Tally) {
        for i in 0..IMPACTS {
            self.signins[i] += o.signins[i];
            self.users[i].merge(&o.users[i]);
        }
    }
    pub fn signins_of(&self, i: Impact) -> u64 {
        self.signins[i as usize]
    }
    pub fn users_of(&self, i: Impact) -> &UserSet {
        &self.users[i as usize]
    }
}

/// How sign-in outcomes move from one policy set to another (`before` → `after`): the current
/// set to the proposed one in `run`, a base set to a head set in `diff`. A sign-in whose outcome
/// is more severe after is counted under the impact after; one less severe after, under the
/// impact before (what it no longer gets).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shift {
    /// Sign-ins whose outcome differs.
    pub signins_changed: u64,
    pub newly: BTreeMap<Impact, UserSet>,
    pub newly_signins: BTreeMap<Impact, u64>,
    pub eased: BTreeMap<Impact, UserSet>,
    pub eased_signins: BTreeMap<Impact, u64>,
}

impl Shift {
    /// Counts one sign-in whose outcome is `before` in one set and `after` in the other.
    pub fn add(&mut self, before: Impact, after: Impact, user: Option<u32>) {
        let (users, signins, impact) = match after.severity().cmp(&before.severity()) {
            std::cmp::Ordering::Equal => return,
            std::cmp::Ordering::Greater => (&mut self.newly, &mut self.newly_signins, after),
            std::cmp::Ordering::Less => (&mut self.eased, &mut self.eased_signins, before),
        };
        self.signins_changed += 1;
        *signins.entry(impact).or_default() += 1;
        if let Some(u) = user {
            users.entry(impact).or_default().insert(u);
        }
    }
    pub fn merge(&mut self, o: &Shift) {
        self.signins_changed += o.signins_changed;
        for (k, u) in &o.newly {
            self.newly.entry(*k).or_default().merge(u);
        }
        for (k, n) in &o.newly_signins {
            *self.newly_signins.entry(*k).or_default() += n;
        }
        for (k, u) in &o.eased {
            self.eased.entry(*k).or_default().merge(u);
        }
        for (k, n) in &o.eased_signins {
            *self.eased_signins.entry(*k).or_default() += n;
        }
    }
}

/// The users of a run, numbered in order of first sign-in for the distinct-user bitsets (user
/// ids compared case-insensitively).
#[derive(Debug, Clone, Default)]
pub struct UserNumbers {
    /// Per sign-in, its user's number (`None` without a user id).
    pub of_signin: Vec<Option<u32>>,
    /// Per user number, the index of the user's first sign-in.
    pub first_signin: Vec<usize>,
}

impl UserNumbers {
    pub fn new(signins: &[SignIn]) -> UserNumbers {
        let mut numbering: HashMap<String, u32> = HashMap::new();
        let mut first_signin = Vec::new();
        let of_signin = signins
            .iter()
            .enumerate()
            .map(|(si, s)| {
                if s.user_id.is_empty() {
                    return None;
                }
                let n = numbering.len() as u32;
                let u = *numbering.entry(s.user_id.to_ascii_lowercase()).or_insert(n);
                if u == n {
                    first_signin.push(si);
                }
                Some(u)
            })
            .collect();
        UserNumbers {
            of_signin,
            first_signin,
        }
    }
    pub fn len(&self) -> usize {
        self.first_signin.len()
    }
    pub fn is_empty(&self) -> bool {
        self.first_signin.is_empty()
    }
}

/// The parallel driver every replay shares: the sign-ins in chunks on rayon's pool, an
/// accumulator per chunk from `init`, `step(acc, sign-in index, sign-in, user number)` for each
/// sign-in, accumulators combined with `merge` (associative; rayon keeps chunk order), and
/// `on_chunk(sign-ins done)` after each chunk for a progress display.
pub fn drive<A: Send>(
    signins: &[SignIn],
    users: &UserNumbers,
    init: impl Fn() -> A + Sync + Send,
    step: impl Fn(&mut A, usize, &SignIn, Option<u32>) + Sync + Send,
    merge: impl Fn(A, A) -> A + Sync + Send,
    on_chunk: &(dyn Fn(u64) + Sync),
) -> A {
    signins
        .par_chunks(CHUNK)
        .enumerate()
        .map(|(ci, chunk)| {
            let mut acc = init();
            for (k, s) in chunk.iter().enumerate() {
                let si = ci * CHUNK + k;
                step(&mut acc, si, s, users.of_signin.get(si).copied().flatten());
            }
            on_chunk(chunk.len() as u64);
            acc
        })
        .reduce(&init, &merge)
}

/// Evaluates every policy of `env.set` that is not disabled against the prepared sign-in, into
/// `evals` (aligned with the set; `None` for a disabled policy), as `combine` takes them.
pub fn evaluate_set(env: &Env, f: &Facts, evals: &mut Vec<Option<Evaluation>>) {
    evals.resize(env.set.policies.len(), None);
    for (i, (p, slot)) in env.set.policies.iter().zip(evals.iter_mut()).enumerate() {
        if p.state == crate::domain::PolicyState::Disabled {
            *slot = None;
        } else {
            // Written in place: no copy of the evaluation through the stack.
            evaluate_nth(env, i, f, slot.get_or_insert(Evaluation::NOT_APPLIED));
        }
    }
}

/// What the replay found.
#[derive(Debug, Clone, Default)]
pub struct Replay {
    /// Per policy (aligned with `PolicySet::policies`); `None` for disabled policies.
    pub policies: Vec<Option<Tally>>,
    pub sets: BTreeMap<SetKind, Tally>,
    /// Per set: sign-ins with at least one indeterminate policy.
    pub indeterminate_signins: BTreeMap<SetKind, u64>,
    /// Indeterminate (policy, reason) counts.
    pub indeterminate_reasons: BTreeMap<String, u64>,
    /// Users whose sign-ins the proposed set treats more severely than the current one, by the
    /// proposed impact.
    pub newly: BTreeMap<Impact, UserSet>,
    /// Sign-ins the proposed set treats more severely than the current one, by proposed impact.
    pub newly_signins: BTreeMap<Impact, u64>,
    pub signins_changed: u64,
    /// Exclusions that decided a policy did not apply: (policy index, condition, exclude entry)
    /// → sign-ins and distinct users (the exclusion's blast radius).
    pub exclusions: BTreeMap<(usize, Condition, Option<u16>), Fired>,
    /// Self-validation: (policy index, Entra's word, ca-replay's word) → pairs.
    pub validation: BTreeMap<(usize, &'static str, &'static str), u64>,
    pub disagreements: Vec<Disagreement>,
    /// Sign-ins per UTC day (days since 1970-01-01), set and combined impact.
    pub daily: BTreeMap<(i64, SetKind, Impact), u64>,
    /// Sign-ins the proposed set would affect (see `report::affected::is_affected`), by app,
    /// client app type, platform and country.
    pub proposed_by: Breakdowns,
    /// Per proposed impact, the first sign-in with it: the sample the HTML report explains.
    pub samples: BTreeMap<Impact, SignIn>,
    /// The MFA registration clocks the replay used (see [`registration_clocks`]).
    pub registration_clocks: HashMap<String, i64>,
    pub evaluated: u64,
    pub not_evaluated: BTreeMap<&'static str, u64>,
    pub users: u64,
    /// Sign-ins replayed (in the window), and the first and last of them.
    pub signins: u64,
    pub first: Option<chrono::DateTime<chrono::Utc>>,
    pub last: Option<chrono::DateTime<chrono::Utc>>,
    /// Sign-ins read but outside the `--from`/`--to` window.
    pub outside_window: u64,
}

/// Entra's recorded verdict for a policy next to ca-replay's (self-validation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disagreement {
    /// The sign-in's place in the replay's order (the first ones are kept).
    pub signin: usize,
    pub signin_id: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub user_id: String,
    pub user_principal_name: String,
    pub policy: usize,
    pub entra: &'static str,
    pub ours: &'static str,
    pub reason: String,
}

/// The disagreements kept for the report (the first ones in sign-in order); all are counted.
pub const DISAGREEMENTS_KEPT: usize = 50;

/// Entra's `result` words, spelled as Graph does, and `other` for anything else.
const ENTRA_WORDS: [&str; 9] = [
    "success",
    "failure",
    "notApplied",
    "notEnabled",
    "reportOnlySuccess",
    "reportOnlyFailure",
    "reportOnlyNotApplied",
    "reportOnlyInterrupted",
    "other",
];

/// The index in [`ENTRA_WORDS`] of Entra's word for `result`.
fn entra_word(result: &str) -> usize {
    let other = ENTRA_WORDS.len() - 1;
    ENTRA_WORDS[..other]
        .iter()
        .position(|w| w.eq_ignore_ascii_case(result.trim()))
        .unwrap_or(other)
}

/// Counts of affected sign-ins by a few dimensions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Breakdowns {
    pub apps: BTreeMap<String, u64>,
    pub client_apps: BTreeMap<&'static str, u64>,
    pub platforms: BTreeMap<&'static str, u64>,
    pub countries: BTreeMap<String, u64>,
}

/// [`Breakdowns`] while counting: keyed by interned or static text, hashed.
#[derive(Debug, Clone, Default)]
struct FastBreakdowns {
    apps: FxHashMap<Ustr, u64>,
    client_apps: FxHashMap<&'static str, u64>,
    platforms: FxHashMap<&'static str, u64>,
    countries: FxHashMap<Ustr, u64>,
}

impl FastBreakdowns {
    /// Counts a sign-in as [`Breakdowns`] names it.
    fn add(&mut self, s: &SignIn) {
        let app = [s.app_display_name, s.app_id]
            .into_iter()
            .find(|x| !x.is_empty())
            .unwrap_or_else(|| Ustr::from("(unknown app)"));
        *self.apps.entry(app).or_default() += 1;
        *self.client_apps.entry(s.client_app.as_str()).or_default() += 1;
        *self.platforms.entry(s.platform.as_str()).or_default() += 1;
        let country = if s.country.is_empty() {
            Ustr::from("(unknown)")
        } else {
            s.country
        };
        *self.countries.entry(country).or_default() += 1;
    }
    fn merge(&mut self, o: FastBreakdowns) {
        for (k, n) in o.apps {
            *self.apps.entry(k).or_default() += n;
        }
        for (k, n) in o.client_apps {
            *self.client_apps.entry(k).or_default() += n;
        }
        for (k, n) in o.platforms {
            *self.platforms.entry(k).or_default() += n;
        }
        for (k, n) in o.countries {
            *self.countries.entry(k).or_default() += n;
        }
    }
    fn ordered(self) -> Breakdowns {
        Breakdowns {
            apps: self
                .apps
                .into_iter()
                .map(|(k, n)| (k.as_str().to_owned(), n))
                .collect(),
            client_apps: self.client_apps.into_iter().collect(),
            platforms: self.platforms.into_iter().collect(),
            countries: self
                .countries
                .into_iter()
                .map(|(k, n)| (k.as_str().to_owned(), n))
                .collect(),
        }
    }
}

/// How often an exclusion decided, and for whom.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fired {
    pub signins: u64,
    pub users: UserSet,
}

/// The sets in `Acc::sets` order.
const SETS: [SetKind; 2] = [SetKind::Current, SetKind::Proposed];

/// A replay's aggregates while counting: keyed for cheap counting (hashed, indexed), put in the
/// `Replay`'s ordered maps by [`Replayer::finish`].
#[derive(Default)]
struct Acc {
    policies: Vec<Option<Tally>>,
    /// Per set of [`SETS`].
    sets: Vec<Tally>,
    /// Per set of [`SETS`].
    indeterminate_signins: [u64; 2],
    /// Indeterminate evaluations by (policy index, what was missing).
    reasons: FxHashMap<(usize, engine::Missing), u64>,
    shift: Shift,
    exclusions: FxHashMap<(usize, Condition, Option<u16>), Fired>,
    /// Self-validation pairs by (policy index, Entra's word as an index in [`ENTRA_WORDS`], our
    /// impact); our word is the impact's, as the policy's state spells it.
    validation: FxHashMap<(usize, usize, Impact), u64>,
    disagreements: Vec<Disagreement>,
    daily: FxHashMap<(i64, SetKind, Impact), u64>,
    proposed_by: FastBreakdowns,
    /// Per impact: the first sign-in with it (its place in the replay's order, and a copy).
    samples: BTreeMap<Impact, (usize, SignIn)>,
    evaluated: u64,
    not_evaluated: BTreeMap<&'static str, u64>,
    /// Per user number: the latest sign-in the registration policy answered inside the grace
    /// (ms), to tell at the end whether the final clocks would answer it otherwise.
    nudged: FxHashMap<u32, i64>,
    /// Scratch: one sign-in's evaluations (not merged).
    evals: Vec<Option<Evaluation>>,
    /// Which policies each applied-policy id of the logs names (not merged).
    applied_ids: AppliedIds,
    /// Scratch: per policy, the index in the sign-in's `applied_policies` of Entra's record of
    /// it (not merged).
    recorded: Vec<Option<u32>>,
    /// Reasons formatted by this chunk (gathered into the `Replayer`'s, not merged).
    texts: explain::ReasonCache,
}

/// The policies of the set an applied-policy id of the logs names: those whose id equals it
/// ASCII case-insensitively (Graph spells ids in either case). Found by a scan the first time an
/// id (interned) is seen, then looked up by its symbol: a sign-in's records are matched to the
/// policies in one pass, not policy by policy. Their `result` words are remembered the same way.
#[derive(Default)]
struct AppliedIds {
    /// Per id: a range of `indices`.
    of: ustr::UstrMap<(u32, u32)>,
    indices: Vec<u32>,
    /// Per `result` text: [`entra_word`]'s answer.
    words: ustr::UstrMap<usize>,
}

impl AppliedIds {
    fn policies(&mut self, set: &crate::policy::PolicySet, id: Ustr) -> &[u32] {
        let (start, end) = *self.of.entry(id).or_insert_with(|| {
            let start = self.indices.len() as u32;
            self.indices.extend(
                set.policies
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.id.eq_ignore_ascii_case(&id))
                    .map(|(pi, _)| pi as u32),
            );
            (start, self.indices.len() as u32)
        });
        self.indices
            .get(start as usize..end as usize)
            .unwrap_or(&[])
    }

    /// [`entra_word`] of a record's `result`.
    fn word(&mut self, result: Ustr) -> usize {
        *self
            .words
            .entry(result)
            .or_insert_with(|| entra_word(&result))
    }

    /// Per policy of `set`, the index in `applied` of the first record of it, into `out`.
    fn match_records(
        &mut self,
        set: &crate::policy::PolicySet,
        applied: &[crate::signin::AppliedPolicy],
        out: &mut Vec<Option<u32>>,
    ) {
        out.clear();
        out.resize(set.policies.len(), None);
        for (ai, a) in applied.iter().enumerate() {
            for &pi in self.policies(set, a.id) {
                if let Some(slot @ None) = out.get_mut(pi as usize) {
                    *slot = Some(ai as u32);
                }
            }
        }
    }
}

impl Acc {
    fn new(t: &Tenant) -> Acc {
        Acc {
            policies: t
                .set
                .policies
                .iter()
                .map(|p| (p.state != crate::domain::PolicyState::Disabled).then(Tally::new))
                .collect(),
            sets: SETS.iter().map(|_| Tally::new()).collect(),
            ..Acc::default()
        }
    }
    fn merge(mut self, o: Acc) -> Acc {
        for (a, b) in self.policies.iter_mut().zip(&o.policies) {
            if let (Some(a), Some(b)) = (a, b) {
                a.merge(b);
            }
        }
        for (x, t) in self.sets.iter_mut().zip(&o.sets) {
            x.merge(t);
        }
        for (x, n) in self
            .indeterminate_signins
            .iter_mut()
            .zip(o.indeterminate_signins)
        {
            *x += n;
        }
        for (k, n) in o.reasons {
            *self.reasons.entry(k).or_default() += n;
        }
        self.shift.merge(&o.shift);
        for (k, n) in o.daily {
            *self.daily.entry(k).or_default() += n;
        }
        self.proposed_by.merge(o.proposed_by);
        for (k, (i, s)) in o.samples {
            match self.samples.get(&k) {
                Some((j, _)) if *j <= i => {}
                _ => {
                    self.samples.insert(k, (i, s));
                }
            }
        }
        for (u, t) in o.nudged {
            let x = self.nudged.entry(u).or_insert(t);
            *x = (*x).max(t);
        }
        for (k, n) in o.validation {
            *self.validation.entry(k).or_default() += n;
        }
        self.disagreements.extend(o.disagreements);
        self.disagreements.sort_by_key(|d| (d.signin, d.policy));
        self.disagreements.truncate(DISAGREEMENTS_KEPT);
        for (k, f) in o.exclusions {
            let x = self.exclusions.entry(k).or_default();
            x.signins += f.signins;
            x.users.merge(&f.users);
        }
        self.evaluated += o.evaluated;
        for (k, n) in o.not_evaluated {
            *self.not_evaluated.entry(k).or_default() += n;
        }
        self
    }
}

/// The MFA registration policy's per-user clocks over all the sign-ins (user id lower-cased →
/// first in-scope prompt, ms): what every evaluation of that policy needs first.
pub fn registration_clocks(tenant: &Tenant, signins: &[SignIn]) -> HashMap<String, i64> {
    let no_clocks = HashMap::new();
    let env = tenant.env(&no_clocks);
    signins
        .par_chunks(CHUNK)
        .map(|chunk| {
            let mut c = HashMap::new();
            engine::registration::accumulate(&env, chunk, &mut c);
            c
        })
        .reduce(HashMap::new, merge_clocks)
}

/// What the report writers need of each sign-in of a batch, aligned with the batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOut {
    /// Its user's number (`None` without a user id).
    pub users: Vec<Option<u32>>,
    /// Its user in the directory (`None` without one).
    pub dir_users: Vec<Option<crate::directory::UserIdx>>,
    /// Whether the proposed set protects it.
    pub protection: Vec<Protection>,
    /// Its detail rows (`DetailRow::signin` indexes the batch), in (sign-in, policy) order.
    pub details: Vec<DetailRow>,
}

/// What [`Replayer::finish`] found.
#[derive(Debug)]
pub enum Finished {
    Done(Box<Replay>),
    /// A sign-in was answered inside the MFA registration grace by a clock that a later batch
    /// moved back: replay again with these (final) clocks.
    Again(HashMap<String, i64>),
}

/// The streaming replay: feed it batches in a fixed order ([`Replayer::feed`]), then
/// [`Replayer::finish`]. Memory: the aggregates, one number per user and the registration
/// clocks, whatever the number of sign-ins.
pub struct Replayer<'t> {
    tenant: &'t Tenant,
    details: Details,
    window: (
        Option<chrono::DateTime<chrono::Utc>>,
        Option<chrono::DateTime<chrono::Utc>>,
    ),
    clocks: HashMap<String, i64>,
    /// The clocks were given (final): never grown, never second-guessed.
    fixed: bool,
    has_registration_policy: bool,
    /// Per user id: its number, and its user in the directory.
    numbering: FxHashMap<Ustr, (u32, Option<crate::directory::UserIdx>)>,
    /// Per user number, the user id (lower-cased) it stands for.
    user_ids: Vec<Ustr>,
    protects: Vec<bool>,
    /// Reasons formatted by earlier batches, read by every chunk of the next (at most
    /// `REASONS_KEPT`).
    texts: explain::ReasonCache,
    acc: Acc,
    seen: usize,
    outside_window: u64,
    first: Option<chrono::DateTime<chrono::Utc>>,
    last: Option<chrono::DateTime<chrono::Utc>>,
}

impl<'t> Replayer<'t> {
    /// A replay of `tenant`'s policies. With `clocks`, the MFA registration clocks are final
    /// (computed over every sign-in beforehand); without, each batch adds to them.
    pub fn new(
        tenant: &'t Tenant,
        details: Details,
        clocks: Option<HashMap<String, i64>>,
    ) -> Replayer<'t> {
        Replayer {
            tenant,
            details,
            window: (None, None),
            fixed: clocks.is_some(),
            clocks: clocks.unwrap_or_default(),
            has_registration_policy: tenant.set.policies.iter().any(|p| {
                p.kind == crate::policy::PolicyKind::LegacyMfaRegistration
                    && p.state != crate::domain::PolicyState::Disabled
            }),
            numbering: FxHashMap::default(),
            user_ids: Vec::new(),
            protects: tenant
                .set
                .policies
                .iter()
                .map(crate::policy::CompiledPolicy::protects)
                .collect(),
            texts: explain::ReasonCache::default(),
            acc: Acc::new(tenant),
            seen: 0,
            outside_window: 0,
            first: None,
            last: None,
        }
    }

    /// Replays only the sign-ins at or after `from` and before `to`; the registration clocks
    /// still see every sign-in fed (a prompt before the window still started a clock).
    pub fn window(
        mut self,
        from: Option<chrono::DateTime<chrono::Utc>>,
        to: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Replayer<'t> {
        self.window = (from, to);
        self
    }

    /// The registration clocks so far.
    pub fn clocks(&self) -> &HashMap<String, i64> {
        &self.clocks
    }

    /// Replays the next batch; returns its sign-ins in the window and what the report writers
    /// need of each. `on_chunk(sign-ins done)` is called as chunks finish (from any thread).
    pub fn feed(
        &mut self,
        mut batch: Vec<SignIn>,
        on_chunk: &(dyn Fn(u64) + Sync),
    ) -> (Vec<SignIn>, BatchOut) {
        if !self.fixed && self.has_registration_policy {
            let found = registration_clocks(self.tenant, &batch);
            self.clocks = merge_clocks(std::mem::take(&mut self.clocks), found);
        }
        let (from, to) = self.window;
        if from.is_some() || to.is_some() {
            let before = batch.len();
            batch.retain(|s| {
                from.is_none_or(|f| s.created_at >= f) && to.is_none_or(|t| s.created_at < t)
            });
            self.outside_window += (before - batch.len()) as u64;
        }
        let (users, dir_users): (Vec<Option<u32>>, Vec<_>) =
            batch.iter().map(|s| self.number(s)).unzip();
        for s in &batch {
            self.first = Some(self.first.map_or(s.created_at, |f| f.min(s.created_at)));
            self.last = Some(self.last.map_or(s.created_at, |l| l.max(s.created_at)));
        }
        let env = self.tenant.env(&self.clocks);
        let (tenant, protects, details, base, texts) = (
            self.tenant,
            &self.protects,
            self.details,
            self.seen,
            &self.texts,
        );
        let track = !self.fixed && self.has_registration_policy;
        let parts: Vec<(Acc, Vec<Protection>, Vec<DetailRow>)> = batch
            .par_chunks(CHUNK)
            .zip(users.par_chunks(CHUNK))
            .zip(dir_users.par_chunks(CHUNK))
            .enumerate()
            .map(|(ci, ((chunk, chunk_users), chunk_dir_users))| {
                let mut acc = Acc::new(tenant);
                let mut protection = Vec::with_capacity(chunk.len());
                let mut rows = Vec::new();
                for (k, ((s, user), dir_user)) in chunk
                    .iter()
                    .zip(chunk_users)
                    .zip(chunk_dir_users)
                    .enumerate()
                {
                    let at = Place {
                        batch: ci * CHUNK + k,
                        base,
                    };
                    let one = One {
                        env: &env,
                        tenant,
                        protects,
                        details,
                        track,
                        texts,
                    };
                    protection.push(one.replay(s, at, *user, *dir_user, &mut acc, &mut rows));
                }
                on_chunk(chunk.len() as u64);
                (acc, protection, rows)
            })
            .collect();
        let mut out = BatchOut {
            users,
            dir_users,
            protection: Vec::with_capacity(batch.len()),
            details: Vec::new(),
        };
        let mut acc = std::mem::take(&mut self.acc);
        for (mut a, p, d) in parts {
            self.texts
                .absorb(std::mem::take(&mut a.texts), REASONS_KEPT);
            acc = acc.merge(a);
            out.protection.extend(p);
            out.details.extend(d);
        }
        self.acc = acc;
        self.seen += batch.len();
        (batch, out)
    }

    /// The user number of a sign-in's user (users numbered in order of first sign-in), and its
    /// user in the directory.
    fn number(&mut self, s: &SignIn) -> (Option<u32>, Option<crate::directory::UserIdx>) {
        if s.user_id.is_empty() {
            return (None, None);
        }
        if let Some(&(n, u)) = self.numbering.get(&s.user_id) {
            return (Some(n), u);
        }
        // A spelling not seen yet: its lower-cased form may be.
        let key = if s.user_id.bytes().any(|b| b.is_ascii_uppercase()) {
            Ustr::from(&s.user_id.to_ascii_lowercase())
        } else {
            s.user_id
        };
        let next = self.user_ids.len() as u32;
        let (n, u) = match self.numbering.get(&key) {
            Some(&found) => found,
            None => {
                let found = (next, self.tenant.dir.user_by_id(&s.user_id));
                self.numbering.insert(key, found);
                self.user_ids.push(key);
                found
            }
        };
        self.numbering.insert(s.user_id, (n, u));
        (Some(n), u)
    }

    /// The replay's aggregates, or the clocks to replay again with (see [`Finished`]).
    pub fn finish(self) -> Finished {
        let acc = self.acc;
        let changed = acc.nudged.iter().any(|(&u, &t)| {
            self.user_ids
                .get(u as usize)
                .and_then(|id| self.clocks.get(id.as_str()))
                .is_some_and(|&start| t >= start + engine::registration::GRACE_MILLIS)
        });
        if changed {
            return Finished::Again(self.clocks);
        }
        let policies = &self.tenant.set.policies;
        let mut indeterminate_reasons = BTreeMap::new();
        for ((pi, m), n) in acc.reasons {
            if let Some(p) = policies.get(pi) {
                *indeterminate_reasons
                    .entry(format!("{}: {}", p.id, m.as_str()))
                    .or_default() += n;
            }
        }
        let mut validation = BTreeMap::new();
        for ((pi, entra, impact), n) in acc.validation {
            if let (Some(p), Some(&entra)) = (policies.get(pi), ENTRA_WORDS.get(entra)) {
                *validation
                    .entry((pi, entra, our_word(p, impact)))
                    .or_default() += n;
            }
        }
        Finished::Done(Box::new(Replay {
            policies: acc.policies,
            sets: SETS.into_iter().zip(acc.sets).collect(),
            indeterminate_signins: SETS
                .into_iter()
                .zip(acc.indeterminate_signins)
                .filter(|&(_, n)| n > 0)
                .collect(),
            indeterminate_reasons,
            newly: acc.shift.newly,
            newly_signins: acc.shift.newly_signins,
            signins_changed: acc.shift.signins_changed,
            exclusions: acc.exclusions.into_iter().collect(),
            validation,
            disagreements: acc.disagreements,
            daily: acc.daily.into_iter().collect(),
            proposed_by: acc.proposed_by.ordered(),
            samples: acc.samples.into_iter().map(|(k, (_, s))| (k, s)).collect(),
            registration_clocks: self.clocks,
            evaluated: acc.evaluated,
            not_evaluated: acc.not_evaluated,
            users: self.user_ids.len() as u64,
            signins: self.seen as u64,
            first: self.first,
            last: self.last,
            outside_window: self.outside_window,
        }))
    }
}

/// Two sets of MFA registration clocks as one: each user's earliest start.
pub fn merge_clocks(mut a: HashMap<String, i64>, b: HashMap<String, i64>) -> HashMap<String, i64> {
    if a.len() < b.len() {
        return merge_clocks(b, a);
    }
    for (k, v) in b {
        a.entry(k)
            .and_modify(|x: &mut i64| *x = (*x).min(v))
            .or_insert(v);
    }
    a
}

/// Replays sign-ins against the tenant's policies, in memory: the aggregates, and what the
/// report writers need of each sign-in.
pub fn run_batch(tenant: &Tenant, signins: &[SignIn], details: Details) -> (Replay, BatchOut) {
    run_batch_with_clocks(
        tenant,
        signins,
        registration_clocks(tenant, signins),
        details,
    )
}

/// [`run_batch`] with the MFA registration clocks given: computed over a wider set of sign-ins
/// than the ones replayed (a time window still sees the prompts before it).
pub fn run_batch_with_clocks(
    tenant: &Tenant,
    signins: &[SignIn],
    clocks: HashMap<String, i64>,
    details: Details,
) -> (Replay, BatchOut) {
    let mut clocks = Some(clocks);
    loop {
        let mut r = Replayer::new(tenant, details, clocks.take());
        let (_, out) = r.feed(signins.to_vec(), &|_| {});
        match r.finish() {
            Finished::Done(replay) => return (*replay, out),
            // Not with clocks given; and they are final the second time.
            Finished::Again(c) => clocks = Some(c),
        }
    }
}

/// Replays sign-ins against the tenant's policies.
pub fn run(tenant: &Tenant, signins: &[SignIn], details: Details) -> Replay {
    run_batch(tenant, signins, details).0
}

/// ca-replay's word for policy `p`'s `impact`, as Entra would record it: an enabled policy's
/// result, or a report-only one's.
fn our_word(p: &crate::policy::CompiledPolicy, impact: Impact) -> &'static str {
    match p.state {
        crate::domain::PolicyState::Enabled => impact.enforced_result_word(),
        _ => impact.result_word(),
    }
}

/// Where a sign-in is: its index in the batch, and the sign-ins replayed before the batch.
#[derive(Clone, Copy)]
struct Place {
    batch: usize,
    base: usize,
}

/// What replaying one sign-in reads.
struct One<'a> {
    env: &'a Env<'a>,
    tenant: &'a Tenant,
    protects: &'a [bool],
    details: Details,
    /// Track the registration policy's answers inside the grace (clocks not final).
    track: bool,
    /// Reasons formatted by earlier batches.
    texts: &'a explain::ReasonCache,
}

impl One<'_> {
    /// Replays one sign-in of user number `user`, `dir_user` in the directory, into `acc` (its
    /// detail rows into `rows`); returns whether the proposed set protects it.
    fn replay(
        &self,
        s: &SignIn,
        at: Place,
        user: Option<u32>,
        dir_user: Option<crate::directory::UserIdx>,
        acc: &mut Acc,
        rows: &mut Vec<DetailRow>,
    ) -> Protection {
        let (env, tenant, protects, details) = (self.env, self.tenant, self.protects, self.details);
        let si = at.base + at.batch;
        if let Some(why) = crate::engine::not_evaluated(s) {
            *acc.not_evaluated.entry(why).or_default() += 1;
            return Protection::NotEvaluated;
        }
        acc.evaluated += 1;
        // `Replayer::number` looked the user up (as `Facts::prepare` would).
        let f = Facts::prepare_for(env, s, dir_user, false);
        let mut evals = std::mem::take(&mut acc.evals);
        evaluate_set(env, &f, &mut evals);
        acc.applied_ids
            .match_records(&tenant.set, &s.applied_policies, &mut acc.recorded);
        // Every non-disabled policy is in the proposed set.
        let (mut protected, mut maybe) = (false, false);
        for (pi, (p, e)) in tenant.set.policies.iter().zip(&evals).enumerate() {
            let Some(e) = *e else { continue };
            if protects[pi] {
                match e.applies {
                    Some(true) => protected = true,
                    None => maybe = true,
                    Some(false) => {}
                }
            }
            if let Some(Some(t)) = acc.policies.get_mut(pi) {
                t.add(e.impact, user);
            }
            if let Some((cond, Check::Excluded(entry))) = e.deciding_condition() {
                let x = acc.exclusions.entry((pi, cond, entry)).or_default();
                x.signins += 1;
                if let Some(u) = user {
                    x.users.insert(u);
                }
            }
            if let Some(recorded) = acc
                .recorded
                .get(pi)
                .copied()
                .flatten()
                .and_then(|ai| s.applied_policies.get(ai as usize))
            {
                let entra = acc.applied_ids.word(recorded.result);
                *acc.validation.entry((pi, entra, e.impact)).or_default() += 1;
                let (entra, ours) = (ENTRA_WORDS[entra], our_word(p, e.impact));
                if entra != ours
                    && e.impact != Impact::Indeterminate
                    && acc.disagreements.len() < DISAGREEMENTS_KEPT
                {
                    acc.disagreements.push(Disagreement {
                        signin: si,
                        signin_id: s.id.clone(),
                        created_at: s.created_at,
                        user_id: s.user_id.to_string(),
                        user_principal_name: s.user_principal_name.to_string(),
                        policy: pi,
                        entra,
                        ours,
                        reason: explain::reason(env.dir, env.set, p, &e, f.user),
                    });
                }
            }
            if self.track && e.why == Why::RegistrationGrace {
                if let Some(u) = user {
                    let t = acc.nudged.entry(u).or_insert(i64::MIN);
                    *t = (*t).max(s.millis());
                }
            }
            if let Why::Indeterminate(m) = e.why {
                *acc.reasons.entry((pi, m)).or_default() += 1;
            }
            if details == Details::All || e.impact != Impact::NotApplied {
                rows.push(DetailRow {
                    signin: at.batch,
                    policy: pi,
                    impact: e.impact,
                    reason: acc
                        .texts
                        .reason(self.texts, env.dir, env.set, pi, p, &e, f.user),
                });
            }
        }
        let mut outcome = [Impact::NotApplied; SETS.len()];
        let day = s.created_at.timestamp().div_euclid(86_400);
        for (k, kind) in SETS.into_iter().enumerate() {
            let o = combine(&tenant.set, &evals, kind);
            if let Some(t) = acc.sets.get_mut(k) {
                t.add(o.impact, user);
            }
            if o.indeterminate > 0 {
                acc.indeterminate_signins[k] += 1;
            }
            outcome[k] = o.impact;
            *acc.daily.entry((day, kind, o.impact)).or_default() += 1;
        }
        acc.evals = evals;
        let [cur, prop] = outcome;
        if crate::report::affected::is_affected(prop) {
            acc.proposed_by.add(s);
            acc.samples.entry(prop).or_insert_with(|| (si, s.clone()));
        }
        // The proposed set holds the current one, so its outcome is never less severe.
        acc.shift.add(cur, prop, user);
        if protected {
            Protection::Protected
        } else if maybe {
            Protection::Indeterminate
        } else {
            Protection::Unprotected
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signin::AppliedPolicy;

    fn contoso() -> Tenant {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data/contoso");
        Tenant::load(&root, crate::policy::BuildOptions::default()).expect("sample tenant")
    }

    fn applied(id: &str) -> AppliedPolicy {
        AppliedPolicy {
            id: Ustr::from(id),
            display_name: Ustr::default(),
            result: Ustr::from("success"),
            enforced_grant_controls: Vec::new(),
            conditions_satisfied: None,
            conditions_not_satisfied: None,
        }
    }

    /// Matching a sign-in's records to the policies in one pass finds, for every policy, the
    /// record the per-policy case-insensitive scan finds: GUIDs in either case, ids that are no
    /// GUID, repeated records (the first wins), ids of no policy.
    #[test]
    fn applied_records_match_as_the_scan_does() {
        let mut tenant = contoso();
        assert!(tenant.set.policies.len() >= 4);
        tenant.set.policies[0].id = "0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0".into();
        tenant.set.policies[1].id = "CA-Block legacy".into();
        tenant.set.policies[2].id = "ca-block LEGACY ".into();
        tenant.set.policies[3].id = "ÄrgerPolicy".into();
        let set = &tenant.set;
        let records = [
            "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
            "CA-BLOCK LEGACY",
            "not a policy of the set",
            "ca-block legacy ",
            "0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0",
            "äRGERPOLICY",
            "ÄRGERPOLICY",
            "",
        ];
        let lists: Vec<Vec<AppliedPolicy>> = vec![
            records.iter().map(|r| applied(r)).collect(),
            records.iter().rev().map(|r| applied(r)).collect(),
            set.policies.iter().map(|p| applied(&p.id)).collect(),
            set.policies
                .iter()
                .map(|p| applied(&p.id.to_ascii_uppercase()))
                .collect(),
            Vec::new(),
        ];
        let mut ids = AppliedIds::default();
        let mut out = Vec::new();
        for list in &lists {
            // Twice: the second time every id is remembered.
            for _ in 0..2 {
                ids.match_records(set, list, &mut out);
                let expected: Vec<Option<u32>> = set
                    .policies
                    .iter()
                    .map(|p| {
                        list.iter()
                            .position(|a| a.id.eq_ignore_ascii_case(&p.id))
                            .map(|i| i as u32)
                    })
                    .collect();
                assert_eq!(out, expected);
            }
        }
        // ASCII case only: `Ä` is not `ä`.
        assert_eq!(ids.policies(set, Ustr::from("ÄRGERPOLICY")), &[3]);
        assert_eq!(ids.policies(set, Ustr::from("ärgerpolicy")), &[] as &[u32]);
    }

    /// The reason cache gives `explain::reason`'s text for every evaluation, whether the text was
    /// formatted by it, by the shared cache, or for another user (nesting paths differ by user).
    #[test]
    fn cached_reasons_are_the_reasons() {
        use crate::engine::{Missing, CONDITIONS};
        let tenant = contoso();
        let (dir, set) = (&tenant.dir, &tenant.set);
        let mut users: Vec<Option<u32>> = (0..dir.users.len() as u32).map(Some).collect();
        users.push(None);
        let mut evals = Vec::new();
        let blank = Evaluation {
            applies: Some(false),
            impact: Impact::NotApplied,
            why: Why::NotApplied,
            control: None,
            trace: [Check::Skipped; CONDITIONS],
        };
        let checks = [
            Check::Excluded(None),
            Check::Excluded(Some(0)),
            Check::Excluded(Some(1)),
            Check::Excluded(Some(2)),
            Check::Excluded(Some(40)),
            Check::NotMatched,
            Check::OtherSubject,
            Check::Unknown(Missing::GroupMembership),
            Check::Unknown(Missing::IpAddress),
        ];
        for (ci, _) in Condition::ALL.iter().enumerate() {
            for check in checks {
                for (applies, why) in [
                    (Some(false), Why::NotApplied),
                    (None, Why::Indeterminate(Missing::UserType)),
                    (None, Why::NotApplied),
                    (Some(true), Why::NotApplied),
                ] {
                    let mut e = Evaluation {
                        applies,
                        why,
                        ..blank
                    };
                    e.trace[ci] = check;
                    evals.push(e);
                    // An earlier unknown does not decide; a later exclusion does.
                    if ci > 0 {
                        e.trace[0] = Check::Unknown(Missing::RoleAssignments);
                        evals.push(e);
                    }
                }
            }
        }
        evals.push(Evaluation {
            applies: None,
            why: Why::Indeterminate(Missing::SignInRisk),
            ..blank
        });
        for why in [
            Why::NoGrantControls,
            Why::BlockControl,
            Why::MfaPrompt,
            Why::MfaRegistration,
            Why::DeviceNotCompliant,
            Why::RegistrationGrace,
            Why::Indeterminate(Missing::DeviceCompliance),
        ] {
            for control in [None, Some(0), Some(1), Some(9)] {
                evals.push(Evaluation {
                    applies: Some(true),
                    why,
                    control,
                    ..blank
                });
            }
        }
        let empty = explain::ReasonCache::default();
        let mut first = explain::ReasonCache::default();
        let mut nested = 0;
        for _ in 0..2 {
            for (pi, p) in set.policies.iter().enumerate() {
                for e in &evals {
                    for &u in &users {
                        let direct = explain::reason(dir, set, p, e, u);
                        nested += direct.contains("nested via") as usize;
                        let cached = first.reason(&empty, dir, set, pi, p, e, u);
                        assert_eq!(cached.as_str(), direct, "policy {pi}, {e:?}, user {u:?}");
                    }
                }
            }
        }
        assert!(nested > 0, "no nesting path exercised");
        // Another chunk's cache, reading the shared one (half of it kept).
        let mut shared = explain::ReasonCache::default();
        let half = first.len() / 2;
        shared.absorb(first, half);
        assert_eq!(shared.len(), half);
        let mut other = explain::ReasonCache::default();
        for (pi, p) in set.policies.iter().enumerate().rev() {
            for e in &evals {
                for &u in users.iter().rev() {
                    let cached = other.reason(&shared, dir, set, pi, p, e, u);
                    assert_eq!(cached.as_str(), explain::reason(dir, set, p, e, u));
                }
            }
        }
    }
}
