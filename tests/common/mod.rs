//! Shared by the test binaries: build a tenant and sign-ins in memory from one JSON document
//! (the case-file format, tests/cases/README.md).
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ca_replay::config::Config;
use ca_replay::directory::{Directory, IpTable};
use ca_replay::engine::{self, AppTables, Env, Evaluation, Facts};
use ca_replay::ingest::graph::parse_signin;
use ca_replay::policy::{self, identity_protection, BuildOptions, LoadedPolicy, Origin, PolicySet};
use ca_replay::signin::SignIn;
use ca_replay::source::{normalize_keys, unwrap_document, Record};
use ca_replay::tenant::Tenant;
use serde_json::{json, Value};

/// Deep merge: objects merge key by key, anything else replaces.
pub fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

pub fn base_policy() -> Value {
    json!({
        "state": "enabled",
        "conditions": {
            "users": {"includeUsers": ["All"]},
            "applications": {"includeApplications": ["All"]},
            "clientAppTypes": ["all"]
        },
        "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}
    })
}

pub fn base_signin() -> Value {
    json!({
        "createdDateTime": "2026-10-01T10:00:00Z",
        "userId": "u1",
        "userPrincipalName": "u1@contoso.com",
        "userType": "member",
        "homeTenantId": "t-home",
        "resourceTenantId": "t-home",
        "appId": "89bee1f7-5e6e-4d8a-9f3d-ecd601259da7",
        "resourceId": "00000003-0000-0ff1-ce00-000000000000",
        "resourceDisplayName": "Office 365 SharePoint Online",
        "clientAppUsed": "Browser",
        "isInteractive": true,
        "ipAddress": "203.0.113.5",
        "location": {"countryOrRegion": "NL"},
        "deviceDetail": {"deviceId": "", "operatingSystem": "Windows10", "browser": "Edge 130"},
        "riskLevelDuringSignIn": "none",
        "status": {"errorCode": 0},
        "authenticationRequirement": "singleFactorAuthentication"
    })
}

fn records(v: &Value) -> Vec<Record> {
    unwrap_document(normalize_keys(v.clone()))
        .into_iter()
        .enumerate()
        .map(|(i, value)| Record {
            index: i + 1,
            value,
        })
        .collect()
}

/// The tenant of a case: `directory`, `policies`, `identityProtection`, `config`.
pub fn tenant(case: &Value, options: BuildOptions) -> Tenant {
    let mut dir = Directory::new();
    let d = case.get("directory").cloned().unwrap_or(json!({}));
    let f = Path::new("case");
    if let Some(v) = d.get("users") {
        dir.add_users(f, records(v));
    }
    if let Some(v) = d.get("groups") {
        dir.add_groups(f, records(v));
    }
    if let Some(v) = d.get("roleAssignments") {
        dir.add_role_assignments(f, records(v));
    }
    if let Some(v) = d.get("userRegistrationDetails") {
        dir.add_registration(f, records(v));
    }
    if let Some(v) = d.get("riskyUsers") {
        dir.add_risky_users(f, records(v));
    }
    if let Some(v) = d.get("namedLocations") {
        dir.add_named_locations(f, records(v));
    }
    dir.finish();
    let config: Config = match case.get("config") {
        Some(c) => serde_json::from_value(c.clone()).expect("case config"),
        None => Config::default(),
    };
    dir.mfa_trusted_ips =
        IpTable::from_cidrs(config.locations.mfa_trusted_ips.iter().map(String::as_str))
            .expect("cidrs");
    let mut loaded = Vec::new();
    for (i, p) in case
        .get("policies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let mut v = base_policy();
        merge(&mut v, p);
        let v = normalize_keys(v);
        let raw: policy::model::Policy = serde_json::from_value(v.clone()).expect("policy shape");
        let id = raw.id.as_str().unwrap_or_else(|| format!("p{}", i + 1));
        loaded.push(LoadedPolicy {
            id,
            raw,
            json: v,
            origin: Origin {
                file: PathBuf::from("case.json"),
                pointer: format!("/policies/{i}"),
            },
        });
    }
    let mut legacy = Vec::new();
    if let Some(ip) = case.get("identityProtection") {
        let tmp = std::env::temp_dir().join(format!(
            "ca-replay-case-{}-{}.json",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::write(&tmp, ip.to_string()).expect("write");
        let (l, findings) = identity_protection::load(&tmp).expect("identityProtection");
        std::fs::remove_file(&tmp).ok();
        assert!(
            findings.is_empty(),
            "identityProtection findings: {findings:?}"
        );
        legacy = l;
    }
    let set = PolicySet::build(&loaded, legacy, &mut dir, options);
    let mut apps = AppTables::default();
    for (bundle, ids) in &config.app_bundles {
        let t = if bundle == "Office365" {
            &mut apps.office365
        } else {
            &mut apps.admin_portals
        };
        t.extend(ids.iter().map(|i| i.to_ascii_lowercase()));
    }
    Tenant {
        root: PathBuf::from("."),
        dir,
        set,
        config,
        apps,
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// The sign-ins of a case, each merged over `base_signin()`; ids default to `s1`, `s2`, …
pub fn signins(case: &Value) -> Vec<SignIn> {
    case.get("signins")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, s)| {
            let mut v = base_signin();
            v["id"] = json!(format!("s{}", i + 1));
            merge(&mut v, s);
            parse_signin(&v, None).unwrap_or_else(|e| panic!("sign-in {}: {e:?}", i + 1))
        })
        .collect()
}

/// Evaluates every sign-in against every policy (registration clocks computed first).
pub fn evaluate_all(t: &Tenant, signins: &[SignIn]) -> Vec<Vec<Evaluation>> {
    let none = HashMap::new();
    let env0 = t.env(&none);
    let mut clocks = HashMap::new();
    engine::registration::accumulate(&env0, signins, &mut clocks);
    let env = Env {
        registration_clocks: &clocks,
        ..env0
    };
    signins
        .iter()
        .map(|s| {
            let f = Facts::prepare(&env, s, false);
            t.set
                .policies
                .iter()
                .map(|p| engine::evaluate(&env, p, &f))
                .collect()
        })
        .collect()
}
