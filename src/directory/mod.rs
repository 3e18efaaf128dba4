//! The directory facts a decision needs beyond the sign-in: users, groups (nesting resolved
//! transitively, cycles tolerated), active role assignments, MFA registration, user risk with its
//! history, and named locations.
//!
//! In: Graph exports from the tenant folder (design.md "Inputs"). Out: a `Directory` with interned
//! ids, so that the engine's look-ups are index operations. What was not provided is recorded in
//! `Provided`, so that a decision that needs it becomes `indeterminate` instead of a guess.

pub mod locations;

/// Hash maps keyed by object ids the engine looks up per sign-in: FxHash (rustc-hash) instead
/// of SipHash, whose flooding resistance buys nothing for local input files (measured: see
/// benches/engine.rs).
pub type FastMap<K, V> = std::collections::HashMap<K, V, rustc_hash::FxBuildHasher>;
pub mod roles;

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::domain::RiskLevel;
use crate::source::{self, SourceError};
pub use locations::{IpTable, LocationKind, NamedLocation};

pub type UserIdx = u32;
pub type GroupIdx = u32;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub user_principal_name: String,
    pub display_name: String,
    /// `member` / `guest`, lower-cased; empty when unknown.
    pub user_type: crate::signin::Ustr,
    pub account_enabled: Option<bool>,
    pub creation_type: String,
    pub external_user_state: String,
    pub on_premises_sync_enabled: Option<bool>,
    /// Listed in `users.json` (and not only referenced by a group, policy or sign-in).
    pub listed: bool,
    /// Invited from outside (entra-semantics.md §2.2): an `externalUserState`, creation type
    /// `Invitation`, or `#EXT#` in the UPN. Set with the rest of the `users.json` record.
    pub invited: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Group {
    pub id: String,
    pub display_name: String,
    pub member_users: Vec<UserIdx>,
    pub member_groups: Vec<GroupIdx>,
    /// Its record in `groups.json` carries `members` or `transitiveMembers` (even empty): its
    /// membership is known. A group only named as another group's member, or listed without
    /// either field, has unknown membership.
    pub members_listed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration {
    pub is_mfa_registered: bool,
    /// Registered with a method the authentication methods policy allows: can satisfy MFA.
    pub is_mfa_capable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskEvent {
    pub at: DateTime<Utc>,
    pub level: RiskLevel,
    pub state: String,
}

/// Which inputs the tenant folder provided.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Provided {
    pub users: bool,
    pub groups: bool,
    pub roles: bool,
    pub registration: bool,
    pub risk: bool,
    pub named_locations: bool,
}

/// A directory input problem: the file, the record and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryProblem {
    pub file: PathBuf,
    pub record: usize,
    pub message: String,
}

impl std::fmt::Display for DirectoryProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} record {}: {}",
            self.file.display(),
            self.record,
            self.message
        )
    }
}

#[derive(Debug, Default)]
pub struct Directory {
    pub users: Vec<User>,
    user_index: FastMap<String, UserIdx>,
    /// The same users keyed by their id as a 128-bit number when it is a GUID (all real
    /// object ids): the per-sign-in look-up hashes one integer instead of 36 bytes.
    user_guid_index: FastMap<u128, UserIdx>,
    /// The same users keyed by their interned key (trimmed, lower-cased id): a sign-in's
    /// `user_id` is interned with its hash, so an exact hit costs one probe and no hashing.
    user_sym_index: ustr::UstrMap<UserIdx>,
    upn_index: FastMap<String, UserIdx>,
    pub groups: Vec<Group>,
    group_index: FastMap<String, GroupIdx>,
    /// (principal id, role template id) of active assignments at directory scope `/`.
    role_assignments: Vec<(String, String)>,
    /// Role template ids per user, resolved (including role-assignable groups).
    user_roles: FastMap<UserIdx, Vec<String>>,
    /// By `UserIdx` (a dense index, read once per sign-in).
    registration: Vec<Option<Registration>>,
    risk: FastMap<UserIdx, Vec<RiskEvent>>,
    pub named_locations: Vec<NamedLocation>,
    location_index: FastMap<String, usize>,
    pub mfa_trusted_ips: IpTable,
    pub provided: Provided,
    /// Records skipped while loading, with the reason; shown in every report.
    pub problems: Vec<DirectoryProblem>,
}

/// A GUID (`8-4-4-4-12` hex digits, any case, surrounding spaces allowed) as a number.
pub fn parse_guid(id: &str) -> Option<u128> {
    /// Hex digit values; 0x10 marks a byte that is not a hex digit.
    const HEX: [u8; 256] = {
        let mut t = [0x10u8; 256];
        let mut i = 0;
        while i < 10 {
            t[b'0' as usize + i] = i as u8;
            i += 1;
        }
        let mut i = 0;
        while i < 6 {
            t[b'a' as usize + i] = 10 + i as u8;
            t[b'A' as usize + i] = 10 + i as u8;
            i += 1;
        }
        t
    };
    let b = if id.len() == 36 { id } else { id.trim() }.as_bytes();
    let b: &[u8; 36] = b.try_into().ok()?;
    // Branch-free: ids from logs are random hex, so per-digit branches mispredict.
    let mut v: u128 = 0;
    let mut bad = (b[8] ^ b'-') | (b[13] ^ b'-') | (b[18] ^ b'-') | (b[23] ^ b'-');
    for (i, &c) in b.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            continue;
        }
        let d = HEX[c as usize];
        bad |= d & 0x10;
        v = (v << 4) | u128::from(d & 0x0f);
    }
    (bad == 0).then_some(v)
}

fn key(id: &str) -> String {
    id.trim().to_ascii_lowercase()
}

fn str_field<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("").trim()
}

fn bool_field(v: &Value, k: &str) -> Option<bool> {
    match v.get(k) {
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Some(true),
            "false" | "no" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

impl Directory {
    pub fn new() -> Directory {
        Directory::default()
    }

    /// The index of a user id, adding an unlisted entry when it is new.
    pub fn intern_user(&mut self, id: &str) -> UserIdx {
        let k = key(id);
        if let Some(&i) = self.user_index.get(&k) {
            return i;
        }
        let i = self.users.len() as UserIdx;
        self.users.push(User {
            id: id.trim().to_owned(),
            ..User::default()
        });
        if let Some(g) = parse_guid(&k) {
            self.user_guid_index.insert(g, i);
        }
        self.user_sym_index.insert(crate::signin::Ustr::from(&k), i);
        self.user_index.insert(k, i);
        i
    }

    /// `user_by_id` for an interned id: the same answer, without parsing or hashing the id
    /// when it is spelled as the directory keys it (trimmed, lower-case).
    pub fn user_by_sym(&self, id: crate::signin::Ustr) -> Option<UserIdx> {
        match self.user_sym_index.get(&id) {
            Some(&i) => Some(i),
            None => self.user_by_id(id.as_str()),
        }
    }

    pub fn user_by_id(&self, id: &str) -> Option<UserIdx> {
        if let Some(g) = parse_guid(id) {
            return self.user_guid_index.get(&g).copied();
        }
        if let Some(&i) = self.user_index.get(id) {
            return Some(i);
        }
        // Keys are trimmed and lower-cased; only look again when that changes the id.
        if id
            .bytes()
            .any(|b| b.is_ascii_uppercase() || b.is_ascii_whitespace())
        {
            self.user_index.get(&key(id)).copied()
        } else {
            None
        }
    }

    /// A user by object id or user principal name.
    pub fn user_by_id_or_upn(&self, s: &str) -> Option<UserIdx> {
        self.user_by_id(s)
            .or_else(|| self.upn_index.get(&key(s)).copied())
    }

    pub fn user(&self, i: UserIdx) -> &User {
        &self.users[i as usize]
    }

    pub fn group_by_id(&self, id: &str) -> Option<GroupIdx> {
        self.group_index.get(&key(id)).copied()
    }

    pub fn group(&self, g: GroupIdx) -> &Group {
        &self.groups[g as usize]
    }

    pub fn location(&self, id: &str) -> Option<&NamedLocation> {
        self.location_index
            .get(&key(id))
            .map(|&i| &self.named_locations[i])
    }

    pub fn registration(&self, u: UserIdx) -> Option<Registration> {
        self.registration.get(u as usize).copied().flatten()
    }

    pub fn roles_of(&self, u: UserIdx) -> &[String] {
        self.user_roles.get(&u).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Adds users (Graph `user` objects).
    pub fn add_users(&mut self, file: &Path, records: Vec<source::Record>) {
        self.provided.users = true;
        for r in records {
            let id = str_field(&r.value, "id");
            if id.is_empty() {
                self.problem(file, r.index, "user without `id`".into());
                continue;
            }
            let i = self.intern_user(id);
            let v = &r.value;
            let upn = str_field(v, "userPrincipalName").to_owned();
            if !upn.is_empty() {
                self.upn_index.insert(key(&upn), i);
            }
            let u = &mut self.users[i as usize];
            u.user_principal_name = upn;
            u.display_name = str_field(v, "displayName").to_owned();
            u.user_type = crate::signin::lower_sym(str_field(v, "userType"));
            u.account_enabled = bool_field(v, "accountEnabled");
            u.creation_type = str_field(v, "creationType").to_owned();
            u.external_user_state = str_field(v, "externalUserState").to_owned();
            u.on_premises_sync_enabled = bool_field(v, "onPremisesSyncEnabled");
            u.listed = true;
            u.invited = !u.external_user_state.is_empty()
                || u.creation_type.eq_ignore_ascii_case("Invitation")
                || u.user_principal_name.contains("#EXT#");
        }
    }

    fn intern_group(&mut self, id: &str) -> GroupIdx {
        let k = key(id);
        if let Some(&g) = self.group_index.get(&k) {
            return g;
        }
        let g = self.groups.len() as GroupIdx;
        self.groups.push(Group {
            id: id.trim().to_owned(),
            ..Group::default()
        });
        self.group_index.insert(k, g);
        g
    }

    /// Adds groups with their direct `members` (or `transitiveMembers`, which are flattened
    /// already). A member's kind comes from its `@odata.type`; without one, an id that is a group
    /// of this file is a group and anything else a user.
    pub fn add_groups(&mut self, file: &Path, records: Vec<source::Record>) {
        self.provided.groups = true;
        // First pass: every group id, so members can be told apart.
        for r in &records {
            let id = str_field(&r.value, "id");
            if !id.is_empty() {
                let g = self.intern_group(id);
                let name = str_field(&r.value, "displayName").to_owned();
                self.groups[g as usize].display_name = name;
            }
        }
        for r in records {
            let id = str_field(&r.value, "id");
            if id.is_empty() {
                self.problem(file, r.index, "group without `id`".into());
                continue;
            }
            let g = self.intern_group(id);
            for field in ["members", "transitiveMembers"] {
                let Some(members) = r.value.get(field).and_then(Value::as_array) else {
                    continue;
                };
                self.groups[g as usize].members_listed = true;
                for (mi, m) in members.iter().enumerate() {
                    let (mid, ty) = match m {
                        Value::String(s) => (s.trim().to_owned(), String::new()),
                        Value::Object(_) => (
                            str_field(m, "id").to_owned(),
                            str_field(m, "@odata.type").to_ascii_lowercase(),
                        ),
                        _ => (String::new(), String::new()),
                    };
                    if mid.is_empty() {
                        self.problem(
                            file,
                            r.index,
                            format!("group `{id}` {field}[{mi}] has no `id`"),
                        );
                        continue;
                    }
                    let is_group = if ty.is_empty() {
                        self.group_by_id(&mid).is_some()
                    } else {
                        ty.ends_with(".group")
                    };
                    if is_group {
                        let sub = self.intern_group(&mid);
                        self.groups[g as usize].member_groups.push(sub);
                    } else if ty.is_empty() || ty.ends_with(".user") {
                        let u = self.intern_user(&mid);
                        if let Some(upn) = m.get("userPrincipalName").and_then(Value::as_str) {
                            self.upn_index.insert(key(upn), u);
                            if self.users[u as usize].user_principal_name.is_empty() {
                                self.users[u as usize].user_principal_name = upn.to_owned();
                            }
                        }
                        self.groups[g as usize].member_users.push(u);
                    }
                    // Devices, service principals, contacts: not subjects of user policies.
                }
            }
        }
    }

    /// Adds role assignments; only those at directory scope `/` count (design.md).
    pub fn add_role_assignments(&mut self, file: &Path, records: Vec<source::Record>) {
        self.provided.roles = true;
        for r in records {
            let principal = str_field(&r.value, "principalId");
            let role = str_field(&r.value, "roleDefinitionId");
            if principal.is_empty() || role.is_empty() {
                self.problem(
                    file,
                    r.index,
                    "role assignment without `principalId` or `roleDefinitionId`".into(),
                );
                continue;
            }
            let scope = str_field(&r.value, "directoryScopeId");
            if !scope.is_empty() && scope != "/" {
                continue;
            }
            self.role_assignments.push((key(principal), key(role)));
        }
    }

    /// Adds `userRegistrationDetails` records (Graph JSON, or CSV rows turned into objects).
    pub fn add_registration(&mut self, file: &Path, records: Vec<source::Record>) {
        self.provided.registration = true;
        for r in records {
            let v = &r.value;
            let id = str_field(v, "id");
            let upn = str_field(v, "userPrincipalName");
            let u = if !id.is_empty() {
                self.intern_user(id)
            } else if let Some(u) = self.user_by_id_or_upn(upn) {
                u
            } else {
                self.problem(
                    file,
                    r.index,
                    format!("registration record for `{upn}` matches no user id"),
                );
                continue;
            };
            let registered = bool_field(v, "isMfaRegistered");
            let capable = bool_field(v, "isMfaCapable");
            let (registered, capable) = match (registered, capable) {
                (Some(r), Some(c)) => (r, c),
                (Some(r), None) => (r, r),
                (None, Some(c)) => (c, c),
                (None, None) => {
                    self.problem(
                        file,
                        r.index,
                        "registration record without `isMfaRegistered` or `isMfaCapable`".into(),
                    );
                    continue;
                }
            };
            let slot = u as usize;
            if self.registration.len() <= slot {
                self.registration.resize(slot + 1, None);
            }
            self.registration[slot] = Some(Registration {
                is_mfa_registered: registered,
                is_mfa_capable: capable,
            });
        }
    }

    /// Adds `riskyUser` records with their `history`.
    pub fn add_risky_users(&mut self, file: &Path, records: Vec<source::Record>) {
        self.provided.risk = true;
        for r in records {
            let v = &r.value;
            let id = str_field(v, "id");
            if id.is_empty() {
                self.problem(file, r.index, "risky user without `id`".into());
                continue;
            }
            let u = self.intern_user(id);
            let mut events = Vec::new();
            let mut push = |item: &Value| {
                let at = source::parse_timestamp(str_field(item, "riskLastUpdatedDateTime"));
                let level = RiskLevel::parse(str_field(item, "riskLevel"));
                if let (Some(at), Some(level)) = (at, level) {
                    events.push(RiskEvent {
                        at,
                        level,
                        state: str_field(item, "riskState").to_owned(),
                    });
                }
            };
            push(v);
            for item in v
                .get("history")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                push(item);
            }
            events.sort_by_key(|e| e.at);
            events.dedup();
            self.risk.entry(u).or_default().extend(events);
        }
    }

    /// The user's risk level at a moment, from `riskyUsers` and its history. `None` when the
    /// inputs cannot tell (no risk data; or the only record postdates the moment).
    pub fn user_risk_at(&self, u: UserIdx, at: DateTime<Utc>) -> Option<RiskLevel> {
        if !self.provided.risk {
            return None;
        }
        let Some(events) = self.risk.get(&u) else {
            // Not a risky user in the export: no risk.
            return Some(RiskLevel::None);
        };
        let i = events.partition_point(|e| e.at <= at);
        if i == 0 {
            // Every record is later than the sign-in. With history, the first record is the
            // first detection, so before it the user had none; a lone current record says
            // nothing about the past.
            return if events.len() > 1 {
                Some(RiskLevel::None)
            } else {
                None
            };
        }
        let e = &events[i - 1];
        let cleared = ["remediated", "dismissed", "confirmedsafe", "none"];
        if cleared.contains(&e.state.to_ascii_lowercase().as_str()) {
            Some(RiskLevel::None)
        } else {
            Some(e.level)
        }
    }

    pub fn add_named_locations(&mut self, file: &Path, records: Vec<source::Record>) {
        self.provided.named_locations = true;
        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("")
            .to_owned();
        let single = records.len() == 1;
        for r in records {
            let fallback = if single {
                stem.clone()
            } else {
                format!("{stem}#{}", r.index)
            };
            match NamedLocation::from_json(&r.value, &fallback) {
                Ok(loc) => {
                    self.location_index
                        .insert(key(&loc.id), self.named_locations.len());
                    self.named_locations.push(loc);
                }
                Err(message) => self.problem(file, r.index, message),
            }
        }
    }

    fn problem(&mut self, file: &Path, record: usize, message: String) {
        self.problems.push(DirectoryProblem {
            file: file.to_path_buf(),
            record,
            message,
        });
    }

    /// Resolves role assignments to users (through role-assignable groups too). Call once after
    /// loading.
    pub fn finish(&mut self) {
        let mut user_roles: FastMap<UserIdx, Vec<String>> = FastMap::default();
        let assignments = std::mem::take(&mut self.role_assignments);
        for (principal, role) in &assignments {
            let users: Vec<UserIdx> = if let Some(g) = self.group_by_id(principal) {
                self.transitive_users(g).into_iter().collect()
            } else {
                vec![self.intern_user(principal)]
            };
            for u in users {
                let roles = user_roles.entry(u).or_default();
                if !roles.contains(role) {
                    roles.push(role.clone());
                }
            }
        }
        self.role_assignments = assignments;
        self.user_roles = user_roles;
    }

    /// Every user in a group, through nested groups; cycles are tolerated.
    pub fn transitive_users(&self, g: GroupIdx) -> HashSet<UserIdx> {
        let mut users = HashSet::new();
        let mut seen = HashSet::new();
        let mut queue = VecDeque::from([g]);
        while let Some(x) = queue.pop_front() {
            if !seen.insert(x) {
                continue;
            }
            let group = &self.groups[x as usize];
            users.extend(group.member_users.iter().copied());
            queue.extend(group.member_groups.iter().copied());
        }
        users
    }

    /// Whether `g` and every group nested in it carry their membership: only then does an
    /// empty [`Directory::transitive_users`] mean the group has no members.
    pub fn membership_known(&self, g: GroupIdx) -> bool {
        let mut seen = HashSet::new();
        let mut queue = VecDeque::from([g]);
        while let Some(x) = queue.pop_front() {
            if !seen.insert(x) {
                continue;
            }
            let group = &self.groups[x as usize];
            if !group.members_listed {
                return false;
            }
            queue.extend(group.member_groups.iter().copied());
        }
        true
    }

    /// Users holding role template `role` (lower-cased id) actively at directory scope,
    /// directly or through a role-assignable group.
    pub fn role_holders(&self, role: &str) -> Vec<UserIdx> {
        let mut out: Vec<UserIdx> = self
            .user_roles
            .iter()
            .filter(|(_, roles)| roles.iter().any(|r| r == role))
            .map(|(u, _)| *u)
            .collect();
        out.sort_unstable();
        out
    }

    /// The chain of groups by which a user is in `g`: `[g]` for a direct member,
    /// `[g, nested, …]` otherwise; `None` when not a member. Shortest chain first.
    pub fn membership_path(&self, u: UserIdx, g: GroupIdx) -> Option<Vec<GroupIdx>> {
        let mut parent: HashMap<GroupIdx, GroupIdx> = HashMap::new();
        let mut queue = VecDeque::from([g]);
        let mut seen = HashSet::from([g]);
        while let Some(x) = queue.pop_front() {
            let group = &self.groups[x as usize];
            if group.member_users.contains(&u) {
                let mut path = vec![x];
                let mut cur = x;
                while let Some(&p) = parent.get(&cur) {
                    path.push(p);
                    cur = p;
                }
                path.reverse();
                return Some(path);
            }
            for &sub in &group.member_groups {
                if seen.insert(sub) {
                    parent.insert(sub, x);
                    queue.push_back(sub);
                }
            }
        }
        None
    }

    /// Loads every directory file the tenant folder has (design.md's table). Missing files are
    /// simply not provided; unreadable ones are errors.
    pub fn load_tenant(dir: &Path) -> Result<Directory, SourceError> {
        let mut d = Directory::new();
        type Adder = fn(&mut Directory, &Path, Vec<source::Record>);
        let files: [(&str, Adder); 6] = [
            ("users", Directory::add_users),
            ("groups", Directory::add_groups),
            ("roleAssignments", Directory::add_role_assignments),
            ("userRegistrationDetails", Directory::add_registration),
            ("riskyUsers", Directory::add_risky_users),
            ("namedLocations", Directory::add_named_locations),
        ];
        for (stem, add) in files {
            for path in tenant_files(dir, stem) {
                let records = if is_csv(&path) {
                    csv_records(&path)?
                } else {
                    source::read_json_records(&path)?
                };
                add(&mut d, &path, records);
            }
        }
        d.finish();
        Ok(d)
    }
}

fn is_csv(p: &Path) -> bool {
    let name = p.to_string_lossy().to_ascii_lowercase();
    name.ends_with(".csv") || name.ends_with(".csv.gz")
}

/// `<stem>.json`, `.json.gz`, `.ndjson`, `.csv` (registration details) in the tenant folder, and
/// every file of a `<stem>/` folder.
pub fn tenant_files(dir: &Path, stem: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for ext in ["json", "json.gz", "ndjson", "ndjson.gz", "csv", "csv.gz"] {
        let p = dir.join(format!("{stem}.{ext}"));
        if p.is_file() {
            out.push(p);
        }
    }
    let folder = dir.join(stem);
    if folder.is_dir() {
        if let Ok(files) = source::files_under(&folder) {
            out.extend(files);
        }
    }
    out
}

/// Reads a CSV export (the portal's user registration details download) into JSON objects whose
/// keys are Graph's names, matched loosely: `User principal name`, `userPrincipalName` and
/// `UPN` all become `userPrincipalName`.
pub fn csv_records(path: &Path) -> Result<Vec<source::Record>, SourceError> {
    let text = source::read_text(path)?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| SourceError::Json {
            path: path.to_path_buf(),
            message: format!("CSV header: {e}"),
            hint: String::new(),
        })?
        .iter()
        .map(graph_name_for_csv_header)
        .collect();
    let mut out = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let row = row.map_err(|e| SourceError::Json {
            path: path.to_path_buf(),
            message: format!("CSV row {}: {e}", i + 2),
            hint: String::new(),
        })?;
        let mut obj = serde_json::Map::new();
        for (h, cell) in headers.iter().zip(row.iter()) {
            if !h.is_empty() {
                obj.insert(h.clone(), Value::String(cell.to_owned()));
            }
        }
        out.push(source::Record {
            index: i + 2,
            value: Value::Object(obj),
        });
    }
    Ok(out)
}

fn graph_name_for_csv_header(h: &str) -> String {
    let norm: String = h
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    match norm.as_str() {
        "id" | "userid" | "objectid" => "id",
        "userprincipalname" | "upn" | "username" => "userPrincipalName",
        "userdisplayname" | "displayname" | "name" => "userDisplayName",
        "ismfaregistered" | "mfaregistered" | "multifactorauthenticationregistered" => {
            "isMfaRegistered"
        }
        "ismfacapable" | "mfacapable" | "multifactorauthenticationcapable" => "isMfaCapable",
        "methodsregistered" => "methodsRegistered",
        "usertype" => "userType",
        _ => "",
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_parsing_and_lookup_by_either_form() {
        assert_eq!(
            parse_guid(" 62E90394-69f5-4237-9190-012177145e10 "),
            Some(0x62e90394_69f5_4237_9190_012177145e10)
        );
        assert_eq!(parse_guid("62e90394-69f5-4237-9190-012177145e1"), None);
        assert_eq!(parse_guid("62e90394x69f5-4237-9190-012177145e10"), None);
        assert_eq!(parse_guid("g2e90394-69f5-4237-9190-012177145e10"), None);
        let mut d = Directory::new();
        let a = d.intern_user("62E90394-69F5-4237-9190-012177145E10");
        let b = d.intern_user("u1");
        assert_eq!(
            d.user_by_id("62e90394-69f5-4237-9190-012177145e10"),
            Some(a)
        );
        assert_eq!(d.user_by_id("U1"), Some(b));
        assert_eq!(d.user_by_id("00000000-0000-0000-0000-000000000000"), None);
    }
    use serde_json::json;

    fn recs(v: Value) -> Vec<source::Record> {
        source::unwrap_document(source::normalize_keys(v))
            .into_iter()
            .enumerate()
            .map(|(i, value)| source::Record {
                index: i + 1,
                value,
            })
            .collect()
    }

    #[test]
    fn nested_groups_with_a_cycle_resolve_transitively() {
        let mut d = Directory::new();
        d.add_groups(
            Path::new("groups.json"),
            recs(json!([
                {"id": "G1", "displayName": "Break-glass", "members": [{"@odata.type": "#microsoft.graph.group", "id": "G2"}]},
                {"id": "G2", "displayName": "Admins-Emergency", "members": [{"@odata.type": "#microsoft.graph.user", "id": "U1"}, "G1"]}
            ])),
        );
        d.finish();
        let u = d.user_by_id("u1").unwrap();
        let g1 = d.group_by_id("G1").unwrap();
        let g2 = d.group_by_id("g2").unwrap();
        assert_eq!(d.transitive_users(g1), HashSet::from([u]));
        assert_eq!(d.membership_path(u, g1), Some(vec![g1, g2]));
        assert_eq!(d.membership_path(u, g2), Some(vec![g2]));
    }

    #[test]
    fn roles_only_at_directory_scope_and_through_groups() {
        let mut d = Directory::new();
        d.add_groups(
            Path::new("g"),
            recs(json!([{"id": "RG", "members": [{"id": "U2"}]}])),
        );
        d.add_role_assignments(
            Path::new("r"),
            recs(json!({"value": [
                {"principalId": "U1", "roleDefinitionId": "62e90394-69f5-4237-9190-012177145e10", "directoryScopeId": "/"},
                {"principalId": "U3", "roleDefinitionId": "62e90394-69f5-4237-9190-012177145e10", "directoryScopeId": "/administrativeUnits/x"},
                {"principalId": "RG", "roleDefinitionId": "194ae4cb-b126-40b2-bd5b-6091b380977d", "directoryScopeId": "/"}
            ]})),
        );
        d.finish();
        let u1 = d.user_by_id("U1").unwrap();
        assert_eq!(d.roles_of(u1), ["62e90394-69f5-4237-9190-012177145e10"]);
        assert!(d.user_by_id("U3").is_none_or(|u| d.roles_of(u).is_empty()));
        let u2 = d.user_by_id("U2").unwrap();
        assert_eq!(d.roles_of(u2), ["194ae4cb-b126-40b2-bd5b-6091b380977d"]);
    }

    #[test]
    fn user_risk_history_gives_the_level_at_sign_in_time() {
        let mut d = Directory::new();
        d.add_risky_users(
            Path::new("riskyUsers.json"),
            recs(json!([{"id": "U1", "riskLevel": "none", "riskState": "remediated",
              "riskLastUpdatedDateTime": "2026-10-10T00:00:00Z",
              "history": [{"riskLevel": "high", "riskState": "atRisk", "riskLastUpdatedDateTime": "2026-10-05T00:00:00Z"}]}])),
        );
        let u = d.user_by_id("U1").unwrap();
        let t = |s: &str| source::parse_timestamp(s).unwrap();
        assert_eq!(
            d.user_risk_at(u, t("2026-10-01T00:00:00Z")),
            Some(RiskLevel::None)
        );
        assert_eq!(
            d.user_risk_at(u, t("2026-10-06T00:00:00Z")),
            Some(RiskLevel::High)
        );
        assert_eq!(
            d.user_risk_at(u, t("2026-10-11T00:00:00Z")),
            Some(RiskLevel::None)
        );
        let other = d.intern_user("U9");
        assert_eq!(
            d.user_risk_at(other, t("2026-10-06T00:00:00Z")),
            Some(RiskLevel::None)
        );
    }

    #[test]
    fn registration_from_portal_style_csv_headers() {
        let dir = std::env::temp_dir().join(format!("ca-replay-reg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("userRegistrationDetails.csv");
        std::fs::write(
            &p,
            "User principal name,User display name,MFA capable,MFA registered\na@x.com,A,True,True\nb@x.com,B,False,False\n",
        )
        .unwrap();
        let mut d = Directory::new();
        d.add_users(
            Path::new("u"),
            recs(json!([{"id": "1", "userPrincipalName": "a@x.com"}, {"id": "2", "userPrincipalName": "B@x.com"}])),
        );
        d.add_registration(&p, csv_records(&p).unwrap());
        assert!(d.registration(0).unwrap().is_mfa_capable);
        assert!(!d.registration(1).unwrap().is_mfa_registered);
        std::fs::remove_dir_all(&dir).ok();
    }
}

#[cfg(test)]
mod guid_tests {
    use super::parse_guid;

    #[test]
    fn parses_guids_and_refuses_the_rest() {
        assert_eq!(parse_guid("00000000-0000-0000-0000-00000000000F"), Some(15));
        assert_eq!(
            parse_guid(" 62e90394-69f5-4237-9190-012177145e10 "),
            parse_guid("62E90394-69F5-4237-9190-012177145E10")
        );
        assert_eq!(
            parse_guid("62e90394-69f5-4237-9190-012177145e10"),
            Some(0x62e90394_69f5_4237_9190_012177145e10)
        );
        for bad in [
            "",
            "62e90394-69f5-4237-9190-012177145e1",
            "62e90394-69f5-4237-9190-012177145e1g",
            "62e90394x69f5-4237-9190-012177145e10",
            "62e90394-69f5-4237-9190-012177145e10a",
            "é2e90394-69f5-4237-9190-012177145e1",
        ] {
            assert_eq!(parse_guid(bad), None, "{bad}");
        }
    }
}
