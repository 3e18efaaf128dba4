//! The synthetic tenant's directory, policies and settings (design.md "Inputs"), as Graph JSON.
//!
//! Everything is derived from the seed: the same options give byte-identical files.

use serde_json::{json, Value};

use super::rng::Rng;
use crate::directory::roles::built_in_role_name;

pub const TENANT_ID: &str = "0e2d1a77-5b3c-4d5e-8f60-7a8b9c0d1e2f";
pub const DOMAIN: &str = "contoso.com";

/// The 14 admin roles of Microsoft's "Require multifactor authentication for admins" template
/// (entra-semantics.md §4.4).
pub const ADMIN_ROLES: [&str; 14] = [
    "62e90394-69f5-4237-9190-012177145e10",
    "194ae4cb-b126-40b2-bd5b-6091b380977d",
    "f28a1f50-f6e7-4571-818b-6a12f2af6b6c",
    "29232cdf-9323-42fd-ade2-1d097af3e4de",
    "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9",
    "729827e3-9c14-49f7-bb1b-9608f156bbb8",
    "b0f54661-2d74-4c50-afa3-1ec803f12efe",
    "fe930be7-5e62-47db-91af-98c3a49a38b1",
    "c4e39bd9-1100-46d3-8c65-fb160da0071f",
    "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
    "158c047a-c907-4556-b7ef-446551a6b5f7",
    "966707d0-3269-4727-9be2-8c3a10f19b9d",
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
    "e8611ab8-c189-46e8-94e1-60213ab1f814",
];
const GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";
const DIRECTORY_SYNC: &str = "d29b2b05-8046-44ba-8758-1e26182fcf32";
const AZURE_MANAGEMENT: &str = "797f4846-ba00-4fd7-ba43-dac1f8f63013";

/// Who a user is, for the sign-in model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Member,
    Admin,
    BreakGlass,
    Service,
    /// B2B collaboration guest (`userType` Guest, invited from another tenant).
    Guest,
    /// B2B collaboration member (`userType` Member, home tenant elsewhere).
    ExternalMember,
    /// A local guest account (`userType` Guest, home = this tenant).
    InternalGuest,
}

#[derive(Debug, Clone)]
pub struct Laptop {
    pub device_id: String,
    pub name: String,
    pub os: &'static str,
    pub trust_type: &'static str,
    pub compliant: bool,
}

#[derive(Debug, Clone)]
pub struct GenUser {
    pub id: String,
    pub upn: String,
    pub display_name: String,
    pub kind: Kind,
    pub home_tenant: String,
    /// Index into `Office`: where the user usually works from.
    pub office: usize,
    /// Relative sign-in activity.
    pub activity: f64,
    pub registered: bool,
    pub capable: bool,
    pub laptop: Option<Laptop>,
    /// Phone OS and whether it is registered (and compliant) in Entra.
    pub phone: Option<(&'static str, Option<(String, bool)>)>,
}

pub struct Office {
    pub name: &'static str,
    pub ip_base: [u8; 3],
    pub country: &'static str,
    pub city: &'static str,
}

/// Trusted IP ranges of the named locations (the first three) and the VPN egress.
pub const OFFICES: [Office; 3] = [
    Office {
        name: "HQ Amsterdam",
        ip_base: [203, 0, 113],
        country: "NL",
        city: "Amsterdam",
    },
    Office {
        name: "Branch Seattle",
        ip_base: [198, 51, 100],
        country: "US",
        city: "Seattle",
    },
    Office {
        name: "Branch Berlin",
        ip_base: [192, 0, 2],
        country: "DE",
        city: "Berlin",
    },
];

pub struct Generated {
    pub users: Vec<GenUser>,
    pub files: Vec<(String, Value)>,
    /// Ids of the policies (for the sign-ins' service principal model).
    pub service_principals: Vec<(String, String)>,
}

const FIRST: [&str; 24] = [
    "Adele",
    "Alex",
    "Diego",
    "Grady",
    "Henrietta",
    "Isaiah",
    "Johanna",
    "Joni",
    "Lee",
    "Lidia",
    "Lynne",
    "Megan",
    "Miriam",
    "Nestor",
    "Patti",
    "Pradeep",
    "Ana",
    "Bram",
    "Chen",
    "Dara",
    "Emeka",
    "Fatima",
    "Giulia",
    "Hiro",
];
const LAST: [&str; 24] = [
    "Vance",
    "Wilber",
    "Siciliani",
    "Archie",
    "Mueller",
    "Langer",
    "Lorenz",
    "Sherman",
    "Gu",
    "Holloway",
    "Robbins",
    "Bowen",
    "Graham",
    "Wilke",
    "Fernandez",
    "Gupta",
    "de Vries",
    "Jansen",
    "Li",
    "Okafor",
    "Haddad",
    "Rossi",
    "Tanaka",
    "Novak",
];
const DEPARTMENTS: [&str; 6] = ["Sales", "Engineering", "Finance", "HR", "Marketing", "IT"];

fn user_json(u: &GenUser) -> Value {
    let (user_type, creation, state) = match u.kind {
        Kind::Guest => ("Guest", json!("Invitation"), json!("Accepted")),
        Kind::ExternalMember => ("Member", json!("Invitation"), json!("Accepted")),
        Kind::InternalGuest => ("Guest", Value::Null, Value::Null),
        _ => ("Member", Value::Null, Value::Null),
    };
    json!({
        "id": u.id, "displayName": u.display_name, "userPrincipalName": u.upn,
        "userType": user_type, "accountEnabled": true, "creationType": creation,
        "externalUserState": state,
    })
}

fn member(kind: &str, id: &str) -> Value {
    json!({"@odata.type": format!("#microsoft.graph.{kind}"), "id": id})
}

/// Builds the users, groups, roles, registration, risk, locations, policies and settings.
pub fn build(rng: &mut Rng, users: usize, start: chrono::DateTime<chrono::Utc>) -> Generated {
    let users = users.max(20);
    let mut out: Vec<GenUser> = Vec::with_capacity(users);
    let partner_tenants: Vec<String> = (0..4).map(|_| rng.guid()).collect();
    for i in 0..users {
        let kind = match i {
            0 | 1 => Kind::BreakGlass,
            _ if i % 61 == 7 => Kind::Admin,
            _ if i % 47 == 5 => Kind::Service,
            _ if i % 19 == 3 => Kind::Guest,
            _ if i % 83 == 11 => Kind::ExternalMember,
            _ if i % 97 == 13 => Kind::InternalGuest,
            _ => Kind::Member,
        };
        let first = FIRST[rng.below(FIRST.len())];
        let last = LAST[rng.below(LAST.len())];
        let local = format!(
            "{}.{}{}",
            first.to_ascii_lowercase(),
            last.to_ascii_lowercase().replace(' ', ""),
            i
        );
        let (upn, display, home) = match kind {
            Kind::BreakGlass => (
                format!("bg{}@{DOMAIN}", i + 1),
                format!("Emergency Access {}", i + 1),
                TENANT_ID.to_owned(),
            ),
            Kind::Service => (
                format!(
                    "svc-{}{}@{DOMAIN}",
                    ["sync", "scan", "print", "backup"][i % 4],
                    i
                ),
                format!("Service account {i}"),
                TENANT_ID.to_owned(),
            ),
            Kind::Guest | Kind::ExternalMember => {
                let partner = ["fabrikam.com", "adatum.com", "tailspin.io", "woodgrove.net"][i % 4];
                (
                    format!("{local}_{partner}#EXT#@contosocorp.onmicrosoft.com"),
                    format!("{first} {last} ({partner})"),
                    partner_tenants[i % 4].clone(),
                )
            }
            _ => (
                format!("{local}@{DOMAIN}"),
                format!("{first} {last}"),
                TENANT_ID.to_owned(),
            ),
        };
        let internal = matches!(kind, Kind::Member | Kind::Admin);
        let registered = match kind {
            Kind::BreakGlass => true,
            Kind::Admin => rng.chance(0.97),
            Kind::Service => rng.chance(0.2),
            Kind::Member => rng.chance(0.86),
            _ => rng.chance(0.55),
        };
        let laptop = internal.then(|| {
            let os = *rng.pick(&["Windows10", "Windows10", "Windows10", "MacOs", "Linux"]);
            let trust_type = if os == "Windows10" {
                *rng.pick(&[
                    "Azure AD joined",
                    "Azure AD joined",
                    "Hybrid Azure AD joined",
                ])
            } else if os == "MacOs" {
                "Azure AD registered"
            } else {
                ""
            };
            Laptop {
                device_id: if trust_type.is_empty() {
                    String::new()
                } else {
                    rng.guid()
                },
                name: format!(
                    "CONTOSO-{}{:04}",
                    if os == "MacOs" { "MB" } else { "LT" },
                    i
                ),
                os,
                trust_type,
                compliant: !trust_type.is_empty() && rng.chance(0.93),
            }
        });
        let phone = (kind != Kind::Service && rng.chance(0.8)).then(|| {
            let os = *rng.pick(&["Ios 17.6.1", "Ios 18.1", "Android 14", "Android 13"]);
            let registered = (internal && rng.chance(0.55)).then(|| (rng.guid(), rng.chance(0.8)));
            (os, registered)
        });
        out.push(GenUser {
            id: rng.guid(),
            upn,
            display_name: display,
            kind,
            home_tenant: if kind == Kind::InternalGuest {
                TENANT_ID.to_owned()
            } else {
                home
            },
            office: rng.below(OFFICES.len()),
            activity: match kind {
                Kind::BreakGlass => 0.02,
                Kind::Service => 3.0,
                Kind::Guest | Kind::ExternalMember | Kind::InternalGuest => 0.3,
                _ => 0.4 + rng.unit() * 1.6,
            },
            registered,
            capable: registered && (kind == Kind::BreakGlass || rng.chance(0.97)),
            laptop,
            phone,
        });
    }
    let files = directory_files(rng, &out, start);
    let service_principals = (0..5)
        .map(|i| {
            (
                rng.guid(),
                [
                    "Contoso Nightly Export",
                    "HR Sync Connector",
                    "Backup Agent",
                    "Monitoring Probe",
                    "Invoice Processor",
                ][i]
                    .to_owned(),
            )
        })
        .collect();
    Generated {
        users: out,
        files,
        service_principals,
    }
}

fn directory_files(
    rng: &mut Rng,
    users: &[GenUser],
    start: chrono::DateTime<chrono::Utc>,
) -> Vec<(String, Value)> {
    let mut files = Vec::new();
    files.push((
        "users.json".to_owned(),
        page("users", users.iter().map(user_json).collect()),
    ));

    // Groups: break-glass nested in Admins-Emergency; departments; a pilot group that nests IT.
    let gid = |rng: &mut Rng| rng.guid();
    let bg_group = gid(rng);
    let emergency = gid(rng);
    let service_group = gid(rng);
    let dept_ids: Vec<String> = DEPARTMENTS.iter().map(|_| gid(rng)).collect();
    let pilot = gid(rng);
    let mut groups = vec![
        json!({"id": bg_group, "displayName": "Break-glass", "members": users.iter()
            .filter(|u| u.kind == Kind::BreakGlass).map(|u| member("user", &u.id)).collect::<Vec<_>>()}),
        json!({"id": emergency, "displayName": "Admins-Emergency", "members": [member("group", &bg_group)]}),
        json!({"id": service_group, "displayName": "Service Accounts", "members": users.iter()
            .filter(|u| u.kind == Kind::Service).map(|u| member("user", &u.id)).collect::<Vec<_>>()}),
    ];
    for (d, name) in DEPARTMENTS.iter().enumerate() {
        let members: Vec<Value> = users
            .iter()
            .enumerate()
            .filter(|(i, u)| {
                matches!(u.kind, Kind::Member | Kind::Admin) && i % DEPARTMENTS.len() == d
            })
            .map(|(_, u)| member("user", &u.id))
            .collect();
        groups.push(json!({"id": dept_ids[d], "displayName": name, "members": members}));
    }
    groups.push(
        json!({"id": pilot, "displayName": "MFA-Pilot", "members": [member("group", &dept_ids[5]),
        member("group", &dept_ids[1])]}),
    );
    files.push(("groups.json".to_owned(), page("groups", groups)));

    // Active role assignments at directory scope.
    let mut roles = Vec::new();
    let mut admin_no = 0;
    for u in users {
        let role = match u.kind {
            Kind::BreakGlass => Some(GLOBAL_ADMIN),
            Kind::Admin => {
                admin_no += 1;
                Some(ADMIN_ROLES[admin_no % ADMIN_ROLES.len()])
            }
            Kind::Service if u.upn.starts_with("svc-sync") => Some(DIRECTORY_SYNC),
            _ => None,
        };
        if let Some(r) = role {
            roles.push(
                json!({"id": rng.guid(), "principalId": u.id, "roleDefinitionId": r,
                              "directoryScopeId": "/"}),
            );
        }
    }
    files.push((
        "roleAssignments.json".to_owned(),
        page("roleManagement/directory/roleAssignments", roles),
    ));

    let registration: Vec<Value> = users
        .iter()
        .map(|u| {
            let methods: Vec<&str> = if u.registered {
                vec!["microsoftAuthenticatorPush", "mobilePhone"]
            } else {
                vec![]
            };
            json!({"id": u.id, "userPrincipalName": u.upn, "userDisplayName": u.display_name,
                   "isAdmin": matches!(u.kind, Kind::Admin | Kind::BreakGlass),
                   "isMfaRegistered": u.registered, "isMfaCapable": u.capable,
                   "isPasswordlessCapable": false, "methodsRegistered": methods,
                   "userType": if matches!(u.kind, Kind::Guest | Kind::InternalGuest) {"guest"} else {"member"}})
        })
        .collect();
    files.push((
        "userRegistrationDetails.json".to_owned(),
        page(
            "reports/authenticationMethods/userRegistrationDetails",
            registration,
        ),
    ));

    // Risky users: about 1% of members, with a history inside the window.
    let mut risky = Vec::new();
    for u in users.iter().filter(|u| u.kind == Kind::Member) {
        if !rng.chance(0.012) {
            continue;
        }
        let raised = start + chrono::Duration::hours(rng.below(24 * 10) as i64);
        let level = *rng.pick(&["low", "medium", "high"]);
        let mut history = vec![json!({"riskLevel": level, "riskState": "atRisk",
            "riskLastUpdatedDateTime": raised.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)})];
        let (level_now, state_now, updated) = if rng.chance(0.4) {
            let fixed = raised + chrono::Duration::hours(2 + rng.below(72) as i64);
            history.push(json!({"riskLevel": "none", "riskState": "remediated",
                "riskLastUpdatedDateTime": fixed.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}));
            ("none", "remediated", fixed)
        } else {
            (level, "atRisk", raised)
        };
        risky.push(
            json!({"id": u.id, "userPrincipalName": u.upn, "riskLevel": level_now,
            "riskState": state_now, "riskDetail": "none",
            "riskLastUpdatedDateTime": updated.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "history": history}),
        );
    }
    files.push((
        "riskyUsers.json".to_owned(),
        page("identityProtection/riskyUsers", risky),
    ));

    let mut locations: Vec<Value> = OFFICES
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let [a, b, c] = o.ip_base;
            let mut ranges = vec![json!({"@odata.type": "#microsoft.graph.iPv4CidrRange",
                                         "cidrAddress": format!("{a}.{b}.{c}.0/24")})];
            if i == 0 {
                ranges.push(json!({"@odata.type": "#microsoft.graph.iPv6CidrRange",
                                   "cidrAddress": "2001:db8:100::/48"}));
            }
            json!({"@odata.type": "#microsoft.graph.ipNamedLocation", "id": location_id(i),
                   "displayName": o.name, "isTrusted": true, "ipRanges": ranges})
        })
        .collect();
    locations.push(json!({"@odata.type": "#microsoft.graph.ipNamedLocation", "id": location_id(3),
        "displayName": "VPN egress", "isTrusted": true,
        "ipRanges": [{"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "100.64.10.0/28"}]}));
    locations.push(
        json!({"@odata.type": "#microsoft.graph.countryNamedLocation", "id": location_id(4),
        "displayName": "Blocked countries", "countriesAndRegions": ["KP", "IR", "RU", "BY"],
        "includeUnknownCountriesAndRegions": false, "countryLookupMethod": "clientIpAddress"}),
    );
    files.push((
        "namedLocations.json".to_owned(),
        page("identity/conditionalAccess/namedLocations", locations),
    ));

    for (name, p) in policies(&emergency) {
        files.push((format!("policies/{name}.json"), p));
    }
    files.push((
        "identityProtection.json".to_owned(),
        json!({
            "signInRiskPolicy": {"state": "enabled", "includeUsers": ["All"], "excludeGroups": [emergency],
                                 "riskLevel": "high", "action": "requireMfa"},
            "userRiskPolicy": {"state": "enabledForReportingButNotEnforced", "includeUsers": ["All"],
                               "excludeGroups": [emergency], "riskLevel": "high", "action": "requirePasswordChange"},
            "mfaRegistrationPolicy": {"state": "enabled", "includeUsers": ["All"], "excludeGroups": [emergency],
                "startDateTime": (start - chrono::Duration::days(3)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}
        }),
    ));
    files
}

pub fn location_id(i: usize) -> String {
    format!("4c1e0b{i:02}-7d2a-4f3b-9c8d-2e1f0a9b8c7d")
}

fn page(what: &str, value: Vec<Value>) -> Value {
    json!({"@odata.context": format!("https://graph.microsoft.com/v1.0/$metadata#{what}"), "value": value})
}

/// Microsoft's template set (§4.4), with the break-glass group excluded, in a realistic mix of
/// enabled and report-only, and one mistake: a report-only policy without the exclusion.
fn policies(emergency: &str) -> Vec<(String, Value)> {
    let excl = json!([emergency]);
    let all_apps = json!({"includeApplications": ["All"], "excludeApplications": []});
    let p = |n: u32,
             name: &str,
             template: &str,
             state: &str,
             conditions: Value,
             grant: Value,
             session: Value| {
        (
            format!("CA{n:03}"),
            json!({
                "id": format!("a1b2c3d4-0000-4000-8000-{:012}", n),
                "templateId": template,
                "displayName": format!("CA{n:03}: {name}"),
                "state": state,
                "createdDateTime": "2026-06-02T09:14:11Z",
                "modifiedDateTime": "2026-10-20T15:02:45Z",
                "conditions": conditions,
                "grantControls": grant,
                "sessionControls": session,
            }),
        )
    };
    let mfa = json!({"operator": "OR", "builtInControls": ["mfa"]});
    let block = json!({"operator": "OR", "builtInControls": ["block"]});
    let every_time = json!({"signInFrequency": {"isEnabled": true, "frequencyInterval": "everyTime",
                                                "authenticationType": "primaryAndSecondaryAuthentication"}});
    vec![
        p(1, "Require multifactor authentication for admins", "c7503427-338e-4c5e-902d-abe252abfb43", "enabled",
          json!({"users": {"includeRoles": ADMIN_ROLES, "excludeGroups": excl}, "applications": all_apps,
                 "clientAppTypes": ["all"]}), mfa.clone(), Value::Null),
        p(2, "Block legacy authentication", "0b2282f9-2862-4178-88b5-d79340b36cb8", "enabled",
          json!({"users": {"includeUsers": ["All"], "excludeGroups": excl}, "applications": all_apps,
                 "clientAppTypes": ["exchangeActiveSync", "other"]}), block.clone(), Value::Null),
        p(3, "Securing security info registration", "b8bda7f8-6584-4446-bce9-d871480e53fa", "enabled",
          json!({"users": {"includeUsers": ["All"], "excludeUsers": ["GuestsOrExternalUsers"],
                           "excludeRoles": [GLOBAL_ADMIN], "excludeGroups": excl},
                 "applications": {"includeUserActions": ["urn:user:registersecurityinfo"]},
                 "locations": {"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]},
                 "clientAppTypes": ["all"]}), mfa.clone(), Value::Null),
        p(4, "Require multifactor authentication for all users", "a3d0a415-b068-4326-9251-f9cdf9feeb64",
          "enabledForReportingButNotEnforced",
          json!({"users": {"includeUsers": ["All"], "excludeRoles": [DIRECTORY_SYNC], "excludeGroups": excl},
                 "applications": all_apps, "clientAppTypes": ["all"]}), mfa.clone(), Value::Null),
        p(5, "Require multifactor authentication for guest access", "a4072ac0-722b-4991-981b-7f9755daef14", "enabled",
          json!({"users": {"includeUsers": ["GuestsOrExternalUsers"]}, "applications": all_apps,
                 "clientAppTypes": ["all"]}), mfa.clone(), Value::Null),
        p(6, "Require multifactor authentication for Azure management", "d8c51a9a-e6b1-454d-86af-554e7872e2c1", "enabled",
          json!({"users": {"includeUsers": ["All"], "excludeGroups": excl},
                 "applications": {"includeApplications": [AZURE_MANAGEMENT]}, "clientAppTypes": ["all"]}),
          mfa.clone(), Value::Null),
        p(7, "Require multifactor authentication for risky sign-ins", "6b619f55-792e-45dc-9711-d83ec9d7ae90",
          "enabledForReportingButNotEnforced",
          json!({"users": {"includeUsers": ["All"], "excludeGroups": excl}, "applications": all_apps,
                 "clientAppTypes": ["all"], "signInRiskLevels": ["high", "medium"]}), mfa.clone(), every_time.clone()),
        p(8, "Require password change for high-risk users", "634b6de7-c38d-4357-a2c7-3842706eedd7",
          "enabledForReportingButNotEnforced",
          json!({"users": {"includeUsers": ["All"], "excludeGroups": excl}, "applications": all_apps,
                 "clientAppTypes": ["all"], "userRiskLevels": ["high"]}),
          json!({"operator": "AND", "builtInControls": ["mfa", "passwordChange"]}), every_time),
        p(9, "Require compliant or hybrid Azure AD joined device for admins", "c26a510a-3b8b-4023-8c44-d4f4c854e9f9",
          "enabledForReportingButNotEnforced",
          json!({"users": {"includeUsers": ["None"], "includeRoles": ADMIN_ROLES, "excludeGroups": excl},
                 "applications": all_apps, "clientAppTypes": ["all"]}),
          json!({"operator": "OR", "builtInControls": ["compliantDevice", "domainJoinedDevice"]}), Value::Null),
        // The mistake for the checks to find: a report-only block without the break-glass exclusion.
        p(10, "Block access for unknown or unsupported device platform", "4e39a309-931e-4cb1-a371-e2beea168002",
          "enabledForReportingButNotEnforced",
          json!({"users": {"includeUsers": ["All"]}, "applications": all_apps, "clientAppTypes": ["all"],
                 "platforms": {"includePlatforms": ["all"],
                               "excludePlatforms": ["android", "iOS", "windows", "macOS", "linux", "windowsPhone"]}}),
          block.clone(), Value::Null),
        p(11, "Block sign-ins from blocked countries", "", "enabled",
          json!({"users": {"includeUsers": ["All"], "excludeGroups": excl}, "applications": all_apps,
                 "clientAppTypes": ["all"], "locations": {"includeLocations": [location_id(4)]}}),
          block, Value::Null),
    ]
    .into_iter()
    .map(|(n, mut v)| {
        if v["templateId"] == "" {
            v["templateId"] = Value::Null;
        }
        (n, v)
    })
    .collect()
}

/// The display name of a role, for the generated README.
pub fn role_label(id: &str) -> &str {
    built_in_role_name(id).unwrap_or(id)
}
