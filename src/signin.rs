//! The normalized sign-in: one schema that every export format fills (entra-semantics.md §6).
//! Derived fields (platform, client app class, MFA evidence) are computed once at ingest so the
//! engine reads them millions of times for free.
//!
//! Text fields that repeat across sign-ins (user, app, resource, tenant, device, client and
//! policy names and ids, the recorded verdicts) are interned `Ustr`s: eight bytes, `Copy`, one
//! copy of each distinct value for the whole process (never freed, so only values with bounded
//! variety are interned). What is unique per sign-in (its id, session and correlation ids)
//! stays a `String`.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
pub use ustr::Ustr;

use crate::domain::{ClientApp, Platform, RiskLevel, TransferMethod};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum EventType {
    #[default]
    InteractiveUser,
    NonInteractiveUser,
    ServicePrincipal,
    ManagedIdentity,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::InteractiveUser => "interactiveUser",
            EventType::NonInteractiveUser => "nonInteractiveUser",
            EventType::ServicePrincipal => "servicePrincipal",
            EventType::ManagedIdentity => "managedIdentity",
        }
    }
    pub const ALL: [EventType; 4] = [
        EventType::InteractiveUser,
        EventType::NonInteractiveUser,
        EventType::ServicePrincipal,
        EventType::ManagedIdentity,
    ];
    /// Parses [`EventType::as_str`]'s spelling, case-insensitively.
    pub fn parse(s: &str) -> Option<EventType> {
        let s = s.trim();
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
    }
    pub fn is_workload(self) -> bool {
        matches!(
            self,
            EventType::ServicePrincipal | EventType::ManagedIdentity
        )
    }
}

/// `deviceDetail`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Device {
    pub device_id: Ustr,
    pub display_name: Ustr,
    pub operating_system: Ustr,
    pub browser: Ustr,
    pub is_compliant: Option<bool>,
    pub is_managed: Option<bool>,
    /// As logged: "Azure AD joined", "Azure AD registered", "Hybrid Azure AD joined", or empty.
    pub trust_type: Ustr,
}

impl Device {
    /// A device is registered when the log carries its id (unregistered devices have none).
    pub fn is_registered(&self) -> bool {
        let id = self.device_id.as_str();
        // Logged ids are seldom padded: trim only when an end is whitespace.
        let padded = |c: Option<char>| c.is_some_and(char::is_whitespace);
        let id = if padded(id.chars().next()) || padded(id.chars().next_back()) {
            id.trim()
        } else {
            id
        };
        !id.is_empty() && id != "00000000-0000-0000-0000-000000000000"
    }
    /// The device-filter `trustType` value for the logged join type (entra-semantics.md §2.2).
    pub fn filter_trust_type(&self) -> Option<&'static str> {
        let t = self.trust_type.as_str();
        // The spellings logs carry, answered without scanning (the same answers as below).
        match t {
            "" => return None,
            "Azure AD joined" | "Microsoft Entra joined" => return Some("AzureAD"),
            "Azure AD registered" | "Microsoft Entra registered" => return Some("Workplace"),
            "Hybrid Azure AD joined" | "Microsoft Entra hybrid joined" => return Some("ServerAD"),
            _ => {}
        }
        let has = |word: &str| {
            t.as_bytes()
                .windows(word.len())
                .any(|w| w.eq_ignore_ascii_case(word.as_bytes()))
        };
        let is = |word: &str| t.eq_ignore_ascii_case(word);
        if has("hybrid") || is("serverad") || is("domain joined") {
            Some("ServerAD")
        } else if has("registered") || is("workplace") {
            Some("Workplace")
        } else if has("joined") || is("azuread") {
            Some("AzureAD")
        } else {
            None
        }
    }
    /// Hybrid joined: what `domainJoinedDevice` requires (design.md).
    pub fn is_hybrid_joined(&self) -> bool {
        self.filter_trust_type() == Some("ServerAD")
    }
}

/// Bit flags of `conditionalAccessConditions`, in declaration order (entra-semantics.md §3).
pub mod conditions {
    pub const NAMES: [&str; 17] = [
        "application",
        "users",
        "devicePlatform",
        "location",
        "clientType",
        "signInRisk",
        "userRisk",
        "time",
        "deviceState",
        "client",
        "ipAddressSeenByAzureAD",
        "ipAddressSeenByResourceProvider",
        "unknownFutureValue",
        "servicePrincipals",
        "servicePrincipalRisk",
        "authenticationFlows",
        "insiderRisk",
    ];
    pub const USER_RISK: u32 = 1 << 6;

    /// Parses `"application,users"` or the integer form of diagnostic exports.
    pub fn parse(v: &serde_json::Value) -> Option<u32> {
        match v {
            serde_json::Value::Number(n) => n.as_u64().map(|n| n as u32),
            serde_json::Value::String(s) => {
                if let Ok(n) = s.trim().parse::<u32>() {
                    return Some(n);
                }
                let mut bits = 0;
                for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    if part.eq_ignore_ascii_case("none") {
                        continue;
                    }
                    let i = NAMES.iter().position(|n| n.eq_ignore_ascii_case(part))?;
                    bits |= 1 << i;
                }
                Some(bits)
            }
            _ => None,
        }
    }
}

/// Interns `s` with ASCII letters lower-cased; allocates only when it has upper-case ones.
pub fn lower_sym(s: &str) -> Ustr {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Ustr::from(&s.to_ascii_lowercase())
    } else {
        Ustr::from(s)
    }
}

/// Interns `s` with ASCII letters upper-cased; allocates only when it has lower-case ones.
pub fn upper_sym(s: &str) -> Ustr {
    if s.bytes().any(|b| b.is_ascii_lowercase()) {
        Ustr::from(&s.to_ascii_uppercase())
    } else {
        Ustr::from(s)
    }
}

/// Interns every string of a list.
pub fn syms<S: AsRef<str>>(v: impl IntoIterator<Item = S>) -> Vec<Ustr> {
    v.into_iter().map(|x| Ustr::from(x.as_ref())).collect()
}

/// One entry of `appliedConditionalAccessPolicies`: Entra's own verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppliedPolicy {
    pub id: Ustr,
    pub display_name: Ustr,
    pub result: Ustr,
    pub enforced_grant_controls: Vec<Ustr>,
    pub conditions_satisfied: Option<u32>,
    pub conditions_not_satisfied: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SignIn {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub user_id: Ustr,
    pub user_principal_name: Ustr,
    pub user_display_name: Ustr,
    /// `member` / `guest` lower-cased; empty when the log does not say.
    pub user_type: Ustr,
    pub home_tenant_id: Ustr,
    pub resource_tenant_id: Ustr,
    pub cross_tenant_access_type: Ustr,
    pub app_id: Ustr,
    pub app_display_name: Ustr,
    /// Lower-cased resource application id: what Conditional Access targets.
    pub resource_id: Ustr,
    pub resource_display_name: Ustr,
    /// `conditionalAccessAudiences`, lower-cased: preferred over `resource_id` when present.
    pub audiences: Vec<Ustr>,
    pub ip_address: Option<IpAddr>,
    /// Two-letter country, upper-cased; empty when unknown.
    pub country: Ustr,
    pub client_app_used: Ustr,
    pub client_app: ClientApp,
    pub user_agent: Ustr,
    pub platform: Platform,
    pub device: Device,
    pub is_interactive: bool,
    pub event_type: EventType,
    pub service_principal_id: Ustr,
    /// `riskLevelDuringSignIn`; `None` when the log does not carry it.
    pub sign_in_risk: Option<RiskLevel>,
    pub risk_level_aggregated: Option<RiskLevel>,
    pub error_code: i64,
    pub failure_reason: Ustr,
    pub authentication_requirement: Ustr,
    /// The sign-in shows MFA done (requirement met, a second factor succeeded, or "MFA
    /// requirement satisfied by claim in the token").
    pub mfa_satisfied: bool,
    /// Methods of the successful authentication steps (e.g. "Password", "FIDO2 security key").
    pub authentication_methods: Vec<Ustr>,
    pub transfer_method: Option<TransferMethod>,
    /// Authentication context ids and user-action URNs requested, lower-cased.
    pub auth_context: Vec<Ustr>,
    pub through_global_secure_access: Option<bool>,
    pub session_id: String,
    pub correlation_id: String,
    pub applied_policies: Vec<AppliedPolicy>,
}

/// Sign-in error codes that mean the first factor failed: Conditional Access never ran
/// (entra-semantics.md §2.3; codes from Microsoft's AADSTS reference). Choice recorded in
/// design.md: such sign-ins are counted, not evaluated.
pub const FIRST_FACTOR_FAILURES: &[i64] = &[
    50034,  // user not found
    50053,  // account locked / malicious IP
    50055,  // password expired
    50056,  // invalid or null password
    50057,  // account disabled
    50064,  // credential validation failure
    50126,  // invalid username or password
    50133,  // session invalid because the password changed
    50144,  // AD password expired
    50173,  // fresh auth token needed (password changed)
    80012,  // outside allowed logon hours (pass-through auth)
    80014,  // pass-through auth validation timed out
    81010,  // seamless SSO failed: invalid or expired Kerberos ticket
    120000, // password change required (ADFS)
];

/// `ClientApp::from_client_app_used` and `Platform::detect` of the interned values a log
/// repeats millions of times (a few hundred distinct ones, or some thousands of user agents),
/// remembered per thread; emptied past [`Derived::MAX`] entries.
#[derive(Default)]
struct Derived {
    clients: rustc_hash::FxHashMap<Ustr, ClientApp>,
    platforms: rustc_hash::FxHashMap<(Ustr, Ustr), Platform>,
}

impl Derived {
    const MAX: usize = 1 << 16;

    fn derive(&mut self, s: &mut SignIn) {
        if self.clients.len() >= Self::MAX {
            self.clients.clear();
        }
        if self.platforms.len() >= Self::MAX {
            self.platforms.clear();
        }
        s.client_app = *self
            .clients
            .entry(s.client_app_used)
            .or_insert_with(|| ClientApp::from_client_app_used(&s.client_app_used));
        let (os, agent) = (s.device.operating_system, s.user_agent);
        s.platform = *self
            .platforms
            .entry((os, agent))
            .or_insert_with(|| Platform::detect(&os, &agent));
    }
}

thread_local! {
    static DERIVED: std::cell::RefCell<Derived> = std::cell::RefCell::default();
}

impl SignIn {
    /// Sets `client_app` and `platform` from the logged client app, operating system and user
    /// agent, as every reader does once a record is read.
    pub fn derive(&mut self) {
        DERIVED.with(|d| d.borrow_mut().derive(self));
    }

    pub fn first_factor_failed(&self) -> bool {
        FIRST_FACTOR_FAILURES.contains(&self.error_code)
    }
    /// The resource ids Conditional Access evaluated: the audiences when logged, else the
    /// resource (design.md "which app a policy targets").
    pub fn targets(&self) -> &[Ustr] {
        if self.audiences.is_empty() {
            std::slice::from_ref(&self.resource_id)
        } else {
            &self.audiences
        }
    }
    /// The time as milliseconds since the epoch (for per-user state in time order).
    pub fn millis(&self) -> i64 {
        self.created_at.timestamp_millis()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The remembered derivation agrees with the direct one, the second time a value is seen
    /// and after the memo is emptied.
    #[test]
    fn derived_values_are_remembered_faithfully() {
        let clients = [
            "Browser",
            "Exchange ActiveSync",
            "IMAP4",
            "Mobile Apps and Desktop clients",
            "",
            "other",
        ];
        let systems = [
            "Windows 10",
            "iOS 17",
            "",
            "MacOs",
            "Android",
            "Linux",
            "weird",
        ];
        let agents = [
            "",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
            "Mozilla/5.0 (Linux; Android 14)",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
        ];
        let mut memo = Derived::default();
        for round in 0..3 {
            if round == 2 {
                memo = Derived::default();
            }
            for c in clients {
                for os in systems {
                    for ua in agents {
                        let mut s = SignIn {
                            client_app_used: Ustr::from(c),
                            user_agent: Ustr::from(ua),
                            ..SignIn::default()
                        };
                        s.device.operating_system = Ustr::from(os);
                        memo.derive(&mut s);
                        assert_eq!(s.client_app, ClientApp::from_client_app_used(c), "{c}");
                        assert_eq!(s.platform, Platform::detect(os, ua), "{os} / {ua}");
                        let mut t = s.clone();
                        t.derive();
                        assert_eq!((t.client_app, t.platform), (s.client_app, s.platform));
                    }
                }
            }
        }
    }
}
