//! Engine throughput: one policy × one sign-in, and a 30-policy set over 100k generated
//! sign-ins (sequential, for CPU per evaluation, and through the parallel replay driver).
//!
//! Run: `cargo bench --bench engine`. The tenant and sign-ins are generated deterministically
//! in memory (no files), shaped like a mid-size tenant: 5,000 users, nested groups, admins,
//! 90% MFA-registered, trusted and country named locations, and a realistic policy mix.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::hint::black_box;

use ca_replay::engine::{self, combine, Facts, SetKind};
use ca_replay::policy::BuildOptions;
use ca_replay::replay::{self, Details};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::{json, Value};

/// Users in the generated directory; CA_REPLAY_BENCH_USERS changes it.
fn users() -> usize {
    std::env::var("CA_REPLAY_BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000)
}
const GA: &str = "62e90394-69f5-4237-9190-012177145e10";
const EXCHANGE_ADMIN: &str = "29232cdf-9323-42fd-ade2-1d097af3e4de";
const APPS: [&str; 6] = [
    "00000003-0000-0ff1-ce00-000000000000",
    "00000002-0000-0ff1-ce00-000000000000",
    "00000003-0000-0000-c000-000000000000",
    "797f4846-ba00-4fd7-ba43-dac1f8f63013",
    "c44b4083-3bb0-49c1-b47d-974e53cbdf3c",
    "0000000a-0000-0000-c000-000000000000",
];

/// A small deterministic generator (xorshift64*), so runs compare like with like.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

fn guid(kind: u32, n: usize) -> String {
    format!("{kind:08x}-0000-4000-8000-{n:012x}")
}

fn directory() -> Value {
    let users_n = users();
    let users: Vec<Value> = (0..users_n)
        .map(|i| {
            let guest = i % 50 == 0;
            json!({"id": guid(1, i), "userPrincipalName": format!("user{i}@contoso.com"),
                   "userType": if guest {"Guest"} else {"Member"},
                   "creationType": if guest {json!("Invitation")} else {Value::Null}})
        })
        .collect();
    let mut groups: Vec<Value> = (0..20)
        .map(|g| {
            let members: Vec<Value> = (0..users_n)
                .filter(|u| u % 20 == g)
                .take(200)
                .map(|u| json!({"@odata.type": "#microsoft.graph.user", "id": guid(1, u)}))
                .collect();
            json!({"id": guid(2, g), "displayName": format!("Group {g}"), "members": members})
        })
        .collect();
    // Break-glass nested two levels down.
    groups.push(
        json!({"id": guid(2, 100), "displayName": "Break-glass", "members": [
        {"@odata.type": "#microsoft.graph.user", "id": guid(1, 1)},
        {"@odata.type": "#microsoft.graph.user", "id": guid(1, 2)}]}),
    );
    groups.push(
        json!({"id": guid(2, 101), "displayName": "Admins-Emergency", "members": [
        {"@odata.type": "#microsoft.graph.group", "id": guid(2, 100)}]}),
    );
    let roles: Vec<Value> = (0..40)
        .map(|i| json!({"principalId": guid(1, i * 7), "roleDefinitionId": if i % 2 == 0 {GA} else {EXCHANGE_ADMIN},
                        "directoryScopeId": "/"}))
        .collect();
    let registration: Vec<Value> = (0..users_n)
        .map(|i| json!({"id": guid(1, i), "isMfaRegistered": i % 10 != 0, "isMfaCapable": i % 10 != 0}))
        .collect();
    json!({
        "users": users, "groups": groups, "roleAssignments": roles,
        "userRegistrationDetails": registration,
        "namedLocations": [
            {"@odata.type": "#microsoft.graph.ipNamedLocation", "id": guid(3, 1), "displayName": "HQ", "isTrusted": true,
             "ipRanges": [{"cidrAddress": "203.0.113.0/24"}, {"cidrAddress": "198.51.100.0/25"}, {"cidrAddress": "2001:db8::/32"}]},
            {"@odata.type": "#microsoft.graph.countryNamedLocation", "id": guid(3, 2), "displayName": "Blocked",
             "countriesAndRegions": ["KP", "IR", "RU"], "includeUnknownCountriesAndRegions": true},
            {"@odata.type": "#microsoft.graph.countryNamedLocation", "id": guid(3, 3), "displayName": "Allowed",
             "countriesAndRegions": ["NL", "DE", "US", "GB", "FR"], "includeUnknownCountriesAndRegions": false}
        ]
    })
}

/// 30 policies in the shape of the public baselines: every condition kind appears.
fn policies() -> Vec<Value> {
    let excl = json!({"excludeGroups": [guid(2, 101)]});
    let users_all = {
        let mut u = json!({"includeUsers": ["All"]});
        common::merge(&mut u, &excl);
        u
    };
    let mut out = Vec::new();
    let mut push = |state: &str, conditions: Value, grant: Value| {
        let i = out.len();
        out.push(
            json!({"id": guid(9, i), "displayName": format!("CA{i:03}"), "state": state,
                        "conditions": conditions, "grantControls": grant}),
        );
    };
    let mfa = json!({"operator": "OR", "builtInControls": ["mfa"]});
    let block = json!({"operator": "OR", "builtInControls": ["block"]});
    let device =
        json!({"operator": "OR", "builtInControls": ["compliantDevice", "domainJoinedDevice"]});
    let all_apps = json!({"includeApplications": ["All"]});
    for state in ["enabled", "enabledForReportingButNotEnforced"] {
        push(
            state,
            json!({"users": {"includeRoles": [GA, EXCHANGE_ADMIN], "excludeGroups": [guid(2, 101)]},
                           "applications": all_apps, "clientAppTypes": ["all"]}),
            mfa.clone(),
        );
        push(
            state,
            json!({"users": users_all, "applications": all_apps,
                           "clientAppTypes": ["exchangeActiveSync", "other"]}),
            block.clone(),
        );
        push(
            state,
            json!({"users": users_all, "applications": all_apps, "clientAppTypes": ["all"],
                           "locations": {"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]}}),
            mfa.clone(),
        );
        push(
            state,
            json!({"users": users_all, "applications": all_apps, "clientAppTypes": ["all"],
                           "locations": {"includeLocations": [guid(3, 2)]}}),
            block.clone(),
        );
        push(
            state,
            json!({"users": users_all, "applications": all_apps, "clientAppTypes": ["all"],
                           "locations": {"includeLocations": ["All"], "excludeLocations": [guid(3, 3)]}}),
            block.clone(),
        );
        push(
            state,
            json!({"users": {"includeGuestsOrExternalUsers": {"guestOrExternalUserTypes": "b2bCollaborationGuest,b2bCollaborationMember",
                            "externalTenants": {"membershipKind": "all"}}},
                           "applications": all_apps, "clientAppTypes": ["all"]}),
            mfa.clone(),
        );
        push(
            state,
            json!({"users": {"includeGroups": [guid(2, 3), guid(2, 4), guid(2, 5)], "excludeGroups": [guid(2, 101)]},
                           "applications": {"includeApplications": ["Office365"]}, "clientAppTypes": ["browser", "mobileAppsAndDesktopClients"],
                           "platforms": {"includePlatforms": ["windows", "macOS"]}}),
            device.clone(),
        );
        push(
            state,
            json!({"users": users_all, "applications": all_apps, "clientAppTypes": ["all"],
                           "signInRiskLevels": ["high"]}),
            block.clone(),
        );
        push(
            state,
            json!({"users": users_all, "applications": all_apps, "clientAppTypes": ["all"],
                           "signInRiskLevels": ["medium"]}),
            mfa.clone(),
        );
        push(
            state,
            json!({"users": users_all, "applications": {"includeApplications": ["MicrosoftAdminPortals"]},
                           "clientAppTypes": ["all"]}),
            mfa.clone(),
        );
        push(
            state,
            json!({"users": users_all, "applications": all_apps, "clientAppTypes": ["all"],
                           "platforms": {"includePlatforms": ["all"], "excludePlatforms": ["windows", "macOS", "iOS", "android", "linux"]}}),
            block.clone(),
        );
        push(
            state,
            json!({"users": users_all, "applications": {"includeApplications": [APPS[3]]},
                           "clientAppTypes": ["all"]}),
            mfa.clone(),
        );
        push(
            state,
            json!({"users": {"includeGroups": [guid(2, 7)]}, "applications": all_apps, "clientAppTypes": ["browser"],
                           "devices": {"deviceFilter": {"mode": "exclude",
                             "rule": "device.trustType -eq \"AzureAD\" -or device.trustType -eq \"ServerAD\" -or device.isCompliant -eq True"}}}),
            mfa.clone(),
        );
        push(
            state,
            json!({"users": users_all, "applications": all_apps, "clientAppTypes": ["all"],
                           "authenticationFlows": {"transferMethods": "deviceCodeFlow,authenticationTransfer"}}),
            block.clone(),
        );
        push(
            state,
            json!({"users": {"includeGroups": [guid(2, 9), guid(2, 10)]}, "applications": all_apps,
                           "clientAppTypes": ["all"]}),
            json!({"operator": "AND", "builtInControls": ["mfa", "compliantDevice"]}),
        );
    }
    out
}

fn signins(n: usize, seed: u64) -> Vec<Value> {
    let mut r = Rng(seed);
    let users_n = users();
    let clients = [
        "Browser",
        "Browser",
        "Mobile Apps and Desktop clients",
        "Mobile Apps and Desktop clients",
        "Exchange ActiveSync",
        "Other clients",
    ];
    let oses = [
        "Windows10",
        "Windows10",
        "MacOs",
        "Ios 17.1",
        "Android 14",
        "Linux",
        "",
    ];
    let ips = [
        "203.0.113.7",
        "198.51.100.20",
        "192.0.2.10",
        "2001:db8::5",
        "5.160.0.9",
        "81.2.69.142",
    ];
    let countries = ["NL", "US", "DE", "GB", "IR", ""];
    let risks = ["none", "none", "none", "low", "medium", "high"];
    (0..n)
        .map(|i| {
            let user = r.below(users_n + 50); // a few users the directory does not list
            let interactive = r.chance(40);
            let registered_device = r.chance(50);
            let mut s = json!({
                "id": format!("s{i}"),
                "createdDateTime": format!("2026-11-{:02}T{:02}:{:02}:00Z", 1 + r.below(28), r.below(24), r.below(60)),
                "userId": guid(1, user),
                "userPrincipalName": format!("user{user}@contoso.com"),
                "userType": if user.is_multiple_of(50) {"guest"} else {"member"},
                "resourceId": APPS[r.below(APPS.len())],
                "clientAppUsed": clients[r.below(clients.len())],
                "isInteractive": interactive,
                "ipAddress": ips[r.below(ips.len())],
                "location": {"countryOrRegion": countries[r.below(countries.len())]},
                "deviceDetail": {
                    "operatingSystem": oses[r.below(oses.len())],
                    "deviceId": if registered_device {format!("d{}", r.below(9999))} else {String::new()},
                    "isCompliant": registered_device && r.chance(70),
                    "trustType": if registered_device {"Azure AD joined"} else {""}
                },
                "riskLevelDuringSignIn": risks[r.below(risks.len())],
                "authenticationRequirement": if r.chance(30) {"multiFactorAuthentication"} else {"singleFactorAuthentication"},
                "status": {"errorCode": if r.chance(3) {50126} else {0}},
            });
            if !interactive {
                s["signInEventTypes"] = json!(["nonInteractiveUser"]);
            }
            s
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    // CA_REPLAY_BENCH_SIGNINS changes the set size (e.g. 5000 to see the cache-resident rate).
    let n: usize = std::env::var("CA_REPLAY_BENCH_SIGNINS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let case =
        json!({"directory": directory(), "policies": policies(), "signins": signins(n, 0x5eed)});
    let tenant = common::tenant(&case, BuildOptions::default());
    let blocking = tenant.set.blocking_findings(BuildOptions::default());
    assert!(blocking.is_empty(), "bench policies invalid: {blocking:?}");
    assert_eq!(tenant.set.policies.len(), 30);
    let signins = common::signins(&case);
    let clocks = HashMap::new();
    let env = tenant.env(&clocks);

    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(1));
    let one = &signins[1];
    let facts = Facts::prepare(&env, one, false);
    let p = &tenant.set.policies[2];
    g.bench_function("1 policy x 1 sign-in (evaluate)", |b| {
        b.iter(|| black_box(engine::evaluate(&env, black_box(p), black_box(&facts))))
    });
    let mut slot = engine::evaluate(&env, p, &facts);
    g.bench_function("1 policy x 1 sign-in (evaluate_into, as the replay)", |b| {
        b.iter(|| {
            engine::evaluate_into(&env, black_box(p), black_box(&facts), &mut slot);
            black_box(&slot);
        })
    });
    g.throughput(Throughput::Elements(tenant.set.policies.len() as u64));
    g.bench_function("30 policies x 1 sign-in (evaluate, hot caches)", |b| {
        b.iter(|| {
            let mut n = 0u32;
            for p in &tenant.set.policies {
                n += black_box(engine::evaluate(&env, p, black_box(&facts))).impact as u32;
            }
            n
        })
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("1 sign-in: prepare facts", |b| {
        b.iter(|| black_box(Facts::prepare(&env, black_box(one), false)))
    });

    g.sample_size(10);
    g.throughput(Throughput::Elements((n * tenant.set.policies.len()) as u64));
    g.bench_function(
        "30 policies x 100k sign-ins (sequential evaluate + combine)",
        |b| {
            b.iter(|| {
                let mut severe = 0u64;
                let mut evals = Vec::with_capacity(tenant.set.policies.len());
                for s in &signins {
                    let f = Facts::prepare(&env, s, false);
                    // As the replay does: each evaluation written in its slot.
                    replay::evaluate_set(&env, &f, &mut evals);
                    severe += combine(&tenant.set, &evals, SetKind::Proposed)
                        .impact
                        .severity() as u64;
                }
                black_box(severe)
            })
        },
    );
    g.bench_function(
        "30 policies x 100k sign-ins (replay::run, parallel, tallies)",
        |b| b.iter(|| black_box(replay::run(&tenant, &signins, Details::Applied).evaluated)),
    );
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
