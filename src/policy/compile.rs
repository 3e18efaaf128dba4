//! Validation and compilation of one Graph policy: raw strings to enums, ids to directory
//! indices, device-filter rules to ASTs. Everything the engine could trip on is found here.
//!
//! In: `model::Policy` and the `Directory`. Out: a `CompiledPolicy` and `Finding`s, each naming
//! the JSON pointer and the value. A field that affects evaluation and that ca-replay does not
//! implement is `Unsupported` (an error unless `--allow-unsupported`), never silently ignored.

use serde_json::Value;

use super::compiled::*;
use super::device_filter::DeviceFilterRule;
use super::model::{self, Other, StrList};
use super::{Finding, Severity};
use crate::directory::Directory;
use crate::domain::{
    split_flags, BuiltInControl, ClientAppType, GuestKind, InsiderRiskLevel, Platform, PolicyState,
    RiskLevel, TransferMethod,
};
use crate::source::is_empty;

/// Collects findings for one policy.
pub struct Validator<'a> {
    pub policy: &'a str,
    pub origin: &'a Origin,
    pub findings: Vec<Finding>,
}

impl Validator<'_> {
    fn push(&mut self, severity: Severity, pointer: &str, message: String) {
        self.findings.push(Finding {
            severity,
            file: self.origin.file.clone(),
            policy: self.policy.to_owned(),
            pointer: format!("{}{}", self.origin.pointer, pointer),
            message,
        });
    }
    fn error(&mut self, pointer: &str, message: String) {
        self.push(Severity::Error, pointer, message)
    }
    fn unsupported(&mut self, pointer: &str, message: String) {
        self.push(Severity::Unsupported, pointer, message)
    }
    fn warning(&mut self, pointer: &str, message: String) {
        self.push(Severity::Warning, pointer, message)
    }

    /// Keys the model does not know: an unsupported condition when set, else nothing.
    fn other(&mut self, pointer: &str, other: &Other, what: Severity) {
        for (k, v) in other {
            if k == "@odata.type" || is_empty(v) {
                continue;
            }
            let msg = format!(
                "`{k}` is set ({}) and ca-replay does not evaluate it",
                short(v)
            );
            self.push(what, &format!("{pointer}/{k}"), msg);
        }
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

/// A Graph object id: a GUID.
pub fn is_guid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn not_an_id(value: &str) -> String {
    if value.starts_with('<') || value.contains("xxxx") || value.contains("yyyy") {
        format!("placeholder `{value}` where an object id is expected")
    } else if value.contains('@') {
        format!("`{value}` is a user principal name; Graph policies reference users by object id")
    } else {
        format!("`{value}` is not an object id (a display name or placeholder?)")
    }
}

pub fn compile(
    raw: &model::Policy,
    id: String,
    origin: Origin,
    dir: &Directory,
    symbols: &mut Symbols,
) -> (Option<CompiledPolicy>, Vec<Finding>) {
    let display_name = raw.display_name.as_str().unwrap_or_default();
    let label = if display_name.is_empty() {
        id.clone()
    } else {
        display_name.clone()
    };
    let mut v = Validator {
        policy: &label,
        origin: &origin,
        findings: Vec::new(),
    };
    let state = match raw.state.as_str() {
        Some(s) => match PolicyState::parse(&s) {
            Some(st) => st,
            None => {
                v.error("/state", format!("unknown state `{s}`"));
                PolicyState::Disabled
            }
        },
        None => {
            v.error("/state", "policy has no `state`".into());
            PolicyState::Disabled
        }
    };
    for (k, val) in &raw.other {
        if k == "@odata.type" || k == "@odata.id" || is_empty(val) {
            continue;
        }
        v.warning(
            &format!("/{k}"),
            format!("unknown top-level field `{k}` ({}) ignored", short(val)),
        );
    }
    if raw
        .partial_enablement_strategy
        .as_ref()
        .is_some_and(|p| !is_empty(p))
    {
        v.unsupported(
            "/partialEnablementStrategy",
            "`partialEnablementStrategy` is set; ca-replay evaluates the policy as fully enabled"
                .into(),
        );
    }
    let empty = model::Conditions::default();
    let c = raw.conditions.as_ref().unwrap_or(&empty);
    if raw.conditions.is_none() {
        v.error("/conditions", "policy has no `conditions`".into());
    }
    v.other("/conditions", &c.other, Severity::Unsupported);
    for (field, value) in [("times", &c.times), ("deviceStates", &c.device_states)] {
        if value.as_ref().is_some_and(|x| !is_empty(x)) {
            v.unsupported(
                &format!("/conditions/{field}"),
                format!("deprecated condition `{field}` is set and ca-replay does not evaluate it"),
            );
        }
    }

    let users = c
        .users
        .as_ref()
        .map(|u| compile_users(u, dir, symbols, &mut v));
    let workload = c
        .client_applications
        .as_ref()
        .and_then(|w| compile_workload(w, &mut v));
    let users = match (&users, &workload) {
        (Some(u), Some(_)) if u.include.is_empty() => None,
        (Some(_), Some(_)) => {
            v.error(
                "/conditions/clientApplications",
                "a policy targets users or workload identities (`clientApplications`), not both; set `users.includeUsers` to [\"None\"]".into(),
            );
            users
        }
        _ => users,
    };
    if users.is_none() && workload.is_none() {
        v.error(
            "/conditions/users",
            "either `users` or `clientApplications` is required".into(),
        );
    }

    let apps = match &c.applications {
        Some(a) => compile_apps(a, &mut v),
        None => {
            v.error(
                "/conditions/applications",
                "`applications` is required".into(),
            );
            AppsCondition::default()
        }
    };
    if apps.targets_nothing() {
        v.warning(
            "/conditions/applications",
            "no application, user action or authentication context is included: the policy applies to nothing".into(),
        );
    }
    if !apps.user_actions.is_empty() && state == PolicyState::ReportOnly {
        v.warning(
            "/conditions/applications/includeUserActions",
            "Entra does not support report-only for user actions; the replay shows what enforcing it would do".into(),
        );
    }

    let client_app_types = compile_client_apps(&c.client_app_types, &mut v);
    let platforms = c
        .platforms
        .as_ref()
        .and_then(|p| compile_platforms(p, &mut v));
    let locations = c
        .locations
        .as_ref()
        .and_then(|l| compile_locations(l, dir, &mut v));
    let sign_in_risk = risk_mask(
        &c.sign_in_risk_levels,
        "/conditions/signInRiskLevels",
        &mut v,
    );
    let user_risk = risk_mask(&c.user_risk_levels, "/conditions/userRiskLevels", &mut v);
    let service_principal_risk = risk_mask(
        &c.service_principal_risk_levels,
        "/conditions/servicePrincipalRiskLevels",
        &mut v,
    );
    let insider_risk = flags_mask(
        &c.insider_risk_levels,
        "/conditions/insiderRiskLevels",
        InsiderRiskLevel::parse,
        &mut v,
    );
    let device_filter = c.devices.as_ref().and_then(|d| compile_devices(d, &mut v));
    let transfer_methods = c.authentication_flows.as_ref().and_then(|f| {
        v.other(
            "/conditions/authenticationFlows",
            &f.other,
            Severity::Unsupported,
        );
        flags_mask(
            &f.transfer_methods,
            "/conditions/authenticationFlows/transferMethods",
            TransferMethod::parse,
            &mut v,
        )
    });

    let grant = raw
        .grant_controls
        .as_ref()
        .map(|g| compile_grant(g, &mut v))
        .unwrap_or_default();
    let session = raw
        .session_controls
        .as_ref()
        .map(|s| compile_session(s, &mut v))
        .unwrap_or_default();
    if !grant.block && grant.controls.is_empty() && session.controls.is_empty() {
        v.warning(
            "/grantControls",
            "policy has neither grant nor session controls (Entra's `emptyPolicy`)".into(),
        );
    }
    validate_combinations(&grant, user_risk.is_some(), &mut v);
    if workload.is_some() && users.is_none() && !grant.controls.is_empty() {
        v.error(
            "/grantControls/builtInControls",
            "workload identity policies support only the `block` grant (§1.6)".into(),
        );
    }

    let findings = v.findings;
    let compiled = CompiledPolicy {
        id,
        display_name: label,
        state,
        kind: PolicyKind::ConditionalAccess,
        origin,
        users,
        workload,
        apps,
        client_app_types,
        platforms,
        locations,
        sign_in_risk,
        user_risk,
        service_principal_risk,
        insider_risk,
        device_filter,
        transfer_methods,
        grant,
        session,
        registration_start: None,
        accepted_unsupported: Vec::new(),
    };
    (Some(compiled), findings)
}

pub(crate) fn compile_users(
    u: &model::Users,
    dir: &Directory,
    symbols: &mut Symbols,
    v: &mut Validator,
) -> UsersCondition {
    const P: &str = "/conditions/users";
    v.other(P, &u.other, Severity::Unsupported);
    let mut cond = UsersCondition::default();
    let mut saw_none = false;
    for (include, list, field) in [
        (true, &u.include_users, "includeUsers"),
        (false, &u.exclude_users, "excludeUsers"),
    ] {
        for (i, raw) in list.iter().enumerate() {
            let pointer = format!("{P}/{field}/{i}");
            let t = raw.trim();
            let target = if t.eq_ignore_ascii_case("All") {
                if !include {
                    v.error(&pointer, "`All` cannot be excluded".into());
                    continue;
                }
                UserRef::All
            } else if t.eq_ignore_ascii_case("None") {
                if include {
                    saw_none = true;
                }
                continue;
            } else if t.eq_ignore_ascii_case("GuestsOrExternalUsers") {
                UserRef::GuestsOrExternal
            } else if is_guid(t) {
                if dir.provided.users && dir.user_by_id(t).is_none_or(|x| !dir.user(x).listed) {
                    v.warning(
                        &pointer,
                        format!("user `{t}` is not in the directory: it matches no sign-in of a listed user"),
                    );
                }
                // Policy-referenced user ids are interned before compiling (PolicySet::build).
                match dir.user_by_id(t) {
                    Some(x) => UserRef::User(x),
                    None => {
                        v.error(&pointer, format!("user `{t}` was not interned"));
                        continue;
                    }
                }
            } else if t.eq_ignore_ascii_case("Current administrator will be excluded") {
                v.warning(
                    &pointer,
                    "template placeholder `Current administrator will be excluded`: Entra replaces it with the creating admin's id; it excludes nobody here".into(),
                );
                continue;
            } else {
                v.error(&pointer, not_an_id(t));
                continue;
            };
            cond_push(&mut cond, include, pointer, raw, target);
        }
    }
    for (include, list, field) in [
        (true, &u.include_groups, "includeGroups"),
        (false, &u.exclude_groups, "excludeGroups"),
    ] {
        for (i, raw) in list.iter().enumerate() {
            let pointer = format!("{P}/{field}/{i}");
            let t = raw.trim();
            if !is_guid(t) {
                v.error(&pointer, not_an_id(t));
                continue;
            }
            let target = match dir.group_by_id(t) {
                Some(g) => UserRef::Group(symbols.group(g)),
                None => {
                    if dir.provided.groups {
                        v.warning(
                            &pointer,
                            format!("group `{t}` is not in groups.json: it matches nobody"),
                        );
                    }
                    UserRef::MissingGroup
                }
            };
            cond_push(&mut cond, include, pointer, raw, target);
        }
    }
    for (include, list, field) in [
        (true, &u.include_roles, "includeRoles"),
        (false, &u.exclude_roles, "excludeRoles"),
    ] {
        for (i, raw) in list.iter().enumerate() {
            let pointer = format!("{P}/{field}/{i}");
            let t = raw.trim();
            if !is_guid(t) {
                v.error(
                    &pointer,
                    format!("`{t}` is not a role template id (roles are referenced by the built-in role's template GUID)"),
                );
                continue;
            }
            cond_push(
                &mut cond,
                include,
                pointer,
                raw,
                UserRef::Role(symbols.role(t)),
            );
        }
    }
    for (include, g, field) in [
        (
            true,
            &u.include_guests_or_external_users,
            "includeGuestsOrExternalUsers",
        ),
        (
            false,
            &u.exclude_guests_or_external_users,
            "excludeGuestsOrExternalUsers",
        ),
    ] {
        let Some(g) = g else { continue };
        let pointer = format!("{P}/{field}");
        v.other(&pointer, &g.other, Severity::Unsupported);
        let Some(kinds) = flags_mask(
            &g.guest_or_external_user_types,
            &format!("{pointer}/guestOrExternalUserTypes"),
            GuestKind::parse,
            v,
        ) else {
            if g.external_tenants
                .as_ref()
                .is_some_and(|t| !t.members.is_empty())
            {
                v.error(
                    &pointer,
                    "`externalTenants` is set but `guestOrExternalUserTypes` is empty".into(),
                );
            }
            continue;
        };
        let tenants = match &g.external_tenants {
            None => None,
            Some(t) => {
                v.other(
                    &format!("{pointer}/externalTenants"),
                    &t.other,
                    Severity::Unsupported,
                );
                let kind = t.membership_kind.as_str().unwrap_or_default();
                if kind.eq_ignore_ascii_case("enumerated") || !t.members.is_empty() {
                    Some(
                        t.members
                            .iter()
                            .map(|m| m.trim().to_ascii_lowercase())
                            .collect(),
                    )
                } else if kind.is_empty() || kind.eq_ignore_ascii_case("all") {
                    None
                } else {
                    v.unsupported(
                        &format!("{pointer}/externalTenants/membershipKind"),
                        format!("unknown `membershipKind` `{kind}`"),
                    );
                    None
                }
            }
        };
        let raw = g.guest_or_external_user_types.0.join(",");
        cond_push(
            &mut cond,
            include,
            pointer,
            &raw,
            UserRef::External(ExternalUsers { kinds, tenants }),
        );
    }
    cond.include_none = saw_none && cond.include.is_empty();
    cond
}

fn cond_push(
    cond: &mut UsersCondition,
    include: bool,
    pointer: String,
    raw: &str,
    target: UserRef,
) {
    let e = Entry {
        pointer,
        raw: raw.trim().to_owned(),
        target,
    };
    if include {
        cond.include.push(e)
    } else {
        cond.exclude.push(e)
    }
}

fn compile_workload(w: &model::ClientApplications, v: &mut Validator) -> Option<WorkloadCondition> {
    const P: &str = "/conditions/clientApplications";
    if w.include_service_principals.is_empty()
        && w.exclude_service_principals.is_empty()
        && w.service_principal_filter
            .as_ref()
            .is_none_or(|f| f.rule.as_str().is_none())
        && w.other.values().all(is_empty)
    {
        return None;
    }
    v.other(P, &w.other, Severity::Unsupported);
    if w.service_principal_filter
        .as_ref()
        .is_some_and(|f| f.rule.as_str().is_some())
    {
        v.unsupported(
            &format!("{P}/servicePrincipalFilter"),
            "`servicePrincipalFilter` reads custom security attributes, which no input carries"
                .into(),
        );
    }
    let mut cond = WorkloadCondition::default();
    for (include, list, field) in [
        (
            true,
            &w.include_service_principals,
            "includeServicePrincipals",
        ),
        (
            false,
            &w.exclude_service_principals,
            "excludeServicePrincipals",
        ),
    ] {
        for (i, raw) in list.iter().enumerate() {
            let pointer = format!("{P}/{field}/{i}");
            let t = raw.trim();
            let target = if t.eq_ignore_ascii_case("ServicePrincipalsInMyTenant") {
                ServicePrincipalRef::AllInTenant
            } else if is_guid(t) {
                ServicePrincipalRef::Id(t.to_ascii_lowercase())
            } else {
                v.error(&pointer, not_an_id(t));
                continue;
            };
            let e = Entry {
                pointer,
                raw: t.to_owned(),
                target,
            };
            if include {
                cond.include.push(e)
            } else {
                cond.exclude.push(e)
            }
        }
    }
    Some(cond)
}

fn compile_apps(a: &model::Applications, v: &mut Validator) -> AppsCondition {
    const P: &str = "/conditions/applications";
    v.other(P, &a.other, Severity::Unsupported);
    if a.application_filter
        .as_ref()
        .is_some_and(|f| f.rule.as_str().is_some())
    {
        v.unsupported(
            &format!("{P}/applicationFilter"),
            "`applicationFilter` reads custom security attributes of apps, which no input carries"
                .into(),
        );
    }
    for (field, value) in [
        ("networkAccess", &a.network_access),
        ("globalSecureAccess", &a.global_secure_access),
    ] {
        if value.as_ref().is_some_and(|x| !is_empty(x)) {
            v.unsupported(
                &format!("{P}/{field}"),
                format!("`{field}` (Global Secure Access traffic profiles) is not evaluated"),
            );
        }
    }
    let mut cond = AppsCondition::default();
    for (include, list, field) in [
        (true, &a.include_applications, "includeApplications"),
        (false, &a.exclude_applications, "excludeApplications"),
    ] {
        for (i, raw) in list.iter().enumerate() {
            let pointer = format!("{P}/{field}/{i}");
            let t = raw.trim();
            let target = if t.eq_ignore_ascii_case("All") {
                if !include {
                    v.error(&pointer, "`All` cannot be excluded".into());
                    continue;
                }
                AppRef::All
            } else if t.eq_ignore_ascii_case("None") {
                continue;
            } else if t.eq_ignore_ascii_case("Office365") {
                AppRef::Bundle(Bundle::Office365)
            } else if t.eq_ignore_ascii_case("MicrosoftAdminPortals") {
                AppRef::Bundle(Bundle::MicrosoftAdminPortals)
            } else if is_guid(t) {
                AppRef::Id(crate::signin::lower_sym(t))
            } else if t.len() > 3
                && t.chars().all(|c| c.is_ascii_alphanumeric())
                && t.starts_with(|c: char| c.is_ascii_uppercase())
            {
                // A Graph keyword ca-replay does not know (e.g. `AllAgentIdResources`).
                v.unsupported(&pointer, format!("unknown application keyword `{t}`"));
                continue;
            } else {
                v.error(&pointer, not_an_id(t));
                continue;
            };
            let e = Entry {
                pointer,
                raw: t.to_owned(),
                target,
            };
            if include {
                cond.include.push(e)
            } else {
                cond.exclude.push(e)
            }
        }
    }
    for (i, raw) in a.include_user_actions.iter().enumerate() {
        let pointer = format!("{P}/includeUserActions/{i}");
        let action = match raw.trim().to_ascii_lowercase().as_str() {
            "urn:user:registersecurityinfo" => UserAction::RegisterSecurityInfo,
            "urn:user:registerdevice" => UserAction::RegisterDevice,
            other => {
                v.unsupported(&pointer, format!("unknown user action `{other}`"));
                continue;
            }
        };
        cond.user_actions.push(Entry {
            pointer,
            raw: raw.clone(),
            target: action,
        });
    }
    for (i, raw) in a
        .include_authentication_context_class_references
        .iter()
        .enumerate()
    {
        let pointer = format!("{P}/includeAuthenticationContextClassReferences/{i}");
        let t = raw.trim().to_ascii_lowercase();
        let valid = t
            .strip_prefix('c')
            .and_then(|n| n.parse::<u8>().ok())
            .is_some_and(|n| (1..=99).contains(&n));
        if !valid {
            v.warning(
                &pointer,
                format!("authentication context `{raw}` is not of the form `c1`…`c99`"),
            );
        }
        cond.auth_contexts.push(Entry {
            pointer,
            raw: raw.clone(),
            target: t,
        });
    }
    if cond.include.iter().any(|e| e.target == AppRef::All) && cond.include.len() > 1 {
        v.warning(
            &format!("{P}/includeApplications"),
            "`All` is listed with other applications; the others add nothing".into(),
        );
    }
    cond
}

// An unknown value (accepted with `--allow-unsupported`) is left out of its list, but a list
// that held only unknown values stays an empty list that matches nothing: it never widens into
// "not configured", which would match everything.

fn compile_client_apps(list: &StrList, v: &mut Validator) -> Option<Vec<ClientAppType>> {
    let mut out = Vec::new();
    let mut unknown = false;
    for (i, raw) in list.iter().enumerate() {
        match ClientAppType::parse(raw) {
            Some(ClientAppType::All) => return None,
            Some(t) => out.push(t),
            None => {
                unknown = true;
                v.unsupported(
                    &format!("/conditions/clientAppTypes/{i}"),
                    format!("unknown client app type `{raw}`"),
                )
            }
        }
    }
    if out.is_empty() && !unknown {
        None
    } else {
        Some(out)
    }
}

fn compile_platforms(p: &model::Platforms, v: &mut Validator) -> Option<PlatformsCondition> {
    const P: &str = "/conditions/platforms";
    v.other(P, &p.other, Severity::Unsupported);
    if p.include_platforms.is_empty() && p.exclude_platforms.is_empty() {
        return None;
    }
    let mut cond = PlatformsCondition {
        include_all: false,
        include: Mask::default(),
        exclude: Mask::default(),
    };
    for (include, list, field) in [
        (true, &p.include_platforms, "includePlatforms"),
        (false, &p.exclude_platforms, "excludePlatforms"),
    ] {
        for (i, raw) in list.iter().enumerate() {
            let t = raw.trim();
            if t.eq_ignore_ascii_case("all") {
                if include {
                    cond.include_all = true;
                } else {
                    v.error(
                        &format!("{P}/{field}/{i}"),
                        "`all` cannot be excluded".into(),
                    );
                }
                continue;
            }
            match Platform::parse(t).filter(|x| *x != Platform::Unknown) {
                Some(pl) => {
                    if include {
                        cond.include = cond.include.with(pl as usize);
                    } else {
                        cond.exclude = cond.exclude.with(pl as usize);
                    }
                }
                None => v.unsupported(
                    &format!("{P}/{field}/{i}"),
                    format!("unknown platform `{t}`"),
                ),
            }
        }
    }
    if !cond.include_all && cond.include.is_empty() {
        v.error(
            &format!("{P}/includePlatforms"),
            "platforms are excluded but none is included: the condition matches nothing".into(),
        );
    }
    Some(cond)
}

fn compile_locations(
    l: &model::Locations,
    dir: &Directory,
    v: &mut Validator,
) -> Option<LocationsCondition> {
    const P: &str = "/conditions/locations";
    v.other(P, &l.other, Severity::Unsupported);
    if l.include_locations.is_empty() && l.exclude_locations.is_empty() {
        return None;
    }
    let mut cond = LocationsCondition::default();
    for (include, list, field) in [
        (true, &l.include_locations, "includeLocations"),
        (false, &l.exclude_locations, "excludeLocations"),
    ] {
        for (i, raw) in list.iter().enumerate() {
            let pointer = format!("{P}/{field}/{i}");
            let t = raw.trim();
            let target = if t.eq_ignore_ascii_case("All") {
                LocationRef::All
            } else if t.eq_ignore_ascii_case("AllTrusted") {
                LocationRef::AllTrusted
            } else if t == "00000000-0000-0000-0000-000000000000" {
                LocationRef::MfaTrustedIps
            } else if is_guid(t) || dir.location(t).is_some() {
                match dir.location(t) {
                    Some(_) => LocationRef::Named(
                        dir.named_locations
                            .iter()
                            .position(|n| n.id.eq_ignore_ascii_case(t))
                            .unwrap_or(usize::MAX),
                    ),
                    None => {
                        v.warning(
                            &pointer,
                            format!("named location `{t}` is not in namedLocations: sign-ins it would decide are indeterminate"),
                        );
                        LocationRef::Missing
                    }
                }
            } else {
                v.error(&pointer, not_an_id(t));
                continue;
            };
            if let LocationRef::Named(idx) = target {
                if let Some(LocationKind::Country { gps: true, .. }) =
                    dir.named_locations.get(idx).map(|n| &n.kind)
                {
                    v.warning(
                        &pointer,
                        format!("named location `{t}` looks up the country by Authenticator GPS, which logs do not carry: decisions on it are indeterminate"),
                    );
                }
            }
            let e = Entry {
                pointer,
                raw: t.to_owned(),
                target,
            };
            if include {
                cond.include.push(e)
            } else {
                cond.exclude.push(e)
            }
        }
    }
    if cond.include.is_empty() {
        // Graph requires includeLocations; an exclude-only condition behaves as "All minus".
        v.warning(
            &format!("{P}/includeLocations"),
            "locations are excluded but none is included; treated as `All` minus the exclusions"
                .into(),
        );
        cond.include.push(Entry {
            pointer: format!("{P}/includeLocations"),
            raw: "All".into(),
            target: LocationRef::All,
        });
    }
    Some(cond)
}

use crate::directory::LocationKind;

fn risk_mask(list: &StrList, pointer: &str, v: &mut Validator) -> Option<Mask> {
    let mut mask = Mask::default();
    let mut unknown = false;
    for (i, raw) in list.iter().enumerate() {
        match RiskLevel::parse(raw) {
            Some(l) => mask = mask.with(l as usize),
            None => {
                unknown = true;
                v.unsupported(
                    &format!("{pointer}/{i}"),
                    format!("unknown risk level `{raw}`"),
                )
            }
        }
    }
    if mask.is_empty() && !unknown {
        None
    } else {
        Some(mask)
    }
}

fn flags_mask<T: Copy + Into<usize>>(
    list: &StrList,
    pointer: &str,
    parse: fn(&str) -> Option<T>,
    v: &mut Validator,
) -> Option<Mask> {
    let mut mask = Mask::default();
    let mut unknown = false;
    for flag in split_flags(&list.0) {
        if flag.eq_ignore_ascii_case("none") {
            continue;
        }
        match parse(flag) {
            Some(x) => mask = mask.with(x.into()),
            None => {
                unknown = true;
                v.unsupported(pointer, format!("unknown value `{flag}`"))
            }
        }
    }
    if mask.is_empty() && !unknown {
        None
    } else {
        Some(mask)
    }
}

macro_rules! into_usize {
    ($($t:ty),*) => {$(impl From<$t> for usize { fn from(x: $t) -> usize { x as usize } })*};
}
into_usize!(GuestKind, InsiderRiskLevel, TransferMethod);

fn compile_devices(d: &model::Devices, v: &mut Validator) -> Option<DeviceFilter> {
    const P: &str = "/conditions/devices";
    v.other(P, &d.other, Severity::Unsupported);
    for (field, list) in [
        ("includeDevices", &d.include_devices),
        ("excludeDevices", &d.exclude_devices),
        ("includeDeviceStates", &d.include_device_states),
        ("excludeDeviceStates", &d.exclude_device_states),
    ] {
        if !list.is_empty() {
            v.unsupported(
                &format!("{P}/{field}"),
                format!("deprecated device condition `{field}` is set and ca-replay does not evaluate it"),
            );
        }
    }
    let f = d.device_filter.as_ref()?;
    v.other(
        &format!("{P}/deviceFilter"),
        &f.other,
        Severity::Unsupported,
    );
    let rule_text = f.rule.as_str().unwrap_or_default();
    if rule_text.trim().is_empty() {
        if f.mode.as_str().is_some_and(|m| !m.trim().is_empty()) {
            v.error(
                &format!("{P}/deviceFilter/rule"),
                "the device filter has a mode but no rule".to_owned(),
            );
        }
        // `{"mode": null, "rule": null}`: the SDK's empty object, no filter.
        return None;
    }
    let mode = match f
        .mode
        .as_str()
        .unwrap_or_default()
        .to_ascii_lowercase()
        .as_str()
    {
        "include" => FilterMode::Include,
        "exclude" => FilterMode::Exclude,
        other => {
            v.error(
                &format!("{P}/deviceFilter/mode"),
                format!("device filter mode `{other}` is neither `include` nor `exclude`"),
            );
            return None;
        }
    };
    match DeviceFilterRule::parse(&rule_text) {
        Ok(rule) => Some(DeviceFilter { mode, rule }),
        Err(e) => {
            v.error(
                &format!("{P}/deviceFilter/rule"),
                format!("device filter rule: {e}"),
            );
            None
        }
    }
}

fn compile_grant(g: &model::GrantControls, v: &mut Validator) -> Grant {
    const P: &str = "/grantControls";
    v.other(P, &g.other, Severity::Unsupported);
    let mut grant = Grant::default();
    match g.operator.as_str() {
        None => {}
        Some(op) if op.eq_ignore_ascii_case("and") => grant.operator = Operator::And,
        Some(op) if op.eq_ignore_ascii_case("or") => grant.operator = Operator::Or,
        Some(op) => v.error(&format!("{P}/operator"), format!("unknown operator `{op}`")),
    }
    for (i, raw) in g.built_in_controls.iter().enumerate() {
        let pointer = format!("{P}/builtInControls/{i}");
        match BuiltInControl::parse(raw) {
            Some(BuiltInControl::Block) => grant.block = true,
            Some(BuiltInControl::Mfa) => grant.controls.push(Control::Mfa),
            Some(BuiltInControl::CompliantDevice) => grant.controls.push(Control::CompliantDevice),
            Some(BuiltInControl::DomainJoinedDevice) => {
                grant.controls.push(Control::DomainJoinedDevice)
            }
            Some(BuiltInControl::ApprovedApplication) => {
                grant.controls.push(Control::ApprovedApplication)
            }
            Some(BuiltInControl::CompliantApplication) => {
                grant.controls.push(Control::CompliantApplication)
            }
            Some(BuiltInControl::PasswordChange) => grant.controls.push(Control::PasswordChange),
            Some(BuiltInControl::RiskRemediation) => grant.controls.push(Control::RiskRemediation),
            None if raw.eq_ignore_ascii_case("unknownFutureValue") => v.unsupported(
                &pointer,
                "`unknownFutureValue`: the export hides a newer control; export with `Prefer: include-unknown-enum-members`".into(),
            ),
            None => v.error(&pointer, format!("`{raw}` is not a Graph grant control")),
        }
    }
    for (i, id) in g.terms_of_use.iter().enumerate() {
        if !is_guid(id.trim()) {
            v.error(&format!("{P}/termsOfUse/{i}"), not_an_id(id.trim()));
        }
        grant
            .controls
            .push(Control::TermsOfUse(id.trim().to_owned()));
    }
    for (i, id) in g.custom_authentication_factors.iter().enumerate() {
        if id.trim().is_empty() {
            v.error(
                &format!("{P}/customAuthenticationFactors/{i}"),
                "empty custom control id".into(),
            );
            continue;
        }
        grant
            .controls
            .push(Control::CustomControl(id.trim().to_owned()));
    }
    if let Some(s) = &g.authentication_strength {
        // The rest of an authenticationStrengthPolicy (combinations, dates, description) is
        // read-only metadata of the strength; ca-replay treats any strength as MFA (issue scope).
        match s.id.as_str() {
            Some(id) => grant.controls.push(Control::AuthenticationStrength {
                id,
                name: s.display_name.as_str().unwrap_or_default(),
            }),
            // The SDK writes an all-null object for "no strength"; anything else without an id
            // cannot be evaluated.
            None if s.display_name.as_str().is_some() => v.error(
                "/grantControls/authenticationStrength/id",
                format!(
                    "authentication strength `{}` has no `id`",
                    s.display_name.as_str().unwrap_or_default()
                ),
            ),
            None => {}
        }
    }
    grant
}

fn compile_session(s: &model::SessionControls, v: &mut Validator) -> Session {
    const P: &str = "/sessionControls";
    // Session controls are reported, not decided: an unknown one is a warning.
    v.other(P, &s.other, Severity::Warning);
    let mut session = Session::default();
    let named: [(&str, &Option<Value>); 9] = [
        ("persistentBrowser", &s.persistent_browser),
        ("cloudAppSecurity", &s.cloud_app_security),
        (
            "applicationEnforcedRestrictions",
            &s.application_enforced_restrictions,
        ),
        ("disableResilienceDefaults", &s.disable_resilience_defaults),
        (
            "continuousAccessEvaluation",
            &s.continuous_access_evaluation,
        ),
        ("secureSignInSession", &s.secure_sign_in_session),
        ("networkAccessSecurity", &s.network_access_security),
        (
            "globalSecureAccessFilteringProfile",
            &s.global_secure_access_filtering_profile,
        ),
        ("blockSensitiveActions", &s.block_sensitive_actions),
    ];
    for (name, value) in named {
        let on = match value {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::Object(m)) => match m.get("isEnabled") {
                Some(Value::Bool(b)) => *b,
                Some(Value::String(x)) => x.eq_ignore_ascii_case("true"),
                _ => !is_empty(&Value::Object(m.clone())),
            },
            Some(other) => !is_empty(other),
        };
        if on {
            session.controls.push(name.to_owned());
        }
    }
    if let Some(f) = &s.sign_in_frequency {
        v.other(&format!("{P}/signInFrequency"), &f.other, Severity::Warning);
        if f.is_enabled.as_bool().unwrap_or(false) {
            session.controls.push("signInFrequency".to_owned());
            let interval = f.frequency_interval.as_str().unwrap_or_default();
            session.sign_in_frequency_every_time = interval.eq_ignore_ascii_case("everyTime");
        }
    }
    session
}

/// Combinations Graph rejects or that cannot work (entra-semantics.md §1.11).
fn validate_combinations(grant: &Grant, has_user_risk: bool, v: &mut Validator) {
    let has = |c: &Control| grant.controls.contains(c);
    let pwd = has(&Control::PasswordChange);
    let remediation = has(&Control::RiskRemediation);
    if pwd && remediation {
        v.error(
            "/grantControls/builtInControls",
            "`passwordChange` and `riskRemediation` are mutually exclusive".into(),
        );
    }
    if pwd && !(has(&Control::Mfa) && grant.operator == Operator::And) {
        v.error(
            "/grantControls/builtInControls",
            "`passwordChange` must be accompanied by `mfa` with the `AND` operator".into(),
        );
    }
    if remediation
        && !(grant.operator == Operator::And
            && grant
                .controls
                .iter()
                .any(|c| matches!(c, Control::AuthenticationStrength { .. })))
    {
        v.error(
            "/grantControls/builtInControls",
            "`riskRemediation` must be accompanied by an authentication strength with `AND`".into(),
        );
    }
    if (pwd || remediation) && !has_user_risk {
        v.error(
            "/grantControls/builtInControls",
            "`passwordChange` / `riskRemediation` are allowed only in policies with `userRiskLevels`".into(),
        );
    }
    if grant.block && !grant.controls.is_empty() {
        v.warning(
            "/grantControls/builtInControls",
            "`block` is combined with other controls; block wins and the others never apply".into(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_shape() {
        assert!(is_guid("62e90394-69f5-4237-9190-012177145e10"));
        assert!(!is_guid("xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"));
        assert!(!is_guid("<Group>"));
    }

    #[test]
    fn not_an_id_explains() {
        assert!(not_an_id("<EmergencyAccessAccountsGroup>").starts_with("placeholder"));
        assert!(not_an_id("william@fortigi.nl").contains("user principal name"));
        assert!(not_an_id("CA-01 - Exclusion").contains("not an object id"));
    }
}
