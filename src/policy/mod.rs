//! Policies: the Graph `conditionalAccessPolicy` model, the legacy Identity Protection policies,
//! validation, and compilation into a `PolicySet` the engine evaluates.
//!
//! In: policy files or folders (one object per file, arrays, Graph pages, NDJSON; UTF-8/UTF-16;
//! camelCase or the SDK's PascalCase) and the `Directory`. Out: compiled policies plus findings.

pub mod compile;
pub mod compiled;
pub mod device_filter;
pub mod git;
pub mod identity_protection;
pub mod model;

use std::fmt;
use std::path::{Path, PathBuf};

pub use compiled::*;

use crate::directory::Directory;
use crate::domain::PolicyState;
use crate::source::{self, SourceError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Reported; evaluation is exact regardless.
    Warning,
    /// A field that affects evaluation and that ca-replay does not implement: an error unless
    /// `--allow-unsupported`, then a warning carried into every report.
    Unsupported,
    /// The policy is invalid (Graph would reject it, or it references placeholders).
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Unsupported => "unsupported",
            Severity::Error => "error",
        }
    }
}

/// One validation finding, naming the file, the policy and the JSON pointer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub severity: Severity,
    pub file: PathBuf,
    pub policy: String,
    pub pointer: String,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} `{}` {}: {}",
            self.severity.as_str(),
            self.file.display(),
            self.policy,
            if self.pointer.is_empty() {
                "/"
            } else {
                &self.pointer
            },
            self.message
        )
    }
}

/// A policy as read from its file, before compilation.
#[derive(Debug, Clone)]
pub struct LoadedPolicy {
    pub id: String,
    pub raw: model::Policy,
    /// The policy object as read (keys normalized, OData annotations dropped): what `diff`
    /// compares.
    pub json: serde_json::Value,
    pub origin: Origin,
}

fn is_policy_file(p: &Path) -> bool {
    let n = p.to_string_lossy().to_ascii_lowercase();
    [".json", ".json.gz", ".ndjson", ".ndjson.gz", ".jsonl"]
        .iter()
        .any(|e| n.ends_with(e))
}

/// Reads every policy under `path` (a file or a folder, recursively). Records that are not
/// policies, or whose fields have the wrong JSON type, are findings; unreadable files are errors.
pub fn load_policies(path: &Path) -> Result<(Vec<LoadedPolicy>, Vec<Finding>), SourceError> {
    let mut policies = Vec::new();
    let mut findings = Vec::new();
    let files = source::files_under(path)?;
    for file in files.iter().filter(|f| is_policy_file(f)) {
        let records = source::read_json_records(file)?;
        let stem = file
            .file_name()
            .and_then(|n| n.to_str())
            .map(|n| n.split('.').next().unwrap_or(n).to_owned())
            .unwrap_or_default();
        let many = records.len() > 1;
        for r in records {
            let pointer = if many {
                format!("/{}", r.index - 1)
            } else {
                String::new()
            };
            let fail = |message: String| Finding {
                severity: Severity::Error,
                file: file.clone(),
                policy: stem.clone(),
                pointer: pointer.clone(),
                message,
            };
            let looks_like_policy = r.value.get("conditions").is_some()
                || r.value.get("grantControls").is_some()
                || r.value.get("state").is_some();
            if !looks_like_policy {
                let keys: Vec<&str> = r
                    .value
                    .as_object()
                    .map(|m| m.keys().take(5).map(String::as_str).collect())
                    .unwrap_or_default();
                findings.push(fail(format!(
                    "not a conditionalAccessPolicy (no `conditions`, `grantControls` or `state`; keys: {})",
                    keys.join(", ")
                )));
                continue;
            }
            let mut value = r.value;
            for slot in empty_arrays_for_objects(&mut value) {
                findings.push(Finding {
                    severity: Severity::Warning,
                    file: file.clone(),
                    policy: stem.clone(),
                    pointer: format!("{pointer}{slot}"),
                    message: "`[]` where an object is expected; read as not set".to_owned(),
                });
            }
            let json = value.clone();
            match serde_path_to_error::deserialize::<_, model::Policy>(value) {
                Ok(raw) => {
                    let id = match raw.id.as_str() {
                        Some(id) => id,
                        None if many => format!("{stem}#{}", r.index),
                        None => stem.clone(),
                    };
                    policies.push(LoadedPolicy {
                        id,
                        raw,
                        json,
                        origin: Origin {
                            file: file.clone(),
                            pointer: pointer.clone(),
                        },
                    });
                }
                Err(e) => {
                    let at = e.path().to_string();
                    let at = if at == "." {
                        String::new()
                    } else {
                        format!("/{}", at.replace('.', "/"))
                    };
                    findings.push(Finding {
                        pointer: format!("{pointer}{at}"),
                        ..fail(format!("wrong JSON type: {}", e.inner()))
                    })
                }
            }
        }
    }
    Ok((policies, findings))
}

/// Policy fields whose value is an object, where templates sometimes write `[]` (for example
/// `"locations": []` in AlexFilipin/ConditionalAccess). Replaces each such `[]` by `null` and
/// returns the JSON pointers it changed.
fn empty_arrays_for_objects(policy: &mut serde_json::Value) -> Vec<String> {
    const TOP: [&str; 3] = ["conditions", "grantControls", "sessionControls"];
    const CONDITIONS: [&str; 8] = [
        "users",
        "applications",
        "locations",
        "platforms",
        "devices",
        "clientApplications",
        "authenticationFlows",
        "times",
    ];
    let mut changed = Vec::new();
    let is_empty_array = |v: &serde_json::Value| v.as_array().is_some_and(Vec::is_empty);
    if let Some(m) = policy.as_object_mut() {
        for k in TOP {
            if m.get(k).is_some_and(is_empty_array) {
                m.insert(k.to_owned(), serde_json::Value::Null);
                changed.push(format!("/{k}"));
            }
        }
    }
    if let Some(c) = policy.get_mut("conditions").and_then(|c| c.as_object_mut()) {
        for k in CONDITIONS {
            if c.get(k).is_some_and(is_empty_array) {
                c.insert(k.to_owned(), serde_json::Value::Null);
                changed.push(format!("/conditions/{k}"));
            }
        }
    }
    changed
}

/// The compiled policies of a tenant, with what the engine needs per user.
#[derive(Debug, Default)]
pub struct PolicySet {
    pub policies: Vec<CompiledPolicy>,
    pub symbols: Symbols,
    /// Per directory user (by `UserIdx`): groups and roles the policies reference.
    pub member_of: Vec<MemberOf>,
    pub findings: Vec<Finding>,
    /// Per policy as `build` left them: its slots in the engine's per-sign-in memo
    /// (`engine::Facts`), with the address of its `id` text. Policies whose users (or
    /// applications) conditions test the same entries share a slot, so the condition is
    /// evaluated once per sign-in, not once per policy. `memo_slots_of` gives a policy its
    /// slots only while it is still the one `build` put at that index (`run --policy`
    /// removes policies from a built set). A built policy's conditions must not be changed
    /// in place.
    memo_slots: Vec<(usize, MemoSlots)>,
}

/// Slots of a policy's conditions in the per-sign-in memo; `NO_SLOT`: not memoized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoSlots {
    pub users: u8,
    pub apps: u8,
}

/// Distinct conditions memoized per kind (the rest are evaluated every time).
pub const MEMO_SLOTS: usize = 32;
pub const NO_SLOT: u8 = u8::MAX;

impl MemoSlots {
    pub const NONE: MemoSlots = MemoSlots {
        users: NO_SLOT,
        apps: NO_SLOT,
    };
}

/// Entry lists with the same targets in the same order (what evaluation reads; the JSON
/// pointers and raw text only name them in traces).
fn same_targets<T: PartialEq>(a: &[Entry<T>], b: &[Entry<T>]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.target == y.target)
}

fn slot_of<'a, T>(seen: &mut Vec<&'a T>, x: &'a T, same: impl Fn(&T, &T) -> bool) -> u8 {
    if let Some(i) = seen.iter().position(|s| same(s, x)) {
        return i as u8;
    }
    if seen.len() < MEMO_SLOTS {
        seen.push(x);
        (seen.len() - 1) as u8
    } else {
        NO_SLOT
    }
}

fn memo_slots(policies: &[CompiledPolicy]) -> Vec<(usize, MemoSlots)> {
    let mut users: Vec<&UsersCondition> = Vec::new();
    let mut apps: Vec<&AppsCondition> = Vec::new();
    policies
        .iter()
        .map(|p| {
            if p.id.is_empty() {
                // Every empty `id` has the same (dangling) address: not told apart, not kept.
                return (0, MemoSlots::NONE);
            }
            let slots = MemoSlots {
                users: match &p.users {
                    Some(u) => slot_of(&mut users, u, |a, b| {
                        same_targets(&a.include, &b.include) && same_targets(&a.exclude, &b.exclude)
                    }),
                    None => NO_SLOT,
                },
                apps: slot_of(&mut apps, &p.apps, |a, b| {
                    same_targets(&a.include, &b.include)
                        && same_targets(&a.exclude, &b.exclude)
                        && same_targets(&a.user_actions, &b.user_actions)
                        && same_targets(&a.auth_contexts, &b.auth_contexts)
                }),
            };
            (p.id.as_ptr() as usize, slots)
        })
        .collect()
}

/// Options for building a policy set.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuildOptions {
    /// Accept unsupported fields as warnings carried into every report.
    pub allow_unsupported: bool,
}

impl PolicySet {
    /// Compiles loaded policies (and legacy Identity Protection policies) against a directory.
    /// Policy-referenced user ids are interned into the directory first so that the engine
    /// compares indices.
    pub fn build(
        loaded: &[LoadedPolicy],
        legacy: Vec<identity_protection::LegacyPolicy>,
        dir: &mut Directory,
        options: BuildOptions,
    ) -> PolicySet {
        for p in loaded {
            if let Some(u) = p.raw.conditions.as_ref().and_then(|c| c.users.as_ref()) {
                for id in u.include_users.iter().chain(u.exclude_users.iter()) {
                    if compile::is_guid(id.trim()) {
                        dir.intern_user(id);
                    }
                }
            }
        }
        for l in &legacy {
            for id in l
                .users
                .include_users
                .iter()
                .chain(l.users.exclude_users.iter())
            {
                if compile::is_guid(id.trim()) {
                    dir.intern_user(id);
                }
            }
        }
        let mut set = PolicySet::default();
        let mut seen_ids = std::collections::HashMap::new();
        for p in loaded {
            let (compiled, findings) = compile::compile(
                &p.raw,
                p.id.clone(),
                p.origin.clone(),
                dir,
                &mut set.symbols,
            );
            set.findings.extend(findings);
            if let Some(c) = compiled {
                if let Some(prev) = seen_ids.insert(c.id.to_ascii_lowercase(), c.origin.clone()) {
                    set.findings.push(Finding {
                        severity: Severity::Error,
                        file: c.origin.file.clone(),
                        policy: c.display_name.clone(),
                        pointer: format!("{}/id", c.origin.pointer),
                        message: format!(
                            "duplicate policy id `{}` (also in {} at {})",
                            c.id,
                            prev.file.file_name().map_or_else(
                                || prev.file.display().to_string(),
                                |n| n.to_string_lossy().into_owned()
                            ),
                            if prev.pointer.is_empty() {
                                "/"
                            } else {
                                &prev.pointer
                            }
                        ),
                    });
                }
                set.policies.push(c);
            }
        }
        for l in legacy {
            let (compiled, findings) = l.compile(dir, &mut set.symbols);
            set.findings.extend(findings);
            set.policies.extend(compiled);
        }
        if options.allow_unsupported {
            for f in &set.findings {
                if f.severity == Severity::Unsupported {
                    if let Some(p) = set.policies.iter_mut().find(|p| {
                        p.origin.file == f.file && f.pointer.starts_with(&p.origin.pointer)
                    }) {
                        p.accepted_unsupported
                            .push(format!("{}: {}", f.pointer, f.message));
                    }
                }
            }
        }
        set.findings.sort();
        set.findings.dedup();
        set.member_of = member_of(&set.symbols, dir);
        set.memo_slots = memo_slots(&set.policies);
        set
    }

    /// Keeps the policies `keep` says yes to (`run --policy`), and gives the rest their memo
    /// slots again (the per-sign-in memo then still serves them).
    pub fn retain(&mut self, keep: impl FnMut(&CompiledPolicy) -> bool) {
        self.policies.retain(keep);
        self.memo_slots = memo_slots(&self.policies);
    }

    /// The memo slots of `p` when it is one of this set's policies (by address) and the one
    /// `build` put at that index (its `id` text is the same allocation), else none.
    pub fn memo_slots_of(&self, p: &CompiledPolicy) -> MemoSlots {
        let size = std::mem::size_of::<CompiledPolicy>();
        let offset =
            (p as *const CompiledPolicy as usize).wrapping_sub(self.policies.as_ptr() as usize);
        let i = offset / size;
        match self.policies.get(i) {
            Some(q) if std::ptr::eq(q, p) => self.memo_slots_at(i),
            _ => MemoSlots::NONE,
        }
    }

    /// The memo slots of `policies[i]` (none when the policy there is not the one they were
    /// assigned to).
    pub fn memo_slots_at(&self, i: usize) -> MemoSlots {
        match (self.policies.get(i), self.memo_slots.get(i)) {
            (Some(p), Some(&(id, slots))) if id == p.id.as_ptr() as usize => slots,
            _ => MemoSlots::NONE,
        }
    }

    /// The findings that stop a run: errors, and unsupported fields unless allowed.
    pub fn blocking_findings(&self, options: BuildOptions) -> Vec<&Finding> {
        self.findings
            .iter()
            .filter(|f| {
                f.severity == Severity::Error
                    || (f.severity == Severity::Unsupported && !options.allow_unsupported)
            })
            .collect()
    }

    /// Policies Entra evaluates at all (state is not `disabled`).
    pub fn active(&self) -> impl Iterator<Item = (usize, &CompiledPolicy)> {
        self.policies
            .iter()
            .enumerate()
            .filter(|(_, p)| p.state != PolicyState::Disabled)
    }

    pub fn member_of(&self, u: Option<crate::directory::UserIdx>) -> Option<&MemberOf> {
        u.and_then(|u| self.member_of.get(u as usize))
    }
}

fn member_of(symbols: &Symbols, dir: &Directory) -> Vec<MemberOf> {
    let mut out = vec![MemberOf::default(); dir.users.len()];
    for (sym, &g) in symbols.groups.iter().enumerate() {
        for u in dir.transitive_users(g) {
            if let Some(m) = out.get_mut(u as usize) {
                m.add_group(sym as u32);
            }
        }
    }
    for (u, m) in out.iter_mut().enumerate() {
        m.listed = ListedUser::of(dir.user(u as u32));
        for role in dir.roles_of(u as u32) {
            if let Some(sym) = symbols.roles.iter().position(|r| r == role) {
                m.add_role(sym as u32);
            }
        }
    }
    out
}
