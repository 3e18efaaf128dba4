//! Human-readable traces: which condition decided, which include or exclude entry fired (with
//! group names and the nesting path), which control is missing. Pure: reads the directory, writes
//! strings.

use super::{Check, Condition, Evaluation, Why};
use crate::directory::Directory;
use crate::directory::UserIdx;
use crate::policy::{CompiledPolicy, Entry, PolicySet, UserRef};
use crate::signin::Ustr;

/// The last step of a JSON pointer as a trace names it: `excludeGroups[2]`.
pub(crate) fn tail(pointer: &str) -> String {
    // `/conditions/users/excludeGroups/2` -> `excludeGroups[2]`
    let mut parts = pointer.rsplit('/');
    match (parts.next(), parts.next()) {
        (Some(i), Some(field)) if i.chars().all(|c| c.is_ascii_digit()) => format!("{field}[{i}]"),
        (Some(field), _) => field.to_owned(),
        _ => pointer.to_owned(),
    }
}

fn user_entry(
    dir: &Directory,
    set: &PolicySet,
    user: Option<UserIdx>,
    e: &Entry<UserRef>,
) -> String {
    let what = match &e.target {
        UserRef::All => "all users".to_owned(),
        UserRef::GuestsOrExternal => "guests or external users".to_owned(),
        UserRef::User(u) => {
            let user = dir.user(*u);
            if user.user_principal_name.is_empty() {
                format!("user `{}`", user.id)
            } else {
                format!("user `{}`", user.user_principal_name)
            }
        }
        UserRef::Group(sym) => {
            let g = set.symbols.groups[*sym as usize];
            let group = dir.group(g);
            let name = if group.display_name.is_empty() {
                &group.id
            } else {
                &group.display_name
            };
            let via = user
                .and_then(|u| dir.membership_path(u, g))
                .filter(|p| p.len() > 1)
                .map(|p| {
                    let names: Vec<String> = p[1..]
                        .iter()
                        .map(|x| {
                            let gg = dir.group(*x);
                            format!(
                                "`{}`",
                                if gg.display_name.is_empty() {
                                    &gg.id
                                } else {
                                    &gg.display_name
                                }
                            )
                        })
                        .collect();
                    format!(" (nested via {})", names.join(" → "))
                })
                .unwrap_or_default();
            format!("group `{name}`{via}")
        }
        UserRef::MissingGroup => format!("group `{}` (not in the directory)", e.raw),
        UserRef::Role(sym) => format!(
            "role `{}`",
            crate::engine::explain::role_name(&set.symbols.roles[*sym as usize])
        ),
        UserRef::External(_) => format!("external users `{}`", e.raw),
    };
    format!("{} {}", tail(&e.pointer), what)
}

/// A role for a trace: "Global Administrator (62e9…)", or the bare id of a role not built in.
pub fn role_name(id: &str) -> String {
    crate::directory::roles::built_in_role_name(id)
        .map_or_else(|| id.to_owned(), |n| format!("{n} ({id})"))
}

/// One line per condition that was checked.
pub fn trace_lines(
    dir: &Directory,
    set: &PolicySet,
    p: &CompiledPolicy,
    e: &Evaluation,
    user: Option<UserIdx>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (cond, check) in Condition::ALL.iter().zip(e.trace.iter()) {
        let text = match check {
            Check::Skipped => continue,
            Check::NotConfigured => continue,
            Check::Matched(i) => {
                match i.and_then(|i| entry_text(dir, set, p, *cond, true, i as usize, user)) {
                    Some(t) => format!("matched by {t}"),
                    None => "matched".to_owned(),
                }
            }
            Check::NotMatched => "not matched (no include rule matched)".to_owned(),
            Check::OtherSubject => other_subject(*cond).to_owned(),
            Check::Excluded(i) => {
                match i.and_then(|i| entry_text(dir, set, p, *cond, false, i as usize, user)) {
                    Some(t) => format!("excluded by {t}"),
                    None => "excluded".to_owned(),
                }
            }
            Check::Unknown(m) => format!("unknown: {}", m.as_str()),
        };
        out.push(format!("{}: {text}", cond.as_str()));
    }
    out
}

/// The exclude entry of `cond` that fired (`None`: the rule itself, e.g. a device filter in
/// exclude mode), named as in traces but without a particular user's nesting path.
pub fn exclusion_text(
    dir: &Directory,
    set: &PolicySet,
    p: &CompiledPolicy,
    cond: Condition,
    entry: Option<u16>,
) -> String {
    entry
        .and_then(|i| entry_text(dir, set, p, cond, false, i as usize, None))
        .unwrap_or_else(|| match cond {
            Condition::DevicePlatform => "excludePlatforms".to_owned(),
            Condition::Devices => "the device filter (exclude mode)".to_owned(),
            other => format!("the {} condition's exclusion", other.as_str()),
        })
}

fn entry_text(
    dir: &Directory,
    set: &PolicySet,
    p: &CompiledPolicy,
    cond: Condition,
    include: bool,
    i: usize,
    user: Option<UserIdx>,
) -> Option<String> {
    match cond {
        Condition::Users => {
            let u = p.users.as_ref()?;
            let e = if include {
                u.include.get(i)
            } else {
                u.exclude.get(i)
            }?;
            Some(user_entry(dir, set, user, e))
        }
        Condition::WorkloadIdentities => {
            let w = p.workload.as_ref()?;
            let e = if include {
                w.include.get(i)
            } else {
                w.exclude.get(i)
            }?;
            Some(format!("{} `{}`", tail(&e.pointer), e.raw))
        }
        Condition::Application => {
            let a = &p.apps;
            let n = a.include.len();
            let e = if !include {
                a.exclude.get(i).map(|e| (e.pointer.clone(), e.raw.clone()))
            } else if i < n {
                a.include.get(i).map(|e| (e.pointer.clone(), e.raw.clone()))
            } else if i < n + a.user_actions.len() {
                a.user_actions
                    .get(i - n)
                    .map(|e| (e.pointer.clone(), e.raw.clone()))
            } else {
                a.auth_contexts
                    .get(i - n - a.user_actions.len())
                    .map(|e| (e.pointer.clone(), e.raw.clone()))
            }?;
            Some(format!("{} `{}`", tail(&e.0), e.1))
        }
        Condition::Location => {
            let l = p.locations.as_ref()?;
            let e = if include {
                l.include.get(i)
            } else {
                l.exclude.get(i)
            }?;
            let name = match &e.target {
                crate::policy::LocationRef::Named(x) => dir
                    .named_locations
                    .get(*x)
                    .map(|n| format!(" ({})", n.display_name))
                    .unwrap_or_default(),
                _ => String::new(),
            };
            Some(format!("{} `{}`{name}", tail(&e.pointer), e.raw))
        }
        Condition::ClientApps => p
            .client_app_types
            .as_ref()?
            .get(i)
            .map(|t| format!("clientAppTypes[{i}] `{t}`")),
        _ => None,
    }
}

/// A one-line reason for a details row.
pub fn reason(
    dir: &Directory,
    set: &PolicySet,
    p: &CompiledPolicy,
    e: &Evaluation,
    user: Option<UserIdx>,
) -> String {
    match e.why {
        Why::NotApplied | Why::Indeterminate(_) if e.applies != Some(true) => {
            match e.deciding_condition() {
                Some((cond, Check::Excluded(i))) => {
                    let what =
                        i.and_then(|i| entry_text(dir, set, p, cond, false, i as usize, user));
                    match what {
                        Some(w) => format!("{}: excluded by {w}", cond.as_str()),
                        None => format!("{}: excluded", cond.as_str()),
                    }
                }
                Some((cond, Check::NotMatched)) => format!("{}: not matched", cond.as_str()),
                Some((cond, Check::OtherSubject)) => {
                    format!("{}: {}", cond.as_str(), other_subject(cond))
                }
                Some((cond, Check::Unknown(m))) => {
                    format!("{}: unknown: {}", cond.as_str(), m.as_str())
                }
                _ => e.why.as_str().to_owned(),
            }
        }
        why => {
            let control = e
                .control
                .and_then(|i| p.grant.controls.get(i as usize))
                .map(|c| format!("{}: ", c.label()))
                .unwrap_or_default();
            format!("{control}{}", why.as_str())
        }
    }
}

/// What [`reason`] reads of an evaluation and its user: evaluations of one policy with the same
/// key get the same text. The user is in it only when the text names the user's nesting path
/// (an exclusion by a group entry of the users condition).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ReasonKey {
    /// The policy did not apply, or may not: the deciding condition, or `why` without one.
    Decided {
        why: Why,
        deciding: Option<(Condition, Check)>,
        user: Option<UserIdx>,
    },
    /// It applies: the grant stage's `why` and the control that decided.
    Granted { why: Why, control: Option<u8> },
}

impl ReasonKey {
    /// Mirrors the branches of [`reason`].
    fn of(p: &CompiledPolicy, e: &Evaluation, user: Option<UserIdx>) -> ReasonKey {
        match e.why {
            Why::NotApplied | Why::Indeterminate(_) if e.applies != Some(true) => {
                let deciding = e.deciding_condition();
                let user = match deciding {
                    Some((Condition::Users, Check::Excluded(Some(i)))) => p
                        .users
                        .as_ref()
                        .and_then(|u| u.exclude.get(i as usize))
                        .filter(|x| matches!(x.target, UserRef::Group(_)))
                        .and(user),
                    _ => None,
                };
                ReasonKey::Decided {
                    why: e.why,
                    deciding,
                    user,
                }
            }
            why => ReasonKey::Granted {
                why,
                control: e.control,
            },
        }
    }
}

/// [`reason`] formatted once per policy and what it reads ([`ReasonKey`]), as interned text.
/// Callers keep one per thread or chunk; [`ReasonCache::absorb`] gathers them.
#[derive(Debug, Default)]
pub struct ReasonCache {
    texts: rustc_hash::FxHashMap<(u32, ReasonKey), Ustr>,
}

impl ReasonCache {
    /// The reason for policy `pi` of `set` (`p`) and its evaluation `e` of a sign-in of `user`:
    /// from `shared` or this cache, else formatted and kept here.
    #[allow(clippy::too_many_arguments)]
    pub fn reason(
        &mut self,
        shared: &ReasonCache,
        dir: &Directory,
        set: &PolicySet,
        pi: usize,
        p: &CompiledPolicy,
        e: &Evaluation,
        user: Option<UserIdx>,
    ) -> Ustr {
        let key = (pi as u32, ReasonKey::of(p, e, user));
        if let Some(&t) = shared.texts.get(&key) {
            return t;
        }
        *self
            .texts
            .entry(key)
            .or_insert_with(|| Ustr::from(&reason(dir, set, p, e, user)))
    }

    /// Takes in the texts of `other`, up to `limit` texts in all.
    pub fn absorb(&mut self, other: ReasonCache, limit: usize) {
        for (k, t) in other.texts {
            if self.texts.len() >= limit {
                break;
            }
            self.texts.insert(k, t);
        }
    }

    pub fn len(&self) -> usize {
        self.texts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }
}

fn other_subject(cond: Condition) -> &'static str {
    if cond == Condition::Users {
        "not matched: a workload identity sign-in, and this policy targets users"
    } else {
        "not matched: a user sign-in, and this policy targets workload identities"
    }
}
