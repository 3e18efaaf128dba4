//! Who and what each policy would affect: per (user, policy) rows for `users.csv`, and per
//! policy the apps, client app types, platforms and countries of the affected sign-ins.
//!
//! In: the replay's detail rows (rows whose impact is not `not_applied`; see `replay::Details`).
//! Out: deterministic aggregates (ordered maps; ties broken by name). "Affected" means a
//! sign-in the policy would challenge or stop: every impact except `not_applied`, `satisfied`
//! and `indeterminate` (which is counted on its own).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

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

/// Interned text counted by address while a run goes. Every label comes from the sign-ins'
/// interned strings or from a literal, so equal text nearly always shares one address; where
/// it does not (a literal and an interned copy), [`AffectedAcc::finish`] adds the counts up.
#[derive(Clone, Copy)]
struct Label(&'static str);

impl Label {
    fn key(self) -> (usize, usize) {
        (self.0.as_ptr() as usize, self.0.len())
    }
}

/// Counts by [`Label`] address.
type LabelCounts = rustc_hash::FxHashMap<(usize, usize), (Label, u64)>;

/// A [`UserRow`] while counting: its apps by [`Label`] address.
struct UserAcc {
    row: UserRow,
    apps: Vec<Label>,
}

/// [`Affected`], built batch by batch from the replay's detail rows.
pub struct AffectedAcc {
    /// Per policy: counts by app, client app type, platform and country.
    breakdowns: Vec<[LabelCounts; 4]>,
    users: rustc_hash::FxHashMap<(usize, Ustr), UserAcc>,
}

impl AffectedAcc {
    pub fn new(policies: usize) -> AffectedAcc {
        AffectedAcc {
            breakdowns: (0..policies).map(|_| Default::default()).collect(),
            users: Default::default(),
        }
    }

    /// Adds a batch's detail rows (`rows[i].signin` indexes `batch`).
    pub fn add(&mut self, batch: &[SignIn], rows: &[DetailRow]) {
        for r in rows {
            if !is_affected(r.impact) {
                continue;
            }
            let Some(s) = batch.get(r.signin) else {
                continue;
            };
            let app = Label(app_label_str(s));
            if let Some(b) = self.breakdowns.get_mut(r.policy) {
                let country = if s.country.is_empty() {
                    "(unknown)"
                } else {
                    s.country.as_str()
                };
                let keys = [app.0, s.client_app.as_str(), s.platform.as_str(), country];
                for (counts, k) in b.iter_mut().zip(keys) {
                    let k = Label(k);
                    counts.entry(k.key()).or_insert((k, 0)).1 += 1;
                }
            }
            if s.user_id.is_empty() {
                continue;
            }
            let acc = self
                .users
                .entry((r.policy, s.user_id))
                .or_insert_with(|| UserAcc {
                    row: UserRow {
                        user_id: s.user_id.to_string(),
                        user_principal_name: s.user_principal_name.to_string(),
                        policy: r.policy,
                        impact: r.impact,
                        signins: 0,
                        first_seen: s.created_at,
                        last_seen: s.created_at,
                        apps: BTreeSet::new(),
                    },
                    apps: Vec::new(),
                });
            let row = &mut acc.row;
            row.signins += 1;
            if r.impact.severity() > row.impact.severity() {
                row.impact = r.impact;
            }
            row.first_seen = row.first_seen.min(s.created_at);
            row.last_seen = row.last_seen.max(s.created_at);
            if row.user_principal_name.is_empty() {
                row.user_principal_name = s.user_principal_name.to_string();
            }
            if !acc.apps.iter().any(|a| a.key() == app.key()) {
                acc.apps.push(app);
            }
        }
    }

    pub fn finish(self) -> Affected {
        let mut rows: Vec<UserRow> = self
            .users
            .into_values()
            .map(|mut a| {
                a.row.apps = a.apps.iter().map(|l| l.0.to_owned()).collect();
                a.row
            })
            .collect();
        rows.sort_by(|a, b| {
            (a.policy, &a.user_principal_name, &a.user_id).cmp(&(
                b.policy,
                &b.user_principal_name,
                &b.user_id,
            ))
        });
        let sorted = |m: LabelCounts| {
            let mut out: BTreeMap<String, u64> = BTreeMap::new();
            for (label, n) in m.into_values() {
                *out.entry(label.0.to_owned()).or_default() += n;
            }
            out
        };
        Affected {
            users: rows,
            policies: self
                .breakdowns
                .into_iter()
                .map(|[apps, client_apps, platforms, countries]| Breakdown {
                    apps: sorted(apps),
                    client_apps: sorted(client_apps),
                    platforms: sorted(platforms),
                    countries: sorted(countries),
                })
                .collect(),
        }
    }
}

/// [`AffectedAcc`] over one batch.
pub fn aggregate(policies: usize, signins: &[SignIn], rows: &[DetailRow]) -> Affected {
    let mut acc = AffectedAcc::new(policies);
    acc.add(signins, rows);
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
