//! Invariants of evaluation and combination over generated policies and sign-ins, against one
//! small directory that has every kind of fact the conditions read.

use ca_replay::engine::{combine, evaluate, Facts, Outcome, SetKind};
use ca_replay::policy::BuildOptions;
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::common;

const GA: &str = "62e90394-69f5-4237-9190-012177145e10";
const SHAREPOINT: &str = "00000003-0000-0ff1-ce00-000000000000";
const EXCHANGE: &str = "00000002-0000-0ff1-ce00-000000000000";
const GRAPH: &str = "00000003-0000-0000-c000-000000000000";

fn directory() -> Value {
    json!({
        "users": [
            {"id": "11111111-0000-4000-8000-000000000001", "userPrincipalName": "u1@contoso.com", "userType": "Member"},
            {"id": "11111111-0000-4000-8000-000000000002", "userPrincipalName": "u2@contoso.com", "userType": "Member"},
            {"id": "11111111-0000-4000-8000-000000000003", "userPrincipalName": "u3_fabrikam.com#EXT#@contoso.com", "userType": "Guest",
             "creationType": "Invitation", "externalUserState": "Accepted"},
            {"id": "11111111-0000-4000-8000-000000000004", "userPrincipalName": "u4@contoso.com", "userType": "Member"}
        ],
        "groups": [
            {"id": "22222222-0000-4000-8000-000000000001", "displayName": "Pilot", "members": [{"@odata.type": "#microsoft.graph.user", "id": "11111111-0000-4000-8000-000000000001"}]},
            {"id": "22222222-0000-4000-8000-000000000002", "displayName": "Admins", "members": [
                {"@odata.type": "#microsoft.graph.group", "id": "22222222-0000-4000-8000-000000000001"},
                {"@odata.type": "#microsoft.graph.user", "id": "11111111-0000-4000-8000-000000000002"}]}
        ],
        "roleAssignments": [{"principalId": "11111111-0000-4000-8000-000000000002", "roleDefinitionId": GA, "directoryScopeId": "/"}],
        "userRegistrationDetails": [
            {"id": "11111111-0000-4000-8000-000000000001", "isMfaRegistered": true, "isMfaCapable": true},
            {"id": "11111111-0000-4000-8000-000000000002", "isMfaRegistered": true, "isMfaCapable": true},
            {"id": "11111111-0000-4000-8000-000000000003", "isMfaRegistered": false, "isMfaCapable": false}
        ],
        "namedLocations": [
            {"@odata.type": "#microsoft.graph.ipNamedLocation", "id": "33333333-0000-4000-8000-000000000001", "displayName": "HQ", "isTrusted": true,
             "ipRanges": [{"cidrAddress": "203.0.113.0/24"}, {"cidrAddress": "2001:db8::/32"}]},
            {"@odata.type": "#microsoft.graph.countryNamedLocation", "id": "33333333-0000-4000-8000-000000000002", "displayName": "EU",
             "countriesAndRegions": ["NL", "DE"], "includeUnknownCountriesAndRegions": false}
        ]
    })
}

fn subset(items: &'static [&'static str]) -> impl Strategy<Value = Vec<&'static str>> {
    proptest::sample::subsequence(items, 0..=items.len())
}

fn nonempty(items: &'static [&'static str]) -> impl Strategy<Value = Vec<&'static str>> {
    proptest::sample::subsequence(items, 1..=items.len())
}

/// Which exclusion to add to a policy.
#[derive(Debug, Clone)]
enum Exclusion {
    User(&'static str),
    Group(&'static str),
    Role,
    App(&'static str),
    Location(&'static str),
    Platform(&'static str),
    ClientAppOut,
}

fn exclusion() -> impl Strategy<Value = Exclusion> {
    prop_oneof![
        proptest::sample::select(vec![
            "11111111-0000-4000-8000-000000000001",
            "11111111-0000-4000-8000-000000000002",
            "11111111-0000-4000-8000-000000000003",
            "11111111-0000-4000-8000-000000000004"
        ])
        .prop_map(Exclusion::User),
        proptest::sample::select(vec![
            "22222222-0000-4000-8000-000000000001",
            "22222222-0000-4000-8000-000000000002"
        ])
        .prop_map(Exclusion::Group),
        Just(Exclusion::Role),
        proptest::sample::select(vec![SHAREPOINT, EXCHANGE, GRAPH]).prop_map(Exclusion::App),
        proptest::sample::select(vec![
            "33333333-0000-4000-8000-000000000001",
            "33333333-0000-4000-8000-000000000002",
            "AllTrusted"
        ])
        .prop_map(Exclusion::Location),
        proptest::sample::select(vec!["windows", "iOS", "android", "macOS", "linux"])
            .prop_map(Exclusion::Platform),
        Just(Exclusion::ClientAppOut),
    ]
}

fn policy(state: impl Strategy<Value = &'static str>) -> impl Strategy<Value = Value> {
    let users = (
        prop_oneof![
            Just(vec!["All"]),
            nonempty(&[
                "11111111-0000-4000-8000-000000000001",
                "11111111-0000-4000-8000-000000000002",
                "11111111-0000-4000-8000-000000000003",
                "11111111-0000-4000-8000-000000000004"
            ]),
            Just(vec!["GuestsOrExternalUsers"]),
            Just(vec![]),
        ],
        subset(&[
            "22222222-0000-4000-8000-000000000001",
            "22222222-0000-4000-8000-000000000002",
        ]),
        prop_oneof![Just(vec![]), Just(vec![GA])],
        subset(&[
            "11111111-0000-4000-8000-000000000001",
            "11111111-0000-4000-8000-000000000002",
            "11111111-0000-4000-8000-000000000003",
            "11111111-0000-4000-8000-000000000004",
        ]),
        subset(&[
            "22222222-0000-4000-8000-000000000001",
            "22222222-0000-4000-8000-000000000002",
        ]),
    )
        .prop_map(|(inc, groups, roles, exc, exc_groups)| {
            let inc = if inc.is_empty() && groups.is_empty() && roles.is_empty() {
                vec!["All"]
            } else {
                inc
            };
            json!({"includeUsers": inc, "includeGroups": groups, "includeRoles": roles,
                   "excludeUsers": exc, "excludeGroups": exc_groups})
        });
    let apps = (
        prop_oneof![
            Just(vec!["All"]),
            Just(vec!["Office365"]),
            nonempty(&[SHAREPOINT, EXCHANGE, GRAPH])
        ],
        subset(&[SHAREPOINT, GRAPH]),
    )
        .prop_map(|(inc, exc)| json!({"includeApplications": inc, "excludeApplications": exc}));
    let client_apps = prop_oneof![
        Just(vec!["all"]),
        nonempty(&[
            "browser",
            "mobileAppsAndDesktopClients",
            "exchangeActiveSync",
            "other"
        ]),
    ];
    let platforms = proptest::option::of((
        prop_oneof![
            Just(vec!["all"]),
            nonempty(&["windows", "iOS", "android", "macOS"])
        ],
        subset(&["linux", "iOS"]),
    ))
    .prop_map(|p| p.map(|(inc, exc)| json!({"includePlatforms": inc, "excludePlatforms": exc})));
    let locations = proptest::option::of((
        prop_oneof![
            Just(vec!["All"]),
            Just(vec!["33333333-0000-4000-8000-000000000001"]),
            Just(vec!["33333333-0000-4000-8000-000000000002"]),
            Just(vec!["AllTrusted"])
        ],
        prop_oneof![
            Just(vec![]),
            Just(vec!["AllTrusted"]),
            Just(vec!["33333333-0000-4000-8000-000000000002"])
        ],
    ))
    .prop_map(|l| l.map(|(inc, exc)| json!({"includeLocations": inc, "excludeLocations": exc})));
    let risk = proptest::option::of(nonempty(&["low", "medium", "high"]));
    let grant = prop_oneof![
        Just(json!({"operator": "OR", "builtInControls": ["block"]})),
        Just(json!({"operator": "OR", "builtInControls": ["mfa"]})),
        Just(json!({"operator": "OR", "builtInControls": ["mfa", "compliantDevice"]})),
        Just(json!({"operator": "AND", "builtInControls": ["mfa", "compliantDevice"]})),
        Just(
            json!({"operator": "OR", "builtInControls": ["compliantDevice", "domainJoinedDevice"]})
        ),
    ];
    (
        state,
        users,
        apps,
        client_apps,
        platforms,
        locations,
        risk,
        grant,
    )
        .prop_map(
            |(state, users, apps, client_apps, platforms, locations, risk, grant)| {
                let mut conditions =
                    json!({"users": users, "applications": apps, "clientAppTypes": client_apps});
                if let Some(p) = platforms {
                    conditions["platforms"] = p;
                }
                if let Some(l) = locations {
                    conditions["locations"] = l;
                }
                if let Some(r) = risk {
                    conditions["signInRiskLevels"] = json!(r);
                }
                json!({"state": state, "conditions": conditions, "grantControls": grant})
            },
        )
}

fn any_state() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(vec![
        "enabled",
        "enabledForReportingButNotEnforced",
        "disabled",
    ])
}

fn signin() -> impl Strategy<Value = Value> {
    (
        (
            proptest::sample::select(vec!["11111111-0000-4000-8000-000000000001", "11111111-0000-4000-8000-000000000002", "11111111-0000-4000-8000-000000000003", "11111111-0000-4000-8000-000000000004", "11111111-0000-4000-8000-000000000009"]),
            proptest::sample::select(vec![SHAREPOINT, EXCHANGE, GRAPH]),
            proptest::sample::select(vec!["Browser", "Mobile Apps and Desktop clients", "Exchange ActiveSync", "Other clients"]),
            proptest::sample::select(vec!["Windows10", "Ios 17.1", "Android 14", "MacOs", "Linux", ""]),
        ),
        (
            proptest::sample::select(vec!["203.0.113.5", "198.51.100.7", "2001:db8::1", ""]),
            proptest::sample::select(vec!["NL", "US", ""]),
            any::<bool>(),
            any::<bool>(),
            proptest::sample::select(vec!["none", "low", "medium", "high", "hidden"]),
            any::<bool>(),
        ),
    )
        .prop_map(|((user, resource, client, os, ), (ip, country, interactive, mfa, risk, compliant))| {
            let mut s = json!({
                "userId": user, "resourceId": resource, "clientAppUsed": client,
                "location": {"countryOrRegion": country},
                "isInteractive": interactive,
                "deviceDetail": {"operatingSystem": os, "deviceId": if compliant {"d1"} else {""},
                                 "isCompliant": compliant, "trustType": if compliant {"Azure AD joined"} else {""}},
                "riskLevelDuringSignIn": risk,
                "authenticationRequirement": if mfa {"multiFactorAuthentication"} else {"singleFactorAuthentication"},
            });
            if ip.is_empty() {
                s["ipAddress"] = Value::Null;
            } else {
                s["ipAddress"] = json!(ip);
            }
            if !interactive {
                s["signInEventTypes"] = json!(["nonInteractiveUser"]);
            }
            s
        })
}

fn with_ids(policies: &[Value]) -> Vec<Value> {
    policies
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut p = p.clone();
            p["id"] = json!(format!("p{}", i + 1));
            p["displayName"] = json!(format!("Policy {}", i + 1));
            p
        })
        .collect()
}

/// Combined outcomes (current, proposed) of each sign-in.
fn outcomes(
    policies: &[Value],
    signins: &[Value],
) -> Result<Vec<(Outcome, Outcome)>, TestCaseError> {
    let case = json!({"directory": directory(), "policies": policies, "signins": signins});
    let options = BuildOptions::default();
    let tenant = common::tenant(&case, options);
    let blocking = tenant.set.blocking_findings(options);
    prop_assume!(
        blocking.is_empty(),
        "generated an invalid policy: {:?}",
        blocking
    );
    let signins = common::signins(&case);
    let evals = common::evaluate_all(&tenant, &signins);
    Ok(evals
        .iter()
        .map(|e| {
            let e: Vec<_> = e.iter().map(|x| Some(*x)).collect();
            (
                combine(&tenant.set, &e, SetKind::Current),
                combine(&tenant.set, &e, SetKind::Proposed),
            )
        })
        .collect())
}

/// What matters of an outcome: the impact and how many policies were indeterminate beside it
/// (not which policy decided it, which depends on order).
fn essence(o: &Outcome) -> (ca_replay::domain::Impact, u16) {
    (o.impact, o.indeterminate)
}

fn add_exclusion(p: &mut Value, x: &Exclusion) {
    let c = &mut p["conditions"];
    let push = |slot: &mut Value, v: &str| match slot {
        Value::Array(a) => a.push(json!(v)),
        other => *other = json!([v]),
    };
    match x {
        Exclusion::User(u) => push(&mut c["users"]["excludeUsers"], u),
        Exclusion::Group(g) => push(&mut c["users"]["excludeGroups"], g),
        Exclusion::Role => push(&mut c["users"]["excludeRoles"], GA),
        Exclusion::App(a) => push(&mut c["applications"]["excludeApplications"], a),
        Exclusion::Location(l) => {
            if c.get("locations").is_none() {
                c["locations"] = json!({"includeLocations": ["All"]});
            }
            push(&mut c["locations"]["excludeLocations"], l)
        }
        Exclusion::Platform(pl) => {
            if c.get("platforms").is_none() {
                c["platforms"] = json!({"includePlatforms": ["all"]});
            }
            push(&mut c["platforms"]["excludePlatforms"], pl)
        }
        // Narrowing the client app types is an exclusion too: `all` becomes browser only, a
        // list loses its last type (a single type stays as it is).
        Exclusion::ClientAppOut => {
            let list: Vec<Value> = c["clientAppTypes"].as_array().cloned().unwrap_or_default();
            if list.iter().any(|t| t == "all") {
                c["clientAppTypes"] = json!(["browser"]);
            } else if list.len() > 1 {
                c["clientAppTypes"] = json!(list[..list.len() - 1]);
            }
        }
    }
}

fn rank(applies: Option<bool>) -> u8 {
    match applies {
        Some(false) => 0,
        None => 1,
        Some(true) => 2,
    }
}

proptest! {
    /// An exclusion never makes a policy apply: adding one can only move `applies` from
    /// yes towards unknown or no, and where both apply the impact is the same.
    #[test]
    fn an_exclusion_never_makes_a_policy_apply(
        p in policy(Just("enabled")),
        x in exclusion(),
        signins in proptest::collection::vec(signin(), 1..12),
    ) {
        let mut narrowed = p.clone();
        add_exclusion(&mut narrowed, &x);
        let policies = with_ids(&[p, narrowed]);
        let case = json!({"directory": directory(), "policies": policies, "signins": signins});
        let options = BuildOptions::default();
        let tenant = common::tenant(&case, options);
        prop_assume!(tenant.set.blocking_findings(options).is_empty());
        let signins = common::signins(&case);
        for (s, e) in signins.iter().zip(common::evaluate_all(&tenant, &signins)) {
            let (before, after) = (&e[0], &e[1]);
            prop_assert!(
                rank(after.applies) <= rank(before.applies),
                "{:?} made policy apply on {}: {:?} -> {:?}", x, s.id, before.applies, after.applies
            );
            if after.applies == Some(true) {
                prop_assert_eq!(after.impact, before.impact);
            }
        }
    }

    /// Policy order never changes outcomes: a permuted policy set gives every sign-in the same
    /// current and proposed outcome.
    #[test]
    fn policy_order_never_changes_outcomes(
        policies in proptest::collection::vec(policy(any_state()), 1..6),
        signins in proptest::collection::vec(signin(), 1..10),
        seed in any::<u64>(),
    ) {
        let policies = with_ids(&policies);
        let mut shuffled = policies.clone();
        // A deterministic permutation from the seed (rotate, then reverse on odd seeds).
        let n = shuffled.len();
        shuffled.rotate_left((seed as usize) % n);
        if seed % 2 == 1 {
            shuffled.reverse();
        }
        let a = outcomes(&policies, &signins)?;
        let b = outcomes(&shuffled, &signins)?;
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            prop_assert_eq!(essence(&x.0), essence(&y.0), "current, sign-in {}", i + 1);
            prop_assert_eq!(essence(&x.1), essence(&y.1), "proposed, sign-in {}", i + 1);
        }
    }

    /// A report-only policy never changes the current set's outcome.
    #[test]
    fn a_report_only_policy_never_changes_the_current_outcome(
        policies in proptest::collection::vec(policy(any_state()), 0..5),
        candidate in policy(Just("enabledForReportingButNotEnforced")),
        signins in proptest::collection::vec(signin(), 1..10),
    ) {
        let before = outcomes(&with_ids(&policies), &signins)?;
        let mut more = policies.clone();
        more.push(candidate);
        let after = outcomes(&with_ids(&more), &signins)?;
        for (i, (x, y)) in before.iter().zip(&after).enumerate() {
            prop_assert_eq!(essence(&x.0), essence(&y.0), "sign-in {}", i + 1);
        }
    }

    /// Adding an enabled policy never makes an outcome more permissive: the current impact is at
    /// least as severe, and no indeterminate policy disappears.
    #[test]
    fn adding_an_enabled_policy_never_makes_an_outcome_more_permissive(
        policies in proptest::collection::vec(policy(any_state()), 0..5),
        extra in policy(Just("enabled")),
        signins in proptest::collection::vec(signin(), 1..10),
    ) {
        let before = outcomes(&with_ids(&policies), &signins)?;
        let mut more = policies.clone();
        more.push(extra);
        let after = outcomes(&with_ids(&more), &signins)?;
        for (i, (x, y)) in before.iter().zip(&after).enumerate() {
            for (was, now, set) in [(&x.0, &y.0, "current"), (&x.1, &y.1, "proposed")] {
                prop_assert!(
                    now.impact.severity() >= was.impact.severity() && now.indeterminate >= was.indeterminate,
                    "{} set, sign-in {}: {:?} -> {:?}", set, i + 1, was, now
                );
            }
        }
    }
}

proptest! {
    /// The engine's per-sign-in memo (conditions shared by several policies are evaluated once,
    /// `PolicySet::memo_slots`) never changes an evaluation: each policy of the set, evaluated
    /// with one `Facts` shared by all of them, gives what a copy of it from outside the set
    /// (never memoized) gives with a fresh `Facts`, also written in place as the replay does.
    #[test]
    fn the_per_sign_in_memo_never_changes_an_evaluation(
        policies in proptest::collection::vec(policy(any_state()), 1..6),
        x in exclusion(),
        signins in proptest::collection::vec(signin(), 1..10),
    ) {
        // Twins and narrowed copies, so that policies share conditions and differ in others.
        let mut all = policies.clone();
        all.extend(policies.iter().cloned());
        for p in &policies {
            let mut narrowed = p.clone();
            add_exclusion(&mut narrowed, &x);
            all.push(narrowed);
        }
        let all = with_ids(&all);
        let case = json!({"directory": directory(), "policies": all, "signins": signins});
        let options = BuildOptions::default();
        let tenant = common::tenant(&case, options);
        prop_assume!(tenant.set.blocking_findings(options).is_empty());
        let signins = common::signins(&case);
        let clocks = std::collections::HashMap::new();
        let env = tenant.env(&clocks);
        let outside: Vec<_> = tenant.set.policies.to_vec();
        // The replay's path too: each evaluation written over the previous sign-in's, in place.
        let mut in_place = Vec::new();
        for s in &signins {
            let shared = Facts::prepare(&env, s, false);
            let replayed = Facts::prepare(&env, s, false);
            ca_replay::replay::evaluate_set(&env, &replayed, &mut in_place);
            for ((p, q), r) in tenant.set.policies.iter().zip(&outside).zip(&in_place) {
                let memoized = evaluate(&env, p, &shared);
                let fresh = evaluate(&env, q, &Facts::prepare(&env, s, false));
                prop_assert_eq!(memoized, fresh, "policy {} on {}", p.id, s.id);
                let expected = (p.state != ca_replay::domain::PolicyState::Disabled).then_some(fresh);
                prop_assert_eq!(*r, expected, "in place: policy {} on {}", p.id, s.id);
            }
        }
        // Policies removed after the set was built (`run --policy`): the rest move down.
        let mut tenant = tenant;
        let drop = tenant.set.policies[0].id.clone();
        tenant.set.policies.retain(|p| p.id != drop);
        let env = tenant.env(&clocks);
        for s in &signins {
            let shared = Facts::prepare(&env, s, false);
            let replayed = Facts::prepare(&env, s, false);
            ca_replay::replay::evaluate_set(&env, &replayed, &mut in_place);
            prop_assert_eq!(in_place.len(), tenant.set.policies.len());
            for (p, r) in tenant.set.policies.iter().zip(&in_place) {
                let q = outside.iter().find(|q| q.id == p.id).expect("kept policy");
                let memoized = evaluate(&env, p, &shared);
                let fresh = evaluate(&env, q, &Facts::prepare(&env, s, false));
                prop_assert_eq!(memoized, fresh, "after retain: policy {} on {}", p.id, s.id);
                let expected = (p.state != ca_replay::domain::PolicyState::Disabled).then_some(fresh);
                prop_assert_eq!(*r, expected, "after retain, in place: policy {} on {}", p.id, s.id);
            }
        }
    }
}
