//! Compiled policies: what the engine evaluates. Strings became enums and bitmasks, ids became
//! directory indices or symbols of the policy set, device-filter rules were parsed. Every list
//! entry keeps its position in the Graph list, so a trace can name `excludeGroups[2]`.

use crate::directory::{GroupIdx, UserIdx};
use crate::domain::{ClientAppType, GuestKind, Platform, PolicyState, RiskLevel, TransferMethod};
use crate::policy::device_filter::DeviceFilterRule;

/// A small set of enum members as a bitmask.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mask(pub u32);

impl Mask {
    pub fn with(mut self, bit: usize) -> Mask {
        self.0 |= 1 << bit;
        self
    }
    pub fn has(self, bit: usize) -> bool {
        self.0 & (1 << bit) != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// Where a policy came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: std::path::PathBuf,
    /// JSON pointer of the policy object inside its file ("" for a whole-file object).
    pub pointer: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    ConditionalAccess,
    /// Legacy Identity Protection policies (design.md `identityProtection.json`).
    LegacySignInRisk,
    LegacyUserRisk,
    LegacyMfaRegistration,
}

/// A user or group reference of a policy. Groups are symbols of the policy set
/// (`PolicySet::groups`) so that per-user membership is a bit test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    All,
    /// The legacy `GuestsOrExternalUsers` keyword of `includeUsers` / `excludeUsers`.
    GuestsOrExternal,
    User(UserIdx),
    /// A group present in the directory, by symbol.
    Group(u32),
    /// A group id the directory does not have (or no groups were provided).
    MissingGroup,
    /// A role template id, by symbol.
    Role(u32),
    External(ExternalUsers),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalUsers {
    pub kinds: Mask,
    /// `None` = all external tenants; otherwise the enumerated tenant ids (lower-case).
    pub tenants: Option<Vec<String>>,
}

impl ExternalUsers {
    pub fn has(&self, k: GuestKind) -> bool {
        self.kinds.has(k as usize)
    }
}

/// One entry of an include or exclude list and where it stands in the Graph JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<T> {
    /// JSON pointer of the entry (e.g. `/conditions/users/excludeGroups/2`).
    pub pointer: String,
    /// The raw value as written (an id, a keyword).
    pub raw: String,
    pub target: T,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsersCondition {
    pub include: Vec<Entry<UserRef>>,
    pub exclude: Vec<Entry<UserRef>>,
    /// `includeUsers: ["None"]` with nothing else included.
    pub include_none: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServicePrincipalRef {
    AllInTenant,
    Id(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkloadCondition {
    pub include: Vec<Entry<ServicePrincipalRef>>,
    pub exclude: Vec<Entry<ServicePrincipalRef>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bundle {
    Office365,
    MicrosoftAdminPortals,
}

impl Bundle {
    pub fn as_str(self) -> &'static str {
        match self {
            Bundle::Office365 => "Office365",
            Bundle::MicrosoftAdminPortals => "MicrosoftAdminPortals",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppRef {
    All,
    /// A lower-cased application (client) id, interned: the engine compares it with the
    /// sign-in's (interned, lower-cased) resource by pointer.
    Id(crate::signin::Ustr),
    Bundle(Bundle),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserAction {
    RegisterSecurityInfo,
    RegisterDevice,
}

impl UserAction {
    pub fn urn(self) -> &'static str {
        match self {
            UserAction::RegisterSecurityInfo => "urn:user:registersecurityinfo",
            UserAction::RegisterDevice => "urn:user:registerdevice",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppsCondition {
    pub include: Vec<Entry<AppRef>>,
    pub exclude: Vec<Entry<AppRef>>,
    pub user_actions: Vec<Entry<UserAction>>,
    /// Authentication context class references (`c1`…`c25`), lower-cased.
    pub auth_contexts: Vec<Entry<String>>,
}

impl AppsCondition {
    pub fn targets_nothing(&self) -> bool {
        self.include.is_empty() && self.user_actions.is_empty() && self.auth_contexts.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformsCondition {
    pub include_all: bool,
    pub include: Mask,
    pub exclude: Mask,
}

impl PlatformsCondition {
    pub fn includes(&self, p: Platform) -> bool {
        self.include_all || self.include.has(p as usize)
    }
    pub fn excludes(&self, p: Platform) -> bool {
        self.exclude.has(p as usize)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocationRef {
    All,
    AllTrusted,
    /// Index into `Directory::named_locations`.
    Named(usize),
    /// `00000000-0000-0000-0000-000000000000`: the legacy MFA trusted IPs (entra-semantics.md
    /// §1.8 marks this [U]; ca-replay treats it so when `[locations] mfa_trusted_ips` is set).
    MfaTrustedIps,
    /// An id the named locations do not have.
    Missing,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocationsCondition {
    pub include: Vec<Entry<LocationRef>>,
    pub exclude: Vec<Entry<LocationRef>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterMode {
    Include,
    Exclude,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeviceFilter {
    pub mode: FilterMode,
    pub rule: DeviceFilterRule,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    Mfa,
    /// Authentication strength: treated as MFA, its id and name kept for the trace.
    AuthenticationStrength {
        id: String,
        name: String,
    },
    CompliantDevice,
    DomainJoinedDevice,
    ApprovedApplication,
    CompliantApplication,
    PasswordChange,
    RiskRemediation,
    TermsOfUse(String),
    CustomControl(String),
}

impl Control {
    pub fn label(&self) -> String {
        match self {
            Control::Mfa => "mfa".into(),
            Control::AuthenticationStrength { id, name } if name.is_empty() => {
                format!("authenticationStrength `{id}`")
            }
            Control::AuthenticationStrength { id, name } => {
                format!("authenticationStrength `{name}` ({id})")
            }
            Control::CompliantDevice => "compliantDevice".into(),
            Control::DomainJoinedDevice => "domainJoinedDevice".into(),
            Control::ApprovedApplication => "approvedApplication".into(),
            Control::CompliantApplication => "compliantApplication".into(),
            Control::PasswordChange => "passwordChange".into(),
            Control::RiskRemediation => "riskRemediation".into(),
            Control::TermsOfUse(id) => format!("termsOfUse `{id}`"),
            Control::CustomControl(id) => format!("custom control `{id}`"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Operator {
    And,
    #[default]
    Or,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    pub block: bool,
    pub operator: Operator,
    pub controls: Vec<Control>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Session {
    /// Sign-in frequency `everyTime`: an extra prompt on interactive sign-ins.
    pub sign_in_frequency_every_time: bool,
    /// The session controls the policy sets, by Graph name (reported, not decided).
    pub controls: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CompiledPolicy {
    /// Graph `id`, or the file name without extension for a hand-written candidate.
    pub id: String,
    pub display_name: String,
    pub state: PolicyState,
    pub kind: PolicyKind,
    pub origin: Origin,
    pub users: Option<UsersCondition>,
    pub workload: Option<WorkloadCondition>,
    pub apps: AppsCondition,
    /// `None`: not configured, or `all`.
    pub client_app_types: Option<Vec<ClientAppType>>,
    pub platforms: Option<PlatformsCondition>,
    pub locations: Option<LocationsCondition>,
    pub sign_in_risk: Option<Mask>,
    pub user_risk: Option<Mask>,
    pub service_principal_risk: Option<Mask>,
    pub insider_risk: Option<Mask>,
    pub device_filter: Option<DeviceFilter>,
    pub transfer_methods: Option<Mask>,
    pub grant: Grant,
    pub session: Session,
    /// For the legacy MFA registration policy: when enforcement starts.
    pub registration_start: Option<chrono::DateTime<chrono::Utc>>,
    /// Findings accepted with `--allow-unsupported`: carried into every report.
    pub accepted_unsupported: Vec<String>,
}

impl CompiledPolicy {
    /// A risk policy: an unregistered user is blocked (AADSTS53004) instead of being sent to
    /// registration (entra-semantics.md §2.4).
    pub fn is_risk_policy(&self) -> bool {
        self.sign_in_risk.is_some()
            || self.user_risk.is_some()
            || self
                .grant
                .controls
                .iter()
                .any(|c| matches!(c, Control::PasswordChange | Control::RiskRemediation))
    }

    /// The grant asks for MFA: `mfa` or an authentication strength among its controls (with
    /// `OR`, another control may be met instead; design.md counts both forms as MFA).
    pub fn requires_mfa(&self) -> bool {
        self.grant
            .controls
            .iter()
            .any(|c| matches!(c, Control::Mfa | Control::AuthenticationStrength { .. }))
    }

    /// The policy protects what it applies to: it blocks, or it requires MFA (the coverage
    /// check's rule).
    pub fn protects(&self) -> bool {
        self.grant.block || self.requires_mfa()
    }

    pub fn risk_mask_has(mask: Mask, level: RiskLevel) -> bool {
        mask.has(level as usize)
    }

    pub fn transfer_has(mask: Mask, t: TransferMethod) -> bool {
        mask.has(t as usize)
    }

    /// Whether the policy's user condition reads group membership or roles.
    pub fn group_refs(&self) -> impl Iterator<Item = &Entry<UserRef>> {
        self.users
            .iter()
            .flat_map(|u| u.include.iter().chain(u.exclude.iter()))
    }
}

/// The per-user facts the user condition reads, computed once per user for a policy set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberOf {
    /// Bit i set: the user is (transitively) in `PolicySet::groups[i]`. Inline up to 128
    /// groups, so the engine's look-up reads no second cache line.
    pub groups: smallvec::SmallVec<[u64; 2]>,
    /// Bit i set: the user actively holds `PolicySet::roles[i]`.
    pub roles: smallvec::SmallVec<[u64; 2]>,
    /// The user's `users.json` record as the external-user classification reads it; `None`
    /// when the user is not listed there. Kept here, beside the bits the users condition reads,
    /// so a sign-in's user costs one cache line, not a second read of the directory's record.
    pub listed: Option<ListedUser>,
}

/// What the external-user classification reads of a listed user (entra-semantics.md §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedUser {
    /// `member` / `guest`, lower-cased; empty when unknown.
    pub user_type: crate::signin::Ustr,
    pub invited: bool,
}

impl ListedUser {
    /// The user's record as the classification reads it; `None` when not in `users.json`.
    pub fn of(user: &crate::directory::User) -> Option<ListedUser> {
        user.listed.then_some(ListedUser {
            user_type: user.user_type,
            invited: user.invited,
        })
    }
}

impl MemberOf {
    pub fn add_group(&mut self, sym: u32) {
        set_word_bit(&mut self.groups, sym);
    }
    pub fn add_role(&mut self, sym: u32) {
        set_word_bit(&mut self.roles, sym);
    }
    pub fn in_group(&self, sym: u32) -> bool {
        bit(&self.groups, sym)
    }
    pub fn has_role(&self, sym: u32) -> bool {
        bit(&self.roles, sym)
    }
}

pub fn bit(words: &[u64], i: u32) -> bool {
    words
        .get((i / 64) as usize)
        .is_some_and(|w| w & (1 << (i % 64)) != 0)
}

fn set_word_bit(words: &mut smallvec::SmallVec<[u64; 2]>, i: u32) {
    let w = (i / 64) as usize;
    if words.len() <= w {
        words.resize(w + 1, 0);
    }
    words[w] |= 1 << (i % 64);
}

pub fn set_bit(words: &mut Vec<u64>, i: u32) {
    let w = (i / 64) as usize;
    if words.len() <= w {
        words.resize(w + 1, 0);
    }
    words[w] |= 1 << (i % 64);
}

/// Symbols the policies of one set share.
#[derive(Debug, Clone, Default)]
pub struct Symbols {
    pub groups: Vec<GroupIdx>,
    /// Lower-cased role template ids.
    pub roles: Vec<String>,
}

impl Symbols {
    pub fn group(&mut self, g: GroupIdx) -> u32 {
        match self.groups.iter().position(|&x| x == g) {
            Some(i) => i as u32,
            None => {
                self.groups.push(g);
                (self.groups.len() - 1) as u32
            }
        }
    }
    pub fn role(&mut self, r: &str) -> u32 {
        let r = r.to_ascii_lowercase();
        match self.roles.iter().position(|x| *x == r) {
            Some(i) => i as u32,
            None => {
                self.roles.push(r);
                (self.roles.len() - 1) as u32
            }
        }
    }
}
