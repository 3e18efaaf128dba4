//! Who and what each policy would affect: per (user, policy) rows for `users.csv`, and per
//! policy the apps, client app types, platforms and countries of the affected sign-ins.
//!
//! In: the replay's detail rows (rows whose impact is not `not_applied`; see `replay::Details`).
//! Out: deterministic aggregates (ordered maps; ties broken by name), computed with polars
//! ([`AffectedAcc`]). "Affected" means a
//! sign-in the policy would challenge or stop: every impact except `not_applied`, `satisfied`
//! and `indeterminate` (which is counted on its own).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use polars::prelude::{
    col, concat, len, Column, DataFrame, DataType, Expr, IntoLazy, LazyFrame, PolarsError,
    PolarsResult, UnionArgs,
};
use rustc_hash::FxHashMap;

use crate::domain::Impact;
use crate::replay::DetailRow;
use crate::signin::{SignIn, Ustr};

/// Whether an impact is one a user would notice.
pub fn is_affected(i: Impact) -> bool {
    !matches!(
        i,
        Impact::NotApplied | Impact::Satisfied | Impact::Indeterminate
    )
}

/// One user under one policy.
#[derive(Debug, Clone)]
pub struct UserRow {
    pub user_id: String,
    pub user_principal_name: String,
    pub policy: usize,
    /// The most severe impact among the user's affected sign-ins.
    pub impact: Impact,
    pub signins: u64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Distinct app display names (or ids), sorted.
    pub apps: BTreeSet<String>,
}

/// Counts by label, most frequent first (ties by label).
pub fn top(counts: &BTreeMap<String, u64>, n: usize) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = counts.iter().map(|(k, c)| (k.clone(), *c)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

/// Per policy: affected sign-ins by app, client app type, platform and country.
#[derive(Debug, Clone, Default)]
pub struct Breakdown {
    pub apps: BTreeMap<String, u64>,
    pub client_apps: BTreeMap<String, u64>,
    pub platforms: BTreeMap<String, u64>,
    pub countries: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default)]
pub struct Affected {
    /// Sorted by policy, then user principal name, then user id.
    pub users: Vec<UserRow>,
    /// Aligned with the policy set.
    pub policies: Vec<Breakdown>,
}

fn app_label_str(s: &SignIn) -> &'static str {
    let name = if s.app_display_name.is_empty() {
        &s.app_id
    } else {
        &s.app_display_name
    };
    if name.is_empty() {
        "(unknown app)"
    } else {
        name.as_str()
    }
}

/// Why the affected users could not be aggregated: a polars query failed, or the thread
/// running it. Its inputs are columns this module builds, so this is a defect of ca-replay
/// (or of the machine), not of the input.
#[derive(Debug, thiserror::Error)]
pub enum AggregateError {
    #[error("aggregating the affected users and breakdowns (polars): {0}")]
    Polars(#[from] PolarsError),
    /// The thread that aggregates beside the detail files' writer could not start, or panicked.
    #[error("aggregating the affected users and breakdowns: the thread doing it: {0}")]
    Thread(String),
}

/// Interned text numbered while a run goes, so that polars groups by `u32` and the text is
/// looked up once at the end. Every label comes from the sign-ins' interned strings or from a
/// literal, so equal text nearly always shares one address: a label is found by its address,
/// and only an address not seen before is looked up by its text.
#[derive(Default)]
struct Ids {
    by_address: FxHashMap<(usize, usize), u32>,
    by_text: Numbered<&'static str>,
}

impl Ids {
    fn id(&mut self, text: &'static str) -> u32 {
        let address = (text.as_ptr() as usize, text.len());
        if let Some(&id) = self.by_address.get(&address) {
            return id;
        }
        let id = self.by_text.id(text);
        self.by_address.insert(address, id);
        id
    }

    fn text(&self, id: u32) -> &'static str {
        self.by_text.get(id).unwrap_or("")
    }
}

/// Values numbered in the order first seen (texts, (user, app) pairs, a sign-in's labels).
struct Numbered<K> {
    ids: FxHashMap<K, u32>,
    values: Vec<K>,
}

impl<K> Default for Numbered<K> {
    fn default() -> Self {
        Numbered {
            ids: FxHashMap::default(),
            values: Vec::new(),
        }
    }
}

impl<K: Copy + Eq + std::hash::Hash> Numbered<K> {
    fn id(&mut self, value: K) -> u32 {
        let next = u32::try_from(self.values.len()).unwrap_or(u32::MAX);
        let id = *self.ids.entry(value).or_insert(next);
        if id == next {
            self.values.push(value);
        }
        id
    }

    fn get(&self, id: u32) -> Option<K> {
        self.values.get(id as usize).copied()
    }
}

/// A group's key: a policy and an id, in one `u64`. polars groups by one integer column far
/// faster than by several (those it encodes into bytes, row by row).
fn key(policy: u32, id: u32) -> u64 {
    (u64::from(policy) << 32) | u64::from(id)
}

fn unkey(key: u64) -> (u32, u32) {
    ((key >> 32) as u32, key as u32)
}

/// One aggregate, grouped by a [`key`] column: each batch's rows are grouped on their own
/// (`per_batch`), and the groups so far are merged (`merge`) at the end, and whenever the groups
/// not merged yet outnumber both [`MERGE_ROWS`] and the merged ones (so each group is merged a
/// few times at most, however long the run).
struct Table {
    /// The key column. Rows where it is null (a sign-in without a user, in the per-user
    /// table) are left out.
    key: &'static str,
    per_batch: Vec<Expr>,
    merge: Vec<Expr>,
    /// The merged groups (first, once merged), then each batch's since.
    parts: Vec<DataFrame>,
    /// Rows of the merged groups, and of the groups since.
    merged: usize,
    pending: usize,
    /// [`MERGE_ROWS`]; less in tests.
    merge_rows: usize,
}

/// Groups kept unmerged before they are merged into one frame.
const MERGE_ROWS: usize = 1 << 20;

impl Table {
    /// Grouped by `key`, with `n`: the affected sign-ins in the group.
    fn counts(key: &'static str) -> Table {
        Table {
            key,
            per_batch: vec![len().cast(DataType::UInt64).alias("n")],
            merge: vec![col("n").sum()],
            parts: Vec::new(),
            merged: 0,
            pending: 0,
            merge_rows: MERGE_ROWS,
        }
    }

    /// Per (policy, user, app): `n`, the first and last time seen, the most severe impact.
    fn users() -> Table {
        let mut t = Table::counts("policy_user_app");
        t.per_batch.extend([
            col("time").min().alias("first"),
            col("time").max().alias("last"),
            col("severity").max(),
        ]);
        t.merge
            .extend([col("first").min(), col("last").max(), col("severity").max()]);
        t
    }

    fn group(&self, rows: LazyFrame, aggs: &[Expr]) -> PolarsResult<DataFrame> {
        rows.group_by([col(self.key)]).agg(aggs).collect()
    }

    fn add(&mut self, batch: &DataFrame) -> PolarsResult<()> {
        let rows = batch.clone().lazy().filter(col(self.key).is_not_null());
        let part = self.group(rows, &self.per_batch)?;
        self.pending += part.height();
        self.parts.push(part);
        if self.pending > self.merge_rows.max(self.merged) {
            self.merge()?;
        }
        Ok(())
    }

    /// Merges the groups so far into one frame.
    fn merge(&mut self) -> PolarsResult<()> {
        if self.parts.len() > 1 {
            let parts: Vec<LazyFrame> = self.parts.drain(..).map(IntoLazy::lazy).collect();
            let merged = self.group(concat(parts, UnionArgs::default())?, &self.merge)?;
            self.merged = merged.height();
            self.pending = 0;
            self.parts.push(merged);
        }
        Ok(())
    }

    /// All the groups, merged.
    fn finish(mut self) -> PolarsResult<Option<DataFrame>> {
        self.merge()?;
        Ok(self.parts.pop())
    }
}

/// A column's values, for rows known to have them.
fn u64s<'a>(df: &'a DataFrame, name: &str) -> PolarsResult<impl Iterator<Item = u64> + 'a> {
    Ok(df.column(name)?.u64()?.iter().map(|v| v.unwrap_or(0)))
}

/// The severity of each affected impact, the other way round.
fn affected_impact(severity: u32) -> Option<Impact> {
    Impact::ALL
        .into_iter()
        .find(|i| is_affected(*i) && u32::from(i.severity()) == severity)
}

/// A sign-in's numbers: its labels' (app, client app type, platform, country: [`Breakdown`]'s
/// fields, in order), and (when it has a user) its user's and its (user, app) pair's.
#[derive(Clone, Copy)]
struct SignInIds {
    labels: u32,
    user: Option<(u32, u32)>,
}

/// [`Affected`], built batch by batch from the replay's detail rows, with polars: each batch's
/// affected sign-ins become a frame of numbers (the time, the severity, and [`key`]s of the
/// policy with the (user, app) pair and with the sign-in's four labels), grouped per key; the
/// groups are merged as they grow and at the end, and the (policy, user, app) groups are
/// grouped again per (policy, user). Two group-bys per batch: each costs a hash per row, so
/// combinations are numbered here ([`Ids`], [`Numbered`]) rather than grouped by column by
/// column, and looked up again once, at the end.
pub struct AffectedAcc {
    policies: usize,
    texts: Ids,
    user_ids: Ids,
    /// Per user id: the first user principal name seen with it.
    names: Vec<Ustr>,
    /// (user, app) pairs.
    pairs: Numbered<(u32, u32)>,
    /// A sign-in's four labels, together.
    labels: Numbered<[u32; 4]>,
    /// Per (policy, (user, app) pair); per (policy, user) at the end.
    users: Table,
    /// Per (policy, labels).
    breakdowns: Table,
}

impl AffectedAcc {
    pub fn new(policies: usize) -> AffectedAcc {
        AffectedAcc {
            policies,
            texts: Ids::default(),
            user_ids: Ids::default(),
            names: Vec::new(),
            pairs: Numbered::default(),
            labels: Numbered::default(),
            users: Table::users(),
            breakdowns: Table::counts("policy_labels"),
        }
    }

    /// Merges the groups when they are more than `rows` (tests: the merge, many times over).
    #[cfg(test)]
    fn merging_at(mut self, rows: usize) -> AffectedAcc {
        for t in [&mut self.users, &mut self.breakdowns] {
            t.merge_rows = rows;
        }
        self
    }

    /// A sign-in's numbers.
    fn ids(&mut self, s: &SignIn) -> SignInIds {
        let country = if s.country.is_empty() {
            "(unknown)"
        } else {
            s.country.as_str()
        };
        let texts = [
            app_label_str(s),
            s.client_app.as_str(),
            s.platform.as_str(),
            country,
        ];
        let texts = texts.map(|t| self.texts.id(t));
        let user = (!s.user_id.is_empty()).then(|| {
            let user = self.user(s);
            (user, self.pairs.id((user, texts[0])))
        });
        SignInIds {
            labels: self.labels.id(texts),
            user,
        }
    }

    /// The number of a user's id (and the user's name, the first time it is not empty).
    fn user(&mut self, s: &SignIn) -> u32 {
        let id = self.user_ids.id(s.user_id.as_str());
        match self.names.get_mut(id as usize) {
            Some(name) if name.is_empty() => *name = s.user_principal_name,
            Some(_) => {}
            None => self.names.push(s.user_principal_name),
        }
        id
    }

    /// Adds a batch's detail rows (`rows[i].signin` indexes `batch`).
    pub fn add(&mut self, batch: &[SignIn], rows: &[DetailRow]) -> Result<(), AggregateError> {
        let mut policy_user_app = Vec::new();
        let mut time = Vec::new();
        let mut severity = Vec::new();
        let mut policy_labels = Vec::new();
        // A sign-in's rows come together: its ids are found once for all of them.
        let mut last: Option<(usize, SignInIds)> = None;
        for r in rows {
            if !is_affected(r.impact) || r.policy >= self.policies {
                continue;
            }
            let Some(s) = batch.get(r.signin) else {
                continue;
            };
            let Ok(policy) = u32::try_from(r.policy) else {
                continue;
            };
            let ids = match last {
                Some((i, ids)) if i == r.signin => ids,
                _ => {
                    let ids = self.ids(s);
                    last = Some((r.signin, ids));
                    ids
                }
            };
            policy_labels.push(key(policy, ids.labels));
            policy_user_app.push(ids.user.map(|(_, pair)| key(policy, pair)));
            time.push(s.created_at.timestamp_micros());
            severity.push(u32::from(r.impact.severity()));
        }
        if time.is_empty() {
            return Ok(());
        }
        let height = time.len();
        let columns = vec![
            Column::new("policy_user_app".into(), policy_user_app),
            Column::new("policy_labels".into(), policy_labels),
            Column::new("time".into(), time),
            Column::new("severity".into(), severity),
        ];
        let frame = DataFrame::new(height, columns)?;
        for t in [&mut self.users, &mut self.breakdowns] {
            t.add(&frame)?;
        }
        Ok(())
    }

    pub fn finish(self) -> Result<Affected, AggregateError> {
        let AffectedAcc {
            policies,
            texts,
            user_ids,
            names,
            pairs,
            labels,
            users,
            breakdowns,
        } = self;
        let mut rows: FxHashMap<u64, UserRow> = FxHashMap::default();
        let merge = users.merge.clone();
        if let Some(mut per_app) = users.finish()? {
            // Each (policy, user, app) group names an app of the user's row; grouped again
            // by (policy, user), the groups make the row.
            let mut apps: FxHashMap<u64, BTreeSet<String>> = FxHashMap::default();
            let mut policy_user = Vec::with_capacity(per_app.height());
            for k in u64s(&per_app, "policy_user_app")? {
                let (p, pair) = unkey(k);
                let user = pairs.get(pair).map(|(u, app)| {
                    let k = key(p, u);
                    apps.entry(k)
                        .or_default()
                        .insert(texts.text(app).to_owned());
                    k
                });
                policy_user.push(user);
            }
            per_app.with_column(Column::new("policy_user".into(), policy_user))?;
            let df = per_app
                .lazy()
                .filter(col("policy_user").is_not_null())
                .group_by([col("policy_user")])
                .agg(merge)
                .collect()?;
            let severity = df.column("severity")?.u32()?;
            let first = df.column("first")?.i64()?;
            let last = df.column("last")?.i64()?;
            let groups = u64s(&df, "policy_user")?
                .zip(u64s(&df, "n")?)
                .zip(severity.iter().zip(first.iter().zip(last.iter())));
            for ((k, n), (severity, (first, last))) in groups {
                let (Some(impact), Some(first), Some(last)) = (
                    severity.and_then(affected_impact),
                    first.and_then(DateTime::from_timestamp_micros),
                    last.and_then(DateTime::from_timestamp_micros),
                ) else {
                    continue;
                };
                let (p, u) = unkey(k);
                let name = names.get(u as usize).map_or("", |n| n.as_str());
                rows.insert(
                    k,
                    UserRow {
                        user_id: user_ids.text(u).to_owned(),
                        user_principal_name: name.to_owned(),
                        policy: p as usize,
                        impact,
                        signins: n,
                        first_seen: first,
                        last_seen: last,
                        apps: apps.remove(&k).unwrap_or_default(),
                    },
                );
            }
        }
        let mut rows: Vec<UserRow> = rows.into_values().collect();
        rows.sort_by(|a, b| {
            (a.policy, &a.user_principal_name, &a.user_id).cmp(&(
                b.policy,
                &b.user_principal_name,
                &b.user_id,
            ))
        });
        let mut out: Vec<Breakdown> = vec![Breakdown::default(); policies];
        if let Some(df) = breakdowns.finish()? {
            for (k, n) in u64s(&df, "policy_labels")?.zip(u64s(&df, "n")?) {
                let (p, combination) = unkey(k);
                let (Some(b), Some(ids)) = (out.get_mut(p as usize), labels.get(combination))
                else {
                    continue;
                };
                let counts = [
                    &mut b.apps,
                    &mut b.client_apps,
                    &mut b.platforms,
                    &mut b.countries,
                ];
                for (counts, id) in counts.into_iter().zip(ids) {
                    *counts.entry(texts.text(id).to_owned()).or_default() += n;
                }
            }
        }
        Ok(Affected {
            users: rows,
            policies: out,
        })
    }
}

/// [`AffectedAcc`] over one batch.
pub fn aggregate(
    policies: usize,
    signins: &[SignIn],
    rows: &[DetailRow],
) -> Result<Affected, AggregateError> {
    let mut acc = AffectedAcc::new(policies);
    acc.add(signins, rows)?;
    acc.finish()
}

/// One affected user across the proposed set: the worst impact, the most affected sign-ins
/// under one policy, when first and last seen, and the policies (by display name).
#[derive(Debug, Clone)]
pub struct Ranked<'a> {
    pub user_id: &'a str,
    /// The user principal name, or the id when the log has none.
    pub label: &'a str,
    pub impact: Impact,
    pub signins: u64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub policies: Vec<&'a str>,
}

/// The affected users, worst impact first, then most sign-ins, then by name.
pub fn ranked<'a>(tenant: &'a crate::tenant::Tenant, affected: &'a Affected) -> Vec<Ranked<'a>> {
    let mut who: BTreeMap<&str, Ranked> = BTreeMap::new();
    for r in &affected.users {
        let Some(p) = tenant.set.policies.get(r.policy) else {
            continue;
        };
        let w = who.entry(r.user_id.as_str()).or_insert(Ranked {
            user_id: &r.user_id,
            label: if r.user_principal_name.is_empty() {
                &r.user_id
            } else {
                &r.user_principal_name
            },
            impact: r.impact,
            signins: 0,
            first_seen: r.first_seen,
            last_seen: r.last_seen,
            policies: Vec::new(),
        });
        if r.impact.severity() > w.impact.severity() {
            w.impact = r.impact;
        }
        w.signins = w.signins.max(r.signins);
        w.first_seen = w.first_seen.min(r.first_seen);
        w.last_seen = w.last_seen.max(r.last_seen);
        w.policies.push(&p.display_name);
    }
    let mut out: Vec<Ranked> = who.into_values().collect();
    out.sort_by(|a, b| {
        b.impact
            .severity()
            .cmp(&a.impact.severity())
            .then(b.signins.cmp(&a.signins))
            .then(a.label.cmp(b.label))
            .then(a.user_id.cmp(b.user_id))
    });
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;
    use crate::domain::{ClientApp, Platform};

    /// A sign-in of user `u` (0: none) with app `a`, at minute `m`.
    fn signin(u: u8, a: u8, country: u8, m: u32) -> SignIn {
        let text = |prefix: &str, n: u8| {
            if n == 0 {
                Ustr::from("")
            } else {
                Ustr::from(&format!("{prefix}{n}"))
            }
        };
        SignIn {
            created_at: Utc
                .with_ymd_and_hms(2026, 11, 1, 0, 0, 0)
                .single()
                .unwrap_or_default()
                + chrono::Duration::minutes(i64::from(m)),
            user_id: text("id-", u),
            // A user's name is missing from some rows.
            user_principal_name: if m.is_multiple_of(3) {
                text("", 0)
            } else {
                text("upn-", u)
            },
            app_display_name: text("App ", a % 3),
            app_id: text("app-id-", a),
            country: text("C", country),
            client_app: if a.is_multiple_of(2) {
                ClientApp::Browser
            } else {
                ClientApp::MobileAppsAndDesktopClients
            },
            platform: if m.is_multiple_of(2) {
                Platform::Windows
            } else {
                Platform::Ios
            },
            ..SignIn::default()
        }
    }

    /// What [`Affected`] should say, counted one row at a time.
    fn expected(policies: usize, batches: &[(Vec<SignIn>, Vec<DetailRow>)]) -> Affected {
        let mut users: BTreeMap<(usize, String), UserRow> = BTreeMap::new();
        let mut out = vec![Breakdown::default(); policies];
        for (batch, rows) in batches {
            for r in rows.iter().filter(|r| is_affected(r.impact)) {
                let s = &batch[r.signin];
                let b = &mut out[r.policy];
                let country = if s.country.is_empty() {
                    "(unknown)"
                } else {
                    s.country.as_str()
                };
                for (m, k) in [
                    (&mut b.apps, app_label_str(s)),
                    (&mut b.client_apps, s.client_app.as_str()),
                    (&mut b.platforms, s.platform.as_str()),
                    (&mut b.countries, country),
                ] {
                    *m.entry(k.to_owned()).or_default() += 1;
                }
                if s.user_id.is_empty() {
                    continue;
                }
                let row = users
                    .entry((r.policy, s.user_id.to_string()))
                    .or_insert_with(|| UserRow {
                        user_id: s.user_id.to_string(),
                        user_principal_name: String::new(),
                        policy: r.policy,
                        impact: r.impact,
                        signins: 0,
                        first_seen: s.created_at,
                        last_seen: s.created_at,
                        apps: BTreeSet::new(),
                    });
                row.signins += 1;
                if r.impact.severity() > row.impact.severity() {
                    row.impact = r.impact;
                }
                row.first_seen = row.first_seen.min(s.created_at);
                row.last_seen = row.last_seen.max(s.created_at);
                row.apps.insert(app_label_str(s).to_owned());
            }
        }
        // A user's name: the first one seen under any policy.
        let mut names: BTreeMap<String, String> = BTreeMap::new();
        for (batch, rows) in batches {
            for r in rows.iter().filter(|r| is_affected(r.impact)) {
                let s = &batch[r.signin];
                let name = names.entry(s.user_id.to_string()).or_default();
                if name.is_empty() {
                    *name = s.user_principal_name.to_string();
                }
            }
        }
        let mut users: Vec<UserRow> = users.into_values().collect();
        for u in &mut users {
            u.user_principal_name = names[&u.user_id].clone();
        }
        users.sort_by(|a, b| {
            (a.policy, &a.user_principal_name, &a.user_id).cmp(&(
                b.policy,
                &b.user_principal_name,
                &b.user_id,
            ))
        });
        Affected {
            users,
            policies: out,
        }
    }

    fn same(a: &Affected, b: &Affected) {
        let key = |r: &UserRow| {
            (
                r.policy,
                r.user_id.clone(),
                r.user_principal_name.clone(),
                r.impact,
                r.signins,
                r.first_seen,
                r.last_seen,
                r.apps.clone(),
            )
        };
        assert_eq!(
            a.users.iter().map(key).collect::<Vec<_>>(),
            b.users.iter().map(key).collect::<Vec<_>>()
        );
        let counts =
            |b: &Breakdown| [&b.apps, &b.client_apps, &b.platforms, &b.countries].map(Clone::clone);
        assert_eq!(
            a.policies.iter().map(counts).collect::<Vec<_>>(),
            b.policies.iter().map(counts).collect::<Vec<_>>()
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Batch by batch, with the groups merged every few rows, the polars aggregation says
        /// what counting every row on its own says.
        #[test]
        fn batches_and_merges_agree_with_counting_row_by_row(
            batches in prop::collection::vec(
                prop::collection::vec(
                    (0u8..6, 0u8..5, 0u8..3, 0u32..500, prop::array::uniform3(0usize..Impact::ALL.len())),
                    0..40,
                ),
                0..8,
            ),
            merge_at in 0usize..20,
        ) {
            let policies = 3;
            let batches: Vec<(Vec<SignIn>, Vec<DetailRow>)> = batches
                .into_iter()
                .map(|rows| {
                    let signins = rows
                        .iter()
                        .map(|&(u, a, c, m, _)| signin(u, a, c, m))
                        .collect();
                    // A row per policy that applied, a sign-in's rows together (as the replay
                    // writes them).
                    let details = rows
                        .iter()
                        .enumerate()
                        .flat_map(|(i, (_, _, _, _, impacts))| {
                            impacts.iter().enumerate().filter_map(move |(policy, &impact)| {
                                let impact = Impact::ALL[impact];
                                (impact != Impact::NotApplied).then(|| DetailRow {
                                    signin: i,
                                    policy,
                                    impact,
                                    reason: Ustr::from(""),
                                })
                            })
                        })
                        .collect();
                    (signins, details)
                })
                .collect();
            let mut acc = AffectedAcc::new(policies).merging_at(merge_at);
            for (signins, rows) in &batches {
                acc.add(signins, rows).expect("add");
            }
            let got = acc.finish().expect("finish");
            same(&got, &expected(policies, &batches));
        }
    }
}
