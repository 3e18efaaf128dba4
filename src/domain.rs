//! The vocabulary shared by every stage: platforms, client app types, risk levels, external-user
//! kinds, transfer methods, impacts. Each enum parses the strings Graph and the logs use
//! (entra-semantics.md §1, §6) and prints Graph's own spelling.

use std::fmt;

macro_rules! graph_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// Graph's spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            /// Parses Graph's spelling, case-insensitively (exports vary: `All`, `all`).
            pub fn parse(s: &str) -> Option<Self> {
                let s = s.trim();
                $(if s.eq_ignore_ascii_case($text) { return Some($name::$variant); })+
                None
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

graph_enum!(
    /// Device platform (`conditionalAccessDevicePlatform`). `Unknown` is ours: a platform the
    /// sign-in does not reveal, which only `all` matches (design.md).
    Platform {
        Android => "android",
        Ios => "iOS",
        Windows => "windows",
        WindowsPhone => "windowsPhone",
        MacOs => "macOS",
        Linux => "linux",
        Unknown => "unknown",
    }
);

// The enum comes from `graph_enum!`, which cannot take `#[default]`.
#[allow(clippy::derivable_impls)]
impl Default for Platform {
    fn default() -> Self {
        Platform::Unknown
    }
}

impl Platform {
    /// Derives the platform from `deviceDetail.operatingSystem`, else the user agent
    /// (entra-semantics.md §6.3; design.md).
    pub fn detect(operating_system: &str, user_agent: &str) -> Platform {
        let os = operating_system.trim().to_ascii_lowercase();
        if !os.is_empty() {
            let p = Self::from_os(&os);
            if p != Platform::Unknown {
                return p;
            }
        }
        Self::from_user_agent(&user_agent.to_ascii_lowercase())
    }

    fn from_os(os: &str) -> Platform {
        if os.starts_with("windows phone") || os.starts_with("windowsphone") {
            Platform::WindowsPhone
        } else if os.starts_with("windows") || os.starts_with("win") {
            Platform::Windows
        } else if os.starts_with("ios") || os.starts_with("ipados") || os.starts_with("iphone") {
            Platform::Ios
        } else if os.starts_with("mac") || os.starts_with("os x") {
            Platform::MacOs
        } else if os.starts_with("android") {
            Platform::Android
        } else if os.starts_with("linux") || os.starts_with("ubuntu") {
            Platform::Linux
        } else {
            Platform::Unknown
        }
    }

    fn from_user_agent(ua: &str) -> Platform {
        // Order matters: Android UAs say "Linux", iOS UAs say "like Mac OS X",
        // Windows Phone UAs say "Android".
        if ua.contains("windows phone") {
            Platform::WindowsPhone
        } else if ua.contains("android") {
            Platform::Android
        } else if ua.contains("iphone") || ua.contains("ipad") || ua.contains("ipod") {
            Platform::Ios
        } else if ua.contains("windows") {
            Platform::Windows
        } else if ua.contains("macintosh") || ua.contains("mac os x") {
            Platform::MacOs
        } else if ua.contains("linux") || ua.contains("ubuntu") || ua.contains("x11") {
            Platform::Linux
        } else {
            Platform::Unknown
        }
    }
}

graph_enum!(
    /// `conditionalAccessClientApp`.
    ClientAppType {
        All => "all",
        Browser => "browser",
        MobileAppsAndDesktopClients => "mobileAppsAndDesktopClients",
        ExchangeActiveSync => "exchangeActiveSync",
        EasSupported => "easSupported",
        EasUnsupported => "easUnsupported",
        Other => "other",
    }
);

/// The client app class of one sign-in, from its `clientAppUsed` string (entra-semantics.md §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum ClientApp {
    Browser,
    MobileAppsAndDesktopClients,
    ExchangeActiveSync,
    /// Every other legacy protocol, and unknown or empty values.
    #[default]
    Other,
}

impl ClientApp {
    pub fn from_client_app_used(s: &str) -> ClientApp {
        let s = s.trim();
        if s.eq_ignore_ascii_case("browser") {
            ClientApp::Browser
        } else if s.eq_ignore_ascii_case("mobile apps and desktop clients") {
            ClientApp::MobileAppsAndDesktopClients
        } else if s.eq_ignore_ascii_case("exchange activesync") {
            ClientApp::ExchangeActiveSync
        } else {
            ClientApp::Other
        }
    }
    /// Legacy authentication: these clients cannot do MFA or pass device state.
    pub fn is_legacy(self) -> bool {
        matches!(self, ClientApp::ExchangeActiveSync | ClientApp::Other)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ClientApp::Browser => "browser",
            ClientApp::MobileAppsAndDesktopClients => "mobileAppsAndDesktopClients",
            ClientApp::ExchangeActiveSync => "exchangeActiveSync",
            ClientApp::Other => "other",
        }
    }
}

graph_enum!(
    /// `riskLevel`.
    RiskLevel {
        None => "none",
        Low => "low",
        Medium => "medium",
        High => "high",
        Hidden => "hidden",
    }
);

graph_enum!(
    /// `conditionalAccessInsiderRiskLevels` (flags).
    InsiderRiskLevel {
        Minor => "minor",
        Moderate => "moderate",
        Elevated => "elevated",
    }
);

graph_enum!(
    /// `conditionalAccessGuestOrExternalUserTypes` (flags).
    GuestKind {
        InternalGuest => "internalGuest",
        B2bCollaborationGuest => "b2bCollaborationGuest",
        B2bCollaborationMember => "b2bCollaborationMember",
        B2bDirectConnectUser => "b2bDirectConnectUser",
        OtherExternalUser => "otherExternalUser",
        ServiceProvider => "serviceProvider",
    }
);

graph_enum!(
    /// `conditionalAccessTransferMethods` (flags).
    TransferMethod {
        DeviceCodeFlow => "deviceCodeFlow",
        AuthenticationTransfer => "authenticationTransfer",
    }
);

graph_enum!(
    /// `conditionalAccessPolicyState`.
    PolicyState {
        Enabled => "enabled",
        Disabled => "disabled",
        ReportOnly => "enabledForReportingButNotEnforced",
    }
);

graph_enum!(
    /// Built-in grant controls (`conditionalAccessGrantControl`).
    BuiltInControl {
        Block => "block",
        Mfa => "mfa",
        CompliantDevice => "compliantDevice",
        DomainJoinedDevice => "domainJoinedDevice",
        ApprovedApplication => "approvedApplication",
        CompliantApplication => "compliantApplication",
        PasswordChange => "passwordChange",
        RiskRemediation => "riskRemediation",
    }
);

/// What one policy would do to one sign-in if enforced (design.md, "The impact of one policy").
/// Declared from least to most severe except `Indeterminate`, which sits apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Impact {
    NotApplied,
    Satisfied,
    RegistrationNudge,
    InteractiveReauth,
    MfaPrompt,
    MfaRegistration,
    PasswordChange,
    Blocked,
    Indeterminate,
}

impl Impact {
    pub const ALL: [Impact; 9] = [
        Impact::NotApplied,
        Impact::Satisfied,
        Impact::RegistrationNudge,
        Impact::InteractiveReauth,
        Impact::MfaPrompt,
        Impact::MfaRegistration,
        Impact::PasswordChange,
        Impact::Blocked,
        Impact::Indeterminate,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Impact::NotApplied => "not_applied",
            Impact::Satisfied => "satisfied",
            Impact::RegistrationNudge => "registration_nudge",
            Impact::InteractiveReauth => "interactive_reauth",
            Impact::MfaPrompt => "mfa_prompt",
            Impact::MfaRegistration => "mfa_registration",
            Impact::PasswordChange => "password_change",
            Impact::Blocked => "blocked",
            Impact::Indeterminate => "indeterminate",
        }
    }
    pub fn parse(s: &str) -> Option<Impact> {
        Impact::ALL.iter().copied().find(|i| i.as_str() == s)
    }
    /// Entra's report-only word for this impact (design.md's table).
    pub fn result_word(self) -> &'static str {
        match self {
            Impact::NotApplied => "reportOnlyNotApplied",
            Impact::Satisfied => "reportOnlySuccess",
            Impact::RegistrationNudge
            | Impact::InteractiveReauth
            | Impact::MfaPrompt
            | Impact::MfaRegistration
            | Impact::PasswordChange => "reportOnlyInterrupted",
            Impact::Blocked => "reportOnlyFailure",
            Impact::Indeterminate => "unknown",
        }
    }
    /// Entra's word for an *enabled* policy with this impact, as `appliedConditionalAccessPolicies`
    /// records it: applied and met (or only nudged) is `success`, applied and stopped or
    /// challenged is `failure`.
    pub fn enforced_result_word(self) -> &'static str {
        match self {
            Impact::NotApplied => "notApplied",
            Impact::Satisfied | Impact::RegistrationNudge => "success",
            Impact::Indeterminate => "unknown",
            _ => "failure",
        }
    }
    /// Rank for "most severe wins"; `Indeterminate` ranks with `NotApplied` because it is
    /// reported beside the outcome, never folded into it.
    pub fn severity(self) -> u8 {
        match self {
            Impact::Indeterminate => 0,
            other => other as u8,
        }
    }
}

impl fmt::Display for Impact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a comma-separated flags string (`"b2bCollaborationGuest,internalGuest"`) or list.
pub fn split_flags(values: &[String]) -> impl Iterator<Item = &str> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_from_os_and_user_agent() {
        assert_eq!(Platform::detect("Windows10", ""), Platform::Windows);
        assert_eq!(Platform::detect("Ios 18.2.1", ""), Platform::Ios);
        assert_eq!(Platform::detect("MacOs", ""), Platform::MacOs);
        assert_eq!(
            Platform::detect("Windows Phone 8", ""),
            Platform::WindowsPhone
        );
        let android = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36";
        assert_eq!(Platform::detect("", android), Platform::Android);
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)";
        assert_eq!(Platform::detect("", iphone), Platform::Ios);
        assert_eq!(
            Platform::detect("PlayStation", "curl/8.0"),
            Platform::Unknown
        );
    }

    #[test]
    fn client_app_mapping_is_case_insensitive() {
        use ClientApp::*;
        assert_eq!(ClientApp::from_client_app_used(" browser "), Browser);
        assert_eq!(
            ClientApp::from_client_app_used("Mobile Apps and Desktop clients"),
            MobileAppsAndDesktopClients
        );
        assert_eq!(
            ClientApp::from_client_app_used("Exchange ActiveSync"),
            ExchangeActiveSync
        );
        assert_eq!(ClientApp::from_client_app_used("IMAP4"), Other);
        assert_eq!(ClientApp::from_client_app_used(""), Other);
    }

    #[test]
    fn impact_severity_order_matches_design() {
        let order = [
            Impact::Blocked,
            Impact::PasswordChange,
            Impact::MfaRegistration,
            Impact::MfaPrompt,
            Impact::InteractiveReauth,
            Impact::RegistrationNudge,
            Impact::Satisfied,
            Impact::NotApplied,
        ];
        for w in order.windows(2) {
            assert!(w[0].severity() > w[1].severity(), "{} vs {}", w[0], w[1]);
        }
    }
}
