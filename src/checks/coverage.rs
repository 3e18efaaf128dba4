//! Coverage: the sign-ins and users that no policy of the proposed set protects with MFA or a
//! block, from the replay (what Microsoft's gap-analyzer workbook shows, from real traffic).
//!
//! In: the sign-ins and the replay's per-sign-in `Protection` (the driver writes it: some policy
//! of the proposed set, enabled + report-only, applies and blocks or requires MFA or an
//! authentication strength; or none is known to, but one whose applicability the inputs cannot
//! decide would). Out: totals and breakdowns by app (the resource's display name), client app
//! type and user type (member, or the kind of external user the users condition sees).
//! `indeterminate` is counted apart, never as protected or unprotected. Workload identity
//! sign-ins are counted apart too: MFA does not apply to them.

use std::borrow::Cow;

use rayon::prelude::*;
use serde::Serialize;

use crate::directory::{parse_guid, FastMap, UserIdx};
use crate::engine::{classify_external, External};
use crate::replay::Protection;
use crate::signin::SignIn;
use crate::tenant::Tenant;

/// Apps listed in `by_app` (the ones with the most unprotected sign-ins); all are counted.
pub const APPS_LISTED: usize = 15;

const CHUNK: usize = 4096;

type FastSet<K> = std::collections::HashSet<K, rustc_hash::FxBuildHasher>;

/// Protected / indeterminate / unprotected.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Totals {
    pub protected: u64,
    pub indeterminate: u64,
    pub unprotected: u64,
}

/// One value of a breakdown.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Row {
    pub name: String,
    pub signins: u64,
    pub protected: u64,
    pub indeterminate: u64,
    pub unprotected: u64,
    /// Distinct users with an unprotected sign-in here.
    pub unprotected_users: u64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    /// The policy set read: `proposed` (enabled + report-only).
    pub set: &'static str,
    /// Its policies that protect what they apply to (block, MFA, authentication strength).
    pub protecting_policies: Vec<String>,
    /// Evaluated user sign-ins: what the totals divide.
    pub user_signins: u64,
    /// Workload identity sign-ins: evaluated, not assessed here.
    pub workload_signins: u64,
    /// Sign-ins the replay did not evaluate (failed first factor, managed identities).
    pub not_evaluated: u64,
    pub signins: Totals,
    /// Users partitioned: `unprotected` with at least one unprotected sign-in; `indeterminate`
    /// with none, but one indeterminate; `protected` with every sign-in protected.
    pub users: Totals,
    pub by_app: Vec<Row>,
    /// Apps with at least one unprotected sign-in (`by_app` lists the first of them).
    pub apps_with_unprotected: usize,
    pub by_client_app_type: Vec<Row>,
    pub by_user_type: Vec<Row>,
}

/// A user for distinct counts: the id as a number when it is a GUID (no allocation), else the
/// id lower-cased (the replay's user numbering does the same).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum UserKey<'a> {
    Guid(u128),
    Raw(Cow<'a, str>),
}

impl UserKey<'static> {
    fn of(s: &SignIn) -> Option<UserKey<'static>> {
        // Interned: the text lives as long as the program.
        let id: &'static str = s.user_id.as_str();
        if id.is_empty() {
            return None;
        }
        Some(match parse_guid(id) {
            Some(g) => UserKey::Guid(g),
            None if id.bytes().any(|b| b.is_ascii_uppercase()) => {
                UserKey::Raw(Cow::Owned(id.to_ascii_lowercase()))
            }
            None => UserKey::Raw(Cow::Borrowed(id)),
        })
    }
}

#[derive(Default)]
struct Cell<'a> {
    signins: [u64; 3],
    unprotected_users: FastSet<UserKey<'a>>,
}

impl<'a> Cell<'a> {
    fn add(&mut self, class: usize, user: &Option<UserKey<'a>>) {
        self.signins[class] += 1;
        if class == 2 {
            if let Some(u) = user {
                if !self.unprotected_users.contains(u) {
                    self.unprotected_users.insert(u.clone());
                }
            }
        }
    }
    fn merge(&mut self, o: Cell<'a>) {
        for i in 0..3 {
            self.signins[i] += o.signins[i];
        }
        self.unprotected_users.extend(o.unprotected_users);
    }
    fn row(&self, name: String) -> Row {
        Row {
            name,
            signins: self.signins.iter().sum(),
            protected: self.signins[0],
            indeterminate: self.signins[1],
            unprotected: self.signins[2],
            unprotected_users: self.unprotected_users.len() as u64,
        }
    }
}

#[derive(Default)]
struct Acc<'a> {
    signins: [u64; 3],
    /// Per user: bit i set when a sign-in of class i was seen.
    users: FastMap<UserKey<'a>, u8>,
    apps: FastMap<&'a str, Cell<'a>>,
    clients: FastMap<&'static str, Cell<'a>>,
    types: FastMap<&'static str, Cell<'a>>,
    workload: u64,
    not_evaluated: u64,
}

fn merge_cells<'a, K: Eq + std::hash::Hash>(a: &mut FastMap<K, Cell<'a>>, b: FastMap<K, Cell<'a>>) {
    for (k, c) in b {
        a.entry(k).or_default().merge(c);
    }
}

impl<'a> Acc<'a> {
    fn merge(mut self, o: Acc<'a>) -> Acc<'a> {
        for i in 0..3 {
            self.signins[i] += o.signins[i];
        }
        for (k, bits) in o.users {
            *self.users.entry(k).or_default() |= bits;
        }
        merge_cells(&mut self.apps, o.apps);
        merge_cells(&mut self.clients, o.clients);
        merge_cells(&mut self.types, o.types);
        self.workload += o.workload;
        self.not_evaluated += o.not_evaluated;
        self
    }
}

/// The user type as the users condition classifies the sign-in's user.
fn user_type(tenant: &Tenant, s: &SignIn, user: Option<UserIdx>) -> &'static str {
    match classify_external(&tenant.dir, user, s) {
        External::Internal => "member",
        External::Kind(k) => k.as_str(),
        External::Unknown => "unknown",
    }
}

fn app_name(s: &SignIn) -> &'static str {
    [s.resource_display_name, s.resource_id]
        .into_iter()
        .find(|x| !x.is_empty())
        .map_or("(unknown resource)", |x| x.as_str())
}

fn rows<K: AsRef<str>>(cells: &FastMap<K, Cell>) -> Vec<Row> {
    let mut v: Vec<Row> = cells
        .iter()
        .map(|(k, c)| c.row(k.as_ref().to_owned()))
        .collect();
    v.sort_by(|a, b| {
        b.unprotected
            .cmp(&a.unprotected)
            .then(b.indeterminate.cmp(&a.indeterminate))
            .then_with(|| a.name.cmp(&b.name))
    });
    v
}

/// The coverage check, built batch by batch.
#[derive(Default)]
pub struct CoverageAcc(Acc<'static>);

impl CoverageAcc {
    /// Adds a batch of sign-ins with their protection and directory users
    /// (`replay::BatchOut::protection`, `dir_users`).
    pub fn add(
        &mut self,
        tenant: &Tenant,
        signins: &[SignIn],
        protection: &[Protection],
        dir_users: &[Option<UserIdx>],
    ) {
        let acc = signins
            .par_chunks(CHUNK)
            .zip(protection.par_chunks(CHUNK))
            .zip(dir_users.par_chunks(CHUNK))
            .fold(Acc::default, |mut acc, ((chunk, classes), dir_users)| {
                for ((s, p), dir_user) in chunk.iter().zip(classes).zip(dir_users) {
                    let class = match p {
                        Protection::NotEvaluated => {
                            acc.not_evaluated += 1;
                            continue;
                        }
                        _ if s.event_type.is_workload() => {
                            acc.workload += 1;
                            continue;
                        }
                        Protection::Protected => 0,
                        Protection::Indeterminate => 1,
                        Protection::Unprotected => 2,
                    };
                    acc.signins[class] += 1;
                    let user = UserKey::of(s);
                    if let Some(u) = &user {
                        match acc.users.get_mut(u) {
                            Some(bits) => *bits |= 1 << class,
                            None => {
                                acc.users.insert(u.clone(), 1 << class);
                            }
                        }
                    }
                    acc.apps.entry(app_name(s)).or_default().add(class, &user);
                    acc.clients
                        .entry(s.client_app.as_str())
                        .or_default()
                        .add(class, &user);
                    acc.types
                        .entry(user_type(tenant, s, *dir_user))
                        .or_default()
                        .add(class, &user);
                }
                acc
            })
            .reduce(Acc::default, Acc::merge);
        self.0 = std::mem::take(&mut self.0).merge(acc);
    }

    pub fn finish(self, tenant: &Tenant) -> Report {
        report(tenant, self.0)
    }
}

/// The coverage of the replayed sign-ins by the proposed set.
pub fn check(tenant: &Tenant, signins: &[SignIn], protection: &[Protection]) -> Report {
    let dir_users: Vec<Option<UserIdx>> = signins
        .iter()
        .map(|s| {
            (!s.user_id.is_empty())
                .then(|| tenant.dir.user_by_id(&s.user_id))
                .flatten()
        })
        .collect();
    let mut acc = CoverageAcc::default();
    acc.add(tenant, signins, protection, &dir_users);
    acc.finish(tenant)
}

fn report(tenant: &Tenant, acc: Acc) -> Report {
    let mut users = Totals::default();
    for bits in acc.users.values() {
        if bits & 4 != 0 {
            users.unprotected += 1;
        } else if bits & 2 != 0 {
            users.indeterminate += 1;
        } else {
            users.protected += 1;
        }
    }
    let mut by_app = rows(&acc.apps);
    let apps_with_unprotected = by_app.iter().filter(|r| r.unprotected > 0).count();
    by_app.truncate(APPS_LISTED);
    Report {
        set: "proposed",
        protecting_policies: tenant
            .set
            .active()
            .filter(|(_, p)| p.protects())
            .map(|(_, p)| p.display_name.clone())
            .collect(),
        user_signins: acc.signins.iter().sum(),
        workload_signins: acc.workload,
        not_evaluated: acc.not_evaluated,
        signins: Totals {
            protected: acc.signins[0],
            indeterminate: acc.signins[1],
            unprotected: acc.signins[2],
        },
        users,
        by_app,
        apps_with_unprotected,
        by_client_app_type: rows(&acc.clients),
        by_user_type: rows(&acc.types),
    }
}
