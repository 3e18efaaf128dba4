//! The engine: pure evaluation of one compiled policy against one sign-in, and the combination
//! of evaluations across a policy set. No IO, no clock, no errors: everything that can fail was
//! rejected while reading and compiling.
//!
//! In: a `PolicySet`, the `Directory`, a normalized `SignIn` (prepared once into `Facts`).
//! Out: an `Evaluation` per policy (applies, impact, Entra's result word, a fixed-size trace) and
//! an `Outcome` per policy set. Rules cite entra-semantics.md §2; choices cite design.md.

pub mod apps;
pub mod explain;
pub mod registration;

use std::collections::HashMap;

use crate::directory::{Directory, LocationKind, Registration, UserIdx};
use crate::domain::{
    ClientApp, ClientAppType, GuestKind, Impact, Platform, PolicyState, RiskLevel,
};
use crate::policy::device_filter::{DeviceProperties, Property, PropertyValue};
use crate::policy::*;
use crate::signin::{conditions, SignIn, Ustr};
pub use apps::{AppTables, Membership};

/// Everything outside the sign-in that evaluation reads.
pub struct Env<'a> {
    pub dir: &'a Directory,
    pub set: &'a PolicySet,
    pub apps: &'a AppTables,
    /// Per user id (lower-cased): when the MFA registration policy's 14-day clock started.
    pub registration_clocks: &'a HashMap<String, i64>,
}

/// The conditions of a policy, in trace order (the What-If API's `analysisReasons` classes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Condition {
    Users,
    WorkloadIdentities,
    Application,
    ClientApps,
    DevicePlatform,
    Location,
    SignInRisk,
    UserRisk,
    ServicePrincipalRisk,
    InsiderRisk,
    Devices,
    AuthenticationFlow,
    /// The legacy MFA registration policy: interactive sign-ins after its start only.
    Time,
}

pub const CONDITIONS: usize = 13;

impl Condition {
    pub const ALL: [Condition; CONDITIONS] = [
        Condition::Users,
        Condition::WorkloadIdentities,
        Condition::Application,
        Condition::ClientApps,
        Condition::DevicePlatform,
        Condition::Location,
        Condition::SignInRisk,
        Condition::UserRisk,
        Condition::ServicePrincipalRisk,
        Condition::InsiderRisk,
        Condition::Devices,
        Condition::AuthenticationFlow,
        Condition::Time,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Users => "users",
            Condition::WorkloadIdentities => "workloadIdentities",
            Condition::Application => "application",
            Condition::ClientApps => "clientApps",
            Condition::DevicePlatform => "devicePlatform",
            Condition::Location => "location",
            Condition::SignInRisk => "signInRisk",
            Condition::UserRisk => "userRisk",
            Condition::ServicePrincipalRisk => "servicePrincipalRisk",
            Condition::InsiderRisk => "insiderRisk",
            Condition::Devices => "devices",
            Condition::AuthenticationFlow => "authenticationFlow",
            Condition::Time => "time",
        }
    }
}

/// What the inputs lack for a decision (the reason of an `indeterminate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Missing {
    GroupMembership,
    RoleAssignments,
    UserType,
    AppBundle,
    IpAddress,
    NamedLocation,
    NamedLocations,
    MfaTrustedIps,
    CompliantNetwork,
    GpsCountry,
    SignInRisk,
    SignInRiskHidden,
    UserRisk,
    UserRiskHidden,
    ServicePrincipalRisk,
    InsiderRisk,
    DeviceProperty,
    MfaRegistration,
    DeviceCompliance,
    DeviceJoinType,
    AppProtection,
    TermsOfUseAcceptance,
    CustomControlResult,
}

impl Missing {
    pub fn as_str(self) -> &'static str {
        match self {
            Missing::GroupMembership => "group membership not provided (groups.json)",
            Missing::RoleAssignments => "role assignments not provided (roleAssignments.json)",
            Missing::UserType => "user type / home tenant unknown",
            Missing::AppBundle => "resource may belong to the app bundle but is not in its table (add it under [app_bundles])",
            Missing::IpAddress => "sign-in has no IP address",
            Missing::NamedLocation => "named location not in namedLocations",
            Missing::NamedLocations => "named locations not provided (namedLocations.json): trusted ranges unknown",
            Missing::MfaTrustedIps => "MFA trusted IPs not configured ([locations] mfa_trusted_ips)",
            Missing::CompliantNetwork => "sign-in does not say whether it came through Global Secure Access",
            Missing::GpsCountry => "country by Authenticator GPS is not in logs",
            Missing::SignInRisk => "sign-in risk not in the log",
            Missing::SignInRiskHidden => "sign-in risk is `hidden` (not licensed)",
            Missing::UserRisk => "user risk at sign-in time unknown (riskyUsers.json with history)",
            Missing::UserRiskHidden => "user risk is `hidden` in riskyUsers (not licensed)",
            Missing::ServicePrincipalRisk => "service principal risk is not in logs",
            Missing::InsiderRisk => "insider risk is not in logs",
            Missing::DeviceProperty => "device filter reads a property sign-in logs do not carry",
            Missing::MfaRegistration => "MFA registration unknown (userRegistrationDetails)",
            Missing::DeviceCompliance => "device compliance not in the log",
            Missing::DeviceJoinType => "device join type not in the log",
            Missing::AppProtection => "app protection policy state is not in logs",
            Missing::TermsOfUseAcceptance => "terms of use acceptance is not in the inputs",
            Missing::CustomControlResult => "custom control result is not in the inputs",
        }
    }
}

/// The outcome of one condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Check {
    /// Not reached (an earlier condition decided) or not relevant to this policy kind.
    #[default]
    Skipped,
    NotConfigured,
    /// Included; the index of the include entry that matched, when list-based.
    Matched(Option<u16>),
    /// No include entry matched.
    NotMatched,
    /// Included, then excluded by this exclude entry (None: by the rule itself, e.g. a device
    /// filter in exclude mode).
    Excluded(Option<u16>),
    /// The sign-in's subject is the other kind: a workload sign-in against a user policy, or a
    /// user sign-in against a workload identity policy (§2.2).
    OtherSubject,
    Unknown(Missing),
}

impl Check {
    fn decides_no(self) -> bool {
        matches!(
            self,
            Check::NotMatched | Check::Excluded(_) | Check::OtherSubject
        )
    }
}

/// Why the grant stage reached its impact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Why {
    NotApplied,
    Indeterminate(Missing),
    NoGrantControls,
    BlockControl,
    LegacyClient,
    MfaAlreadySatisfied,
    MfaPrompt,
    MfaRegistration,
    /// Risk policy and the user is not registered: AADSTS53004.
    RiskUnregistered,
    NonInteractive,
    PasswordChange,
    DeviceCompliant,
    DeviceNotCompliant,
    DeviceCodeFlowNoDevice,
    HybridJoined,
    NotHybridJoined,
    ApprovedApp,
    NotApprovedApp,
    NotAppProtectionCapable,
    SignInFrequencyEveryTime,
    Registered,
    RegistrationGrace,
    RegistrationRequired,
}

impl Why {
    pub fn as_str(self) -> &'static str {
        match self {
            Why::NotApplied => "a condition did not match or an exclusion applied",
            Why::Indeterminate(m) => m.as_str(),
            Why::NoGrantControls => "applies; session controls only",
            Why::BlockControl => "block control",
            Why::LegacyClient => "legacy client cannot satisfy grant controls",
            Why::MfaAlreadySatisfied => "MFA already satisfied in the sign-in",
            Why::MfaPrompt => "registered user would be prompted for MFA",
            Why::MfaRegistration => {
                "user is not MFA-capable (no usable method registered): registration interrupt"
            }
            Why::RiskUnregistered => "risk policy and user not registered for MFA (AADSTS53004)",
            Why::NonInteractive => "non-interactive sign-in needs the user back interactively",
            Why::PasswordChange => "secure password change required (user risk)",
            Why::DeviceCompliant => "device is compliant",
            Why::DeviceNotCompliant => "device is not compliant (or not registered)",
            Why::DeviceCodeFlowNoDevice => "device code flow cannot satisfy device controls",
            Why::HybridJoined => "device is hybrid joined",
            Why::NotHybridJoined => "device is not hybrid joined",
            Why::ApprovedApp => "client is an approved app",
            Why::NotApprovedApp => "client is not an approved app on iOS/Android",
            Why::NotAppProtectionCapable => "client cannot carry an app protection policy",
            Why::SignInFrequencyEveryTime => "sign-in frequency every time: reauthentication",
            Why::Registered => "user is registered for MFA",
            Why::RegistrationGrace => "inside the 14-day registration grace: skippable",
            Why::RegistrationRequired => "14-day registration grace over: must register",
        }
    }
}

/// The verdict of one policy on one sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evaluation {
    /// Whether the policy applies; `None` when the inputs cannot tell.
    pub applies: Option<bool>,
    pub impact: Impact,
    pub why: Why,
    /// The grant control that decided, as an index into the policy's controls.
    pub control: Option<u8>,
    pub trace: [Check; CONDITIONS],
}

impl Evaluation {
    /// The verdict before any condition is checked: not applied, nothing traced.
    pub const NOT_APPLIED: Evaluation = Evaluation {
        applies: Some(false),
        impact: Impact::NotApplied,
        why: Why::NotApplied,
        control: None,
        trace: [Check::Skipped; CONDITIONS],
    };

    /// Entra's report-only word for the impact.
    pub fn result(&self) -> &'static str {
        self.impact.result_word()
    }
    /// The condition that decided a `not_applied`, or the first unknown one.
    pub fn deciding_condition(&self) -> Option<(Condition, Check)> {
        // One pass: the first that decides no, else the first unknown met on the way.
        let mut unknown = None;
        for (&cond, &check) in Condition::ALL.iter().zip(self.trace.iter()) {
            if check.decides_no() {
                return Some((cond, check));
            }
            if unknown.is_none() && matches!(check, Check::Unknown(_)) {
                unknown = Some((cond, check));
            }
        }
        unknown
    }
}

/// Whether the user is an external user, and of which kind (entra-semantics.md §2.2, [I]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum External {
    Internal,
    Kind(GuestKind),
    Unknown,
}

/// Per-sign-in facts, computed once and shared by every policy.
pub struct Facts<'a> {
    pub signin: &'a SignIn,
    pub user: Option<UserIdx>,
    pub member_of: Option<&'a MemberOf>,
    pub external: External,
    pub registration: Option<Registration>,
    pub user_risk: Option<RiskLevel>,
    /// MFA shown in this sign-in or carried from an earlier sign-in of the same session.
    pub mfa_done: bool,
    pub registration_clock: Option<i64>,
    /// Bundle membership of the sign-in's resource, computed on first use (a bundle look-up
    /// hashes the id; 30 policies would hash it 30 times).
    bundles: [std::cell::Cell<Option<Membership>>; 2],
    /// Named-location membership, computed on first use (several policies test the same
    /// locations): bit i of `locations_known` set means bit i of `locations_in` answers for
    /// `Directory::named_locations[i]` (i < 64; unknowns and later locations are not kept).
    locations_known: std::cell::Cell<u64>,
    locations_in: std::cell::Cell<u64>,
    /// `AllTrusted` for this sign-in, computed on first use.
    all_trusted: std::cell::Cell<Option<Tri>>,
    /// `Device::is_registered` for this sign-in, computed on first use (device filters ask it
    /// for every property they read, device controls once each).
    device_registered: std::cell::Cell<Option<bool>>,
    /// The policy set the memo below is for (`PolicySet::memo_slots`).
    set: &'a PolicySet,
    /// Users and applications conditions by memo slot, computed on first use: bit i of
    /// `*_known` set means slot i holds the check.
    users_known: std::cell::Cell<u32>,
    users_memo: [std::cell::Cell<Check>; MEMO_SLOTS],
    apps_known: std::cell::Cell<u32>,
    apps_memo: [std::cell::Cell<Check>; MEMO_SLOTS],
}

impl<'a> Facts<'a> {
    pub fn prepare(env: &Env<'a>, s: &'a SignIn, session_mfa: bool) -> Facts<'a> {
        let user = if s.user_id.is_empty() {
            None
        } else {
            env.dir.user_by_sym(s.user_id)
        };
        Facts::prepare_for(env, s, user, session_mfa)
    }

    /// [`Facts::prepare`] with the sign-in's user in the directory already looked up (what
    /// `Directory::user_by_id` answers for its user id; `None` without one).
    pub fn prepare_for(
        env: &Env<'a>,
        s: &'a SignIn,
        user: Option<UserIdx>,
        session_mfa: bool,
    ) -> Facts<'a> {
        debug_assert_eq!(
            user,
            (!s.user_id.is_empty())
                .then(|| env.dir.user_by_sym(s.user_id))
                .flatten()
        );
        let member_of = env.set.member_of(user);
        let external = match member_of {
            Some(m) => classify_listed(m.listed, s),
            None => classify_external(env.dir, user, s),
        };
        let registration = user.and_then(|u| env.dir.registration(u));
        let user_risk = user
            .and_then(|u| env.dir.user_risk_at(u, s.created_at))
            .or_else(|| {
                // Not a risky user at all, and risk data was provided: none.
                (env.dir.provided.risk && user.is_none()).then_some(RiskLevel::None)
            });
        let registration_clock = if env.registration_clocks.is_empty() {
            None
        } else if s.user_id.bytes().any(|b| b.is_ascii_uppercase()) {
            env.registration_clocks
                .get(&s.user_id.to_ascii_lowercase())
                .copied()
        } else {
            env.registration_clocks.get(s.user_id.as_str()).copied()
        };
        Facts {
            signin: s,
            user,
            member_of,
            external,
            registration,
            user_risk,
            mfa_done: s.mfa_satisfied || session_mfa,
            registration_clock,
            bundles: Default::default(),
            locations_known: Default::default(),
            locations_in: Default::default(),
            all_trusted: Default::default(),
            device_registered: Default::default(),
            set: env.set,
            users_known: Default::default(),
            users_memo: Default::default(),
            apps_known: Default::default(),
            apps_memo: Default::default(),
        }
    }

    /// Whether the sign-in's device is registered (`Device::is_registered`).
    fn device_registered(&self) -> bool {
        if let Some(b) = self.device_registered.get() {
            return b;
        }
        let b = self.signin.device.is_registered();
        self.device_registered.set(Some(b));
        b
    }

    fn bundle_membership(&self, apps: &AppTables, b: Bundle, target: Ustr) -> Membership {
        let s = self.signin;
        // `target` is one of `SignIn::targets()`: the resource id itself or an audience.
        if target != s.resource_id {
            // Other audiences have no display name; not cached (rare).
            return apps.membership(b, &target, "");
        }
        let slot = &self.bundles[b as usize];
        if let Some(m) = slot.get() {
            return m;
        }
        let m = apps.membership(b, &target, &s.resource_display_name);
        slot.set(Some(m));
        m
    }
}

/// The user of a sign-in as the users condition sees it: internal, a kind of external user, or
/// unknown (entra-semantics.md §2.2). Public for the coverage breakdown by user type.
pub fn classify_external(dir: &Directory, user: Option<UserIdx>, s: &SignIn) -> External {
    classify_listed(user.and_then(|u| ListedUser::of(dir.user(u))), s)
}

/// [`classify_external`] from the user's listed record (`None`: not listed or not found).
fn classify_listed(listed: Option<ListedUser>, s: &SignIn) -> External {
    let cross = s.cross_tenant_access_type.as_str();
    if cross.eq_ignore_ascii_case("b2bDirectConnect") {
        return External::Kind(GuestKind::B2bDirectConnectUser);
    }
    if cross.eq_ignore_ascii_case("serviceProvider") {
        return External::Kind(GuestKind::ServiceProvider);
    }
    let user_type = listed
        .map(|u| u.user_type.as_str())
        .filter(|t| !t.is_empty())
        .unwrap_or(s.user_type.as_str());
    #[derive(PartialEq)]
    enum Type {
        Guest,
        Member,
        Other,
    }
    let ty = if user_type.eq_ignore_ascii_case("guest") {
        Type::Guest
    } else if user_type.eq_ignore_ascii_case("member") {
        Type::Member
    } else {
        Type::Other
    };
    let home = s.home_tenant_id.as_str();
    let resource = s.resource_tenant_id.as_str();
    let foreign = match (home.is_empty(), resource.is_empty()) {
        // Interned: the same symbol is the same text (the usual case, no byte compare).
        (false, false) if s.home_tenant_id == s.resource_tenant_id => Some(false),
        (false, false) => Some(!home.eq_ignore_ascii_case(resource)),
        _ => None,
    };
    let invited = listed.is_some_and(|u| u.invited);
    match (ty, foreign) {
        (Type::Guest, Some(true)) => External::Kind(GuestKind::B2bCollaborationGuest),
        (Type::Guest, Some(false)) if invited => External::Kind(GuestKind::B2bCollaborationGuest),
        (Type::Guest, Some(false)) => External::Kind(GuestKind::InternalGuest),
        (Type::Guest, None) if invited => External::Kind(GuestKind::B2bCollaborationGuest),
        (Type::Guest, None) => External::Unknown,
        (Type::Member, Some(true)) => External::Kind(GuestKind::B2bCollaborationMember),
        (Type::Member, _) if cross.eq_ignore_ascii_case("b2bCollaboration") => {
            External::Kind(GuestKind::B2bCollaborationMember)
        }
        (Type::Member, _) => External::Internal,
        _ if foreign == Some(true) => External::Kind(GuestKind::OtherExternalUser),
        _ if foreign == Some(false) => External::Internal,
        _ => External::Unknown,
    }
}

/// Three-valued match of one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tri {
    Yes,
    No,
    Unknown(Missing),
}

/// Include-then-exclude over two entry lists. An exclusion that holds decides even when the
/// include side is unknown: exclude beats include (§2.1).
///
/// A macro, not a function taking a closure: the entry test is expanded in place, so the
/// per-entry match is not an out-of-line call (users, applications and locations are tested on
/// every evaluation).
macro_rules! include_exclude {
    ($include:expr, $exclude:expr, |$r:ident| $test:expr) => {
        'decided: {
            let mut include_unknown: Option<Missing> = None;
            let mut matched: Option<u16> = None;
            for (i, e) in $include.iter().enumerate() {
                let $r = &e.target;
                match $test {
                    Tri::Yes => {
                        matched = Some(i as u16);
                        break;
                    }
                    Tri::Unknown(m) => include_unknown = include_unknown.or(Some(m)),
                    Tri::No => {}
                }
            }
            if matched.is_none() && include_unknown.is_none() {
                break 'decided Check::NotMatched;
            }
            let mut exclude_unknown: Option<Missing> = None;
            for (j, e) in $exclude.iter().enumerate() {
                let $r = &e.target;
                match $test {
                    Tri::Yes => break 'decided Check::Excluded(Some(j as u16)),
                    Tri::Unknown(m) => exclude_unknown = exclude_unknown.or(Some(m)),
                    Tri::No => {}
                }
            }
            match (matched, include_unknown.or(exclude_unknown)) {
                (Some(i), None) => Check::Matched(Some(i)),
                (_, Some(m)) => Check::Unknown(m),
                (None, None) => Check::NotMatched,
            }
        }
    };
}

#[inline(always)]
fn user_ref(env: &Env, f: &Facts, r: &UserRef) -> Tri {
    match r {
        UserRef::All => Tri::Yes,
        UserRef::GuestsOrExternal => match f.external {
            External::Kind(_) => Tri::Yes,
            External::Internal => Tri::No,
            External::Unknown => Tri::Unknown(Missing::UserType),
        },
        UserRef::User(u) => bool_tri(f.user == Some(*u)),
        UserRef::Group(sym) => {
            if !env.dir.provided.groups {
                return Tri::Unknown(Missing::GroupMembership);
            }
            bool_tri(f.member_of.is_some_and(|m| m.in_group(*sym)))
        }
        UserRef::MissingGroup => {
            if env.dir.provided.groups {
                Tri::No
            } else {
                Tri::Unknown(Missing::GroupMembership)
            }
        }
        UserRef::Role(sym) => {
            if !env.dir.provided.roles {
                return Tri::Unknown(Missing::RoleAssignments);
            }
            bool_tri(f.member_of.is_some_and(|m| m.has_role(*sym)))
        }
        UserRef::External(x) => match f.external {
            External::Internal => Tri::No,
            External::Unknown => Tri::Unknown(Missing::UserType),
            External::Kind(k) => {
                if !x.has(k) {
                    return Tri::No;
                }
                match (&x.tenants, k) {
                    (None, _) | (_, GuestKind::InternalGuest) => Tri::Yes,
                    (Some(list), _) => {
                        let home = &f.signin.home_tenant_id;
                        if home.is_empty() {
                            Tri::Unknown(Missing::UserType)
                        } else {
                            bool_tri(list.iter().any(|t| t == home))
                        }
                    }
                }
            }
        },
    }
}

fn bool_tri(b: bool) -> Tri {
    if b {
        Tri::Yes
    } else {
        Tri::No
    }
}

#[inline(always)]
fn app_ref(env: &Env, f: &Facts, target: Ustr, r: &AppRef) -> Tri {
    match r {
        AppRef::All => Tri::Yes,
        AppRef::Id(id) => bool_tri(*id == target),
        AppRef::Bundle(b) => match f.bundle_membership(env.apps, *b, target) {
            Membership::Member => Tri::Yes,
            Membership::NotMember => Tri::No,
            Membership::Unknown => Tri::Unknown(Missing::AppBundle),
        },
    }
}

fn applications(env: &Env, p: &CompiledPolicy, f: &Facts) -> Check {
    let s = f.signin;
    let a = &p.apps;
    // User actions and authentication contexts target what the sign-in requested.
    for (i, e) in a.user_actions.iter().enumerate() {
        if s.auth_context.iter().any(|c| c == e.target.urn()) {
            return Check::Matched(Some((a.include.len() + i) as u16));
        }
    }
    for (i, e) in a.auth_contexts.iter().enumerate() {
        if s.auth_context.iter().any(|c| *c == e.target) {
            return Check::Matched(Some((a.include.len() + a.user_actions.len() + i) as u16));
        }
    }
    if a.include.is_empty() {
        return Check::NotMatched;
    }
    // Several audiences: the policy applies when some audience is included and not excluded.
    let mut best = Check::NotMatched;
    for t in s.targets() {
        let c = include_exclude!(a.include, a.exclude, |r| app_ref(env, f, *t, r));
        match c {
            Check::Matched(_) => return c,
            Check::Unknown(_) => best = c,
            Check::Excluded(_) if !matches!(best, Check::Unknown(_)) => best = c,
            _ => {}
        }
    }
    best
}

fn client_apps(list: &Option<Vec<ClientAppType>>, s: &SignIn) -> Check {
    let Some(list) = list else {
        return Check::NotConfigured;
    };
    let eas_supported = matches!(
        s.platform,
        Platform::Ios | Platform::Android | Platform::Windows | Platform::WindowsPhone
    );
    for (i, t) in list.iter().enumerate() {
        let hit = match (s.client_app, t) {
            (_, ClientAppType::All) => true,
            (ClientApp::Browser, ClientAppType::Browser) => true,
            (
                ClientApp::MobileAppsAndDesktopClients,
                ClientAppType::MobileAppsAndDesktopClients,
            ) => true,
            (ClientApp::ExchangeActiveSync, ClientAppType::ExchangeActiveSync) => true,
            (ClientApp::ExchangeActiveSync, ClientAppType::EasSupported) => eas_supported,
            (ClientApp::ExchangeActiveSync, ClientAppType::EasUnsupported) => !eas_supported,
            (ClientApp::Other, ClientAppType::Other) => true,
            _ => false,
        };
        if hit {
            return Check::Matched(Some(i as u16));
        }
    }
    Check::NotMatched
}

fn platforms(p: &Option<PlatformsCondition>, s: &SignIn) -> Check {
    let Some(c) = p else {
        return Check::NotConfigured;
    };
    if !c.includes(s.platform) {
        return Check::NotMatched;
    }
    if c.excludes(s.platform) {
        return Check::Excluded(None);
    }
    Check::Matched(None)
}

#[inline]
fn location_ref(env: &Env, f: &Facts, r: &LocationRef) -> Tri {
    let s = f.signin;
    match r {
        LocationRef::All => Tri::Yes,
        LocationRef::AllTrusted => {
            if let Some(t) = f.all_trusted.get() {
                return t;
            }
            let t = all_trusted(env, s);
            f.all_trusted.set(Some(t));
            t
        }
        LocationRef::Named(i) => {
            let i = *i;
            let bit = if i < 64 { 1u64 << i } else { 0 };
            if f.locations_known.get() & bit != 0 {
                return bool_tri(f.locations_in.get() & bit != 0);
            }
            let t = named_location(env, s, i);
            match t {
                Tri::Yes => {
                    f.locations_known.set(f.locations_known.get() | bit);
                    f.locations_in.set(f.locations_in.get() | bit);
                }
                Tri::No => f.locations_known.set(f.locations_known.get() | bit),
                // Unknowns are cheap to find again; not cached.
                Tri::Unknown(_) => {}
            }
            t
        }
        LocationRef::MfaTrustedIps => {
            if env.dir.mfa_trusted_ips.is_empty() {
                return Tri::Unknown(Missing::MfaTrustedIps);
            }
            match s.ip_address {
                Some(ip) => bool_tri(env.dir.mfa_trusted_ips.contains(ip)),
                None => Tri::Unknown(Missing::IpAddress),
            }
        }
        LocationRef::Missing => Tri::Unknown(Missing::NamedLocation),
    }
}

/// `AllTrusted`: a trusted IP location, the compliant network, or the MFA trusted IPs.
fn all_trusted(env: &Env, s: &SignIn) -> Tri {
    let Some(ip) = s.ip_address else {
        return Tri::Unknown(Missing::IpAddress);
    };
    let mut unknown = None;
    for loc in &env.dir.named_locations {
        match &loc.kind {
            LocationKind::Ip {
                trusted: true,
                v4,
                v6,
            } if crate::directory::locations::ip_in(v4, v6, ip) => return Tri::Yes,
            LocationKind::CompliantNetwork => match s.through_global_secure_access {
                Some(true) => return Tri::Yes,
                Some(false) => {}
                None => unknown = Some(Missing::CompliantNetwork),
            },
            _ => {}
        }
    }
    if env.dir.mfa_trusted_ips.contains(ip) {
        return Tri::Yes;
    }
    if !env.dir.provided.named_locations {
        // Without namedLocations.json the tenant's trusted ranges are not known.
        unknown = unknown.or(Some(Missing::NamedLocations));
    }
    unknown.map(Tri::Unknown).unwrap_or(Tri::No)
}

/// Whether the sign-in is in `Directory::named_locations[i]`.
fn named_location(env: &Env, s: &SignIn, i: usize) -> Tri {
    let Some(loc) = env.dir.named_locations.get(i) else {
        return Tri::Unknown(Missing::NamedLocation);
    };
    match &loc.kind {
        LocationKind::Ip { v4, v6, .. } => match s.ip_address {
            Some(ip) => bool_tri(crate::directory::locations::ip_in(v4, v6, ip)),
            None => Tri::Unknown(Missing::IpAddress),
        },
        LocationKind::Country { gps: true, .. } => Tri::Unknown(Missing::GpsCountry),
        LocationKind::Country {
            symbols,
            include_unknown,
            ..
        } => {
            if s.country.is_empty() {
                bool_tri(*include_unknown)
            } else {
                bool_tri(symbols.contains(&s.country))
            }
        }
        LocationKind::CompliantNetwork => match s.through_global_secure_access {
            Some(b) => bool_tri(b),
            None => Tri::Unknown(Missing::CompliantNetwork),
        },
    }
}

fn risk(mask: Option<Mask>, level: Option<RiskLevel>, missing: Missing, hidden: Missing) -> Check {
    let Some(mask) = mask else {
        return Check::NotConfigured;
    };
    match level {
        None => Check::Unknown(missing),
        Some(RiskLevel::Hidden) => Check::Unknown(hidden),
        Some(l) if mask.has(l as usize) => Check::Matched(None),
        Some(_) => Check::NotMatched,
    }
}

fn user_risk(p: &CompiledPolicy, f: &Facts) -> Check {
    let Some(mask) = p.user_risk else {
        return Check::NotConfigured;
    };
    if let Some(level) = f.user_risk {
        return risk(
            Some(mask),
            Some(level),
            Missing::UserRisk,
            Missing::UserRiskHidden,
        );
    }
    // Entra's own record for this policy says whether user risk matched (design.md).
    let recorded = f
        .signin
        .applied_policies
        .iter()
        .find(|a| a.id.eq_ignore_ascii_case(&p.id));
    if let Some(a) = recorded {
        if a.conditions_satisfied
            .is_some_and(|b| b & conditions::USER_RISK != 0)
        {
            return Check::Matched(None);
        }
        if a.conditions_not_satisfied
            .is_some_and(|b| b & conditions::USER_RISK != 0)
        {
            return Check::NotMatched;
        }
    }
    Check::Unknown(Missing::UserRisk)
}

/// The device as the sign-in log shows it, for device filters (entra-semantics.md §2.2).
struct LoggedDevice<'a> {
    signin: &'a SignIn,
    registered: bool,
}

impl DeviceProperties for LoggedDevice<'_> {
    fn get(&self, p: Property) -> PropertyValue<'_> {
        let d = &self.signin.device;
        if !self.registered {
            // Unregistered: every property is null.
            return PropertyValue::Null;
        }
        fn s(x: &str) -> PropertyValue<'_> {
            if x.is_empty() {
                PropertyValue::Unknown
            } else {
                PropertyValue::Str(x)
            }
        }
        match p {
            Property::DeviceId => PropertyValue::Str(d.device_id.as_str()),
            Property::DisplayName => s(d.display_name.as_str()),
            Property::OperatingSystem => s(d.operating_system.as_str()),
            Property::IsCompliant => match d.is_compliant {
                Some(b) => PropertyValue::Bool(b),
                None => PropertyValue::Unknown,
            },
            Property::TrustType => match d.filter_trust_type() {
                Some(t) => PropertyValue::Str(t),
                None => PropertyValue::Unknown,
            },
            _ => PropertyValue::Unknown,
        }
    }
}

fn device_filter(p: &CompiledPolicy, f: &Facts) -> Check {
    let Some(df) = &p.device_filter else {
        return Check::NotConfigured;
    };
    let device = LoggedDevice {
        signin: f.signin,
        registered: f.device_registered(),
    };
    match (df.rule.evaluate(&device), df.mode) {
        (None, _) => Check::Unknown(Missing::DeviceProperty),
        (Some(true), FilterMode::Include) => Check::Matched(None),
        (Some(false), FilterMode::Include) => Check::NotMatched,
        (Some(true), FilterMode::Exclude) => Check::Excluded(None),
        (Some(false), FilterMode::Exclude) => Check::Matched(None),
    }
}

fn workload(p: &CompiledPolicy, s: &SignIn) -> Check {
    let Some(w) = &p.workload else {
        return Check::NotConfigured;
    };
    if s.event_type != crate::signin::EventType::ServicePrincipal {
        return Check::OtherSubject;
    }
    let sp = s.service_principal_id.to_ascii_lowercase();
    include_exclude!(w.include, w.exclude, |r| match r {
        ServicePrincipalRef::AllInTenant => Tri::Yes,
        ServicePrincipalRef::Id(id) => bool_tri(*id == sp),
    })
}

/// Why a sign-in is not evaluated against policies at all, if it is not: Conditional Access runs
/// after the first factor (§2.3), so a failed first factor never reaches it; managed identities
/// are outside Conditional Access (§1.6).
pub fn not_evaluated(s: &SignIn) -> Option<&'static str> {
    if s.first_factor_failed() {
        Some("first_factor_failed")
    } else if s.event_type == crate::signin::EventType::ManagedIdentity {
        Some("managed_identity")
    } else {
        None
    }
}

/// The users condition alone (include, then exclude) for the sign-in's user: what the
/// break-glass checks ask of every policy.
pub fn users_check(env: &Env, p: &CompiledPolicy, f: &Facts) -> Check {
    match &p.users {
        Some(u) => include_exclude!(u.include, u.exclude, |r| user_ref(env, f, r)),
        None => Check::NotMatched,
    }
}

/// Evaluates one policy against one prepared sign-in.
///
/// The result is built on the stack and copied out; loops over many sign-ins use
/// [`evaluate_into`] or [`evaluate_nth`], which write it where the caller keeps it.
pub fn evaluate(env: &Env, p: &CompiledPolicy, f: &Facts) -> Evaluation {
    let mut out = Evaluation::NOT_APPLIED;
    evaluate_slots(env, p, memo_slots(env, p, f), f, &mut out);
    out
}

/// The memo slots `p` uses with `f` (none when `f` was prepared for another set).
fn memo_slots(env: &Env, p: &CompiledPolicy, f: &Facts) -> MemoSlots {
    if std::ptr::eq(env.set, f.set) {
        env.set.memo_slots_of(p)
    } else {
        MemoSlots::NONE
    }
}

/// [`evaluate`] written into `out` (every field overwritten), where the caller keeps it. An
/// `Evaluation` returned by value is built in a temporary and copied to its place, and that
/// copy reads back the trace just written entry by entry (a store-forwarding stall per 16
/// bytes): in the replay's loop, about a sixth of the time.
pub fn evaluate_into(env: &Env, p: &CompiledPolicy, f: &Facts, out: &mut Evaluation) {
    evaluate_slots(env, p, memo_slots(env, p, f), f, out);
}

/// [`evaluate_into`] for `env.set.policies[i]`, as the replay calls it (the policy's memo slots
/// found by its index, not by its address).
pub fn evaluate_nth(env: &Env, i: usize, f: &Facts, out: &mut Evaluation) {
    let Some(p) = env.set.policies.get(i) else {
        return;
    };
    let slots = if std::ptr::eq(env.set, f.set) {
        env.set.memo_slots_at(i)
    } else {
        MemoSlots::NONE
    };
    evaluate_slots(env, p, slots, f, out);
}

/// Conditions shared by several policies of the set (`slots`) are evaluated once per sign-in.
fn evaluate_slots(
    env: &Env,
    p: &CompiledPolicy,
    slots: MemoSlots,
    f: &Facts,
    out: &mut Evaluation,
) {
    let s = f.signin;
    *out = Evaluation::NOT_APPLIED;
    let mut unknown: Option<Missing> = None;
    macro_rules! step {
        ($cond:expr, $check:expr) => {{
            let c: Check = $check;
            out.trace[$cond as usize] = c;
            match c {
                Check::NotMatched | Check::Excluded(_) | Check::OtherSubject => return,
                Check::Unknown(m) => unknown = unknown.or(Some(m)),
                _ => {}
            }
        }};
    }

    // Subject: user policies never apply to workload sign-ins and vice versa (§2.2).
    if p.users.is_some() && p.workload.is_none() {
        step!(
            Condition::Users,
            if s.event_type.is_workload() {
                Check::OtherSubject
            } else {
                memo(&f.users_known, &f.users_memo, slots.users, || {
                    users_check(env, p, f)
                })
            }
        );
    } else {
        step!(Condition::WorkloadIdentities, workload(p, s));
    }
    step!(
        Condition::Application,
        memo(&f.apps_known, &f.apps_memo, slots.apps, || applications(
            env, p, f
        ))
    );
    step!(Condition::ClientApps, client_apps(&p.client_app_types, s));
    step!(Condition::DevicePlatform, platforms(&p.platforms, s));
    step!(
        Condition::Location,
        match &p.locations {
            None => Check::NotConfigured,
            Some(l) => include_exclude!(l.include, l.exclude, |r| location_ref(env, f, r)),
        }
    );
    step!(
        Condition::SignInRisk,
        risk(
            p.sign_in_risk,
            s.sign_in_risk,
            Missing::SignInRisk,
            Missing::SignInRiskHidden
        )
    );
    step!(Condition::UserRisk, user_risk(p, f));
    step!(
        Condition::ServicePrincipalRisk,
        match p.service_principal_risk {
            None => Check::NotConfigured,
            Some(_) => Check::Unknown(Missing::ServicePrincipalRisk),
        }
    );
    step!(
        Condition::InsiderRisk,
        match p.insider_risk {
            None => Check::NotConfigured,
            Some(_) => Check::Unknown(Missing::InsiderRisk),
        }
    );
    step!(Condition::Devices, device_filter(p, f));
    step!(
        Condition::AuthenticationFlow,
        match p.transfer_methods {
            None => Check::NotConfigured,
            Some(mask) => match s.transfer_method {
                Some(t) if mask.has(t as usize) => Check::Matched(None),
                _ => Check::NotMatched,
            },
        }
    );
    if p.kind == PolicyKind::LegacyMfaRegistration {
        let start = p
            .registration_start
            .map(|t| t.timestamp_millis())
            .unwrap_or(i64::MIN);
        step!(
            Condition::Time,
            if s.is_interactive && s.millis() >= start {
                Check::Matched(None)
            } else {
                Check::NotMatched
            }
        );
    }
    if let Some(m) = unknown {
        out.applies = None;
        out.impact = Impact::Indeterminate;
        out.why = Why::Indeterminate(m);
        return;
    }
    let (impact, why, control) = grant(env.apps, p, f);
    out.applies = Some(true);
    out.impact = impact;
    out.why = why;
    out.control = control;
}

/// A condition's check from its memo slot, computing and keeping it on first use.
#[inline(always)]
fn memo(
    known: &std::cell::Cell<u32>,
    memo: &[std::cell::Cell<Check>; MEMO_SLOTS],
    slot: u8,
    compute: impl FnOnce() -> Check,
) -> Check {
    let i = slot as usize;
    let Some(cell) = memo.get(i) else {
        return compute();
    };
    let bit = 1u32 << i;
    if known.get() & bit != 0 {
        return cell.get();
    }
    let c = compute();
    cell.set(c);
    known.set(known.get() | bit);
    c
}

/// The grant stage of a policy that applies.
fn grant(apps: &AppTables, p: &CompiledPolicy, f: &Facts) -> (Impact, Why, Option<u8>) {
    let s = f.signin;
    if p.kind == PolicyKind::LegacyMfaRegistration {
        return registration_policy(f);
    }
    if p.grant.block {
        return (Impact::Blocked, Why::BlockControl, None);
    }
    let base = if p.grant.controls.is_empty() {
        (Impact::Satisfied, Why::NoGrantControls, None)
    } else if s.client_app.is_legacy() {
        // Legacy clients do no MFA and pass no device state: blocked (§2.3).
        (Impact::Blocked, Why::LegacyClient, None)
    } else {
        let statuses = p
            .grant
            .controls
            .iter()
            .enumerate()
            .map(|(i, c)| (i as u8, control(apps, p, f, c)));
        fold_controls(p.grant.operator, statuses)
    };
    if p.session.sign_in_frequency_every_time
        && s.is_interactive
        && base.0.severity() < Impact::MfaPrompt.severity()
        && base.0 != Impact::Indeterminate
    {
        return (Impact::MfaPrompt, Why::SignInFrequencyEveryTime, None);
    }
    base
}

fn fold_controls(
    op: Operator,
    statuses: impl Iterator<Item = (u8, (Impact, Why))>,
) -> (Impact, Why, Option<u8>) {
    let mut worst: Option<(Impact, Why, u8)> = None;
    let mut easiest: Option<(Impact, Why, u8)> = None;
    let mut unknown: Option<(Why, u8)> = None;
    let mut blocked: Option<(Why, u8)> = None;
    for (i, (impact, why)) in statuses {
        match impact {
            Impact::Indeterminate => unknown = unknown.or(Some((why, i))),
            _ => {
                if impact == Impact::Blocked {
                    blocked = blocked.or(Some((why, i)));
                }
                if worst.is_none_or(|w| impact.severity() > w.0.severity()) {
                    worst = Some((impact, why, i));
                }
                if easiest.is_none_or(|e| impact.severity() < e.0.severity()) {
                    easiest = Some((impact, why, i));
                }
            }
        }
    }
    match op {
        Operator::And => {
            if let Some((why, i)) = blocked {
                return (Impact::Blocked, why, Some(i));
            }
            if let Some((why, i)) = unknown {
                return (Impact::Indeterminate, why, Some(i));
            }
            worst.map(|(a, b, c)| (a, b, Some(c))).unwrap_or((
                Impact::Satisfied,
                Why::NoGrantControls,
                None,
            ))
        }
        Operator::Or => {
            if let Some((Impact::Satisfied, why, i)) = easiest {
                return (Impact::Satisfied, why, Some(i));
            }
            if let Some((why, i)) = unknown {
                return (Impact::Indeterminate, why, Some(i));
            }
            easiest.map(|(a, b, c)| (a, b, Some(c))).unwrap_or((
                Impact::Satisfied,
                Why::NoGrantControls,
                None,
            ))
        }
    }
}

fn indeterminate(m: Missing) -> (Impact, Why) {
    (Impact::Indeterminate, Why::Indeterminate(m))
}

/// What the user must do to get an MFA claim (§2.4).
fn mfa_remedy(p: &CompiledPolicy, f: &Facts) -> (Impact, Why) {
    let risk_policy = p.is_risk_policy();
    match f.registration {
        Some(r) if !r.is_mfa_capable && risk_policy => (Impact::Blocked, Why::RiskUnregistered),
        _ if !f.signin.is_interactive => (Impact::InteractiveReauth, Why::NonInteractive),
        Some(r) if r.is_mfa_capable => (Impact::MfaPrompt, Why::MfaPrompt),
        Some(_) => (Impact::MfaRegistration, Why::MfaRegistration),
        None => indeterminate(Missing::MfaRegistration),
    }
}

fn control(apps: &AppTables, p: &CompiledPolicy, f: &Facts, c: &Control) -> (Impact, Why) {
    let s = f.signin;
    let d = &s.device;
    let device_code = s.transfer_method == Some(crate::domain::TransferMethod::DeviceCodeFlow);
    match c {
        Control::Mfa | Control::AuthenticationStrength { .. } => {
            if f.mfa_done {
                (Impact::Satisfied, Why::MfaAlreadySatisfied)
            } else {
                mfa_remedy(p, f)
            }
        }
        Control::PasswordChange | Control::RiskRemediation => {
            // MFA in the sign-in does not satisfy it (design.md); unregistered users are blocked.
            match f.registration {
                Some(r) if !r.is_mfa_capable => (Impact::Blocked, Why::RiskUnregistered),
                _ if !s.is_interactive => (Impact::InteractiveReauth, Why::NonInteractive),
                Some(_) => (Impact::PasswordChange, Why::PasswordChange),
                None => indeterminate(Missing::MfaRegistration),
            }
        }
        Control::CompliantDevice => {
            if device_code {
                return (Impact::Blocked, Why::DeviceCodeFlowNoDevice);
            }
            if !f.device_registered() {
                return (Impact::Blocked, Why::DeviceNotCompliant);
            }
            match d.is_compliant {
                Some(true) => (Impact::Satisfied, Why::DeviceCompliant),
                Some(false) => (Impact::Blocked, Why::DeviceNotCompliant),
                None => indeterminate(Missing::DeviceCompliance),
            }
        }
        Control::DomainJoinedDevice => {
            if device_code || !f.device_registered() {
                return (Impact::Blocked, Why::NotHybridJoined);
            }
            match d.filter_trust_type() {
                Some("ServerAD") => (Impact::Satisfied, Why::HybridJoined),
                Some(_) => (Impact::Blocked, Why::NotHybridJoined),
                None => indeterminate(Missing::DeviceJoinType),
            }
        }
        Control::ApprovedApplication => {
            let mobile = matches!(s.platform, Platform::Ios | Platform::Android);
            if mobile && apps.approved_client_apps.contains(s.app_id.as_str()) {
                (Impact::Satisfied, Why::ApprovedApp)
            } else {
                (Impact::Blocked, Why::NotApprovedApp)
            }
        }
        Control::CompliantApplication => {
            let capable_platform = matches!(
                s.platform,
                Platform::Ios | Platform::Android | Platform::Windows
            );
            if capable_platform && apps.approved_client_apps.contains(s.app_id.as_str()) {
                indeterminate(Missing::AppProtection)
            } else {
                (Impact::Blocked, Why::NotAppProtectionCapable)
            }
        }
        Control::TermsOfUse(_) => indeterminate(Missing::TermsOfUseAcceptance),
        Control::CustomControl(_) => indeterminate(Missing::CustomControlResult),
    }
}

/// The legacy MFA registration policy (entra-semantics.md §4.1; design.md's 14-day rule).
fn registration_policy(f: &Facts) -> (Impact, Why, Option<u8>) {
    match f.registration {
        None => (
            Impact::Indeterminate,
            Why::Indeterminate(Missing::MfaRegistration),
            None,
        ),
        Some(r) if r.is_mfa_registered => (Impact::Satisfied, Why::Registered, None),
        Some(_) => {
            let start = f.registration_clock.unwrap_or(f.signin.millis());
            if f.signin.millis() < start + registration::GRACE_MILLIS {
                (Impact::RegistrationNudge, Why::RegistrationGrace, None)
            } else {
                (Impact::MfaRegistration, Why::RegistrationRequired, None)
            }
        }
    }
}

/// Which policies form a set (design.md: current = enabled; proposed = enabled + report-only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SetKind {
    Current,
    Proposed,
}

impl SetKind {
    pub fn includes(self, state: PolicyState) -> bool {
        match self {
            SetKind::Current => state == PolicyState::Enabled,
            SetKind::Proposed => state != PolicyState::Disabled,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            SetKind::Current => "current",
            SetKind::Proposed => "proposed",
        }
    }
}

/// A sign-in's outcome over a policy set: the most severe impact, and the policies that were
/// indeterminate beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub impact: Impact,
    /// Index (into `PolicySet::policies`) of a policy that reached `impact`.
    pub decided_by: Option<usize>,
    pub indeterminate: u16,
}

/// Combines evaluations (aligned with `PolicySet::policies`; `None` = not evaluated) over the
/// policies a set includes. Block wins, then the most severe; all applicable policies must be
/// satisfied (§2.3).
pub fn combine(set: &PolicySet, evals: &[Option<Evaluation>], kind: SetKind) -> Outcome {
    let mut out = Outcome {
        impact: Impact::NotApplied,
        decided_by: None,
        indeterminate: 0,
    };
    for (i, (p, e)) in set.policies.iter().zip(evals).enumerate() {
        let Some(e) = e else { continue };
        // Most policies do not apply: nothing to count, and no need to read the policy.
        if e.impact == Impact::NotApplied || !kind.includes(p.state) {
            continue;
        }
        if e.impact == Impact::Indeterminate {
            out.indeterminate += 1;
            continue;
        }
        if e.impact.severity() > out.impact.severity() {
            out.impact = e.impact;
            out.decided_by = Some(i);
        }
    }
    out
}
