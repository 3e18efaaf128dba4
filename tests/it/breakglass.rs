//! Break-glass checks on the sample tenant: its deliberate mistake (CA010, report-only, blocks
//! unknown platforms without excluding the emergency accounts) is found for both accounts;
//! fixing it in a copy, by group or by role exclusion, clears it; without configured accounts
//! the check says so and names likely candidates.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use ca_replay::checks::breakglass::{check, Report};
use ca_replay::policy::BuildOptions;
use ca_replay::tenant::Tenant;
use serde_json::{json, Value};

const BREAK_GLASS_GROUP: &str = "f237f329-4362-4387-8e8c-382f56543d01";
const GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data/contoso")
}

/// A copy of the sample tenant without its sign-ins (the static checks do not need them).
fn copy() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ca-replay-breakglass-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    for entry in std::fs::read_dir(sample()).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
        }
    }
    for entry in std::fs::read_dir(sample().join("policies")).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, dir.join("policies").join(p.file_name().unwrap())).unwrap();
    }
    dir
}

fn edit_policy(dir: &Path, name: &str, f: impl FnOnce(&mut Value)) {
    let path = dir.join("policies").join(name);
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

fn run(dir: &Path) -> Report {
    let tenant = Tenant::load(dir, BuildOptions::default()).unwrap();
    check(&tenant, &[], &HashMap::new())
}

fn errors(r: &Report) -> Vec<(String, String)> {
    r.findings
        .iter()
        .filter(|f| f.severity == "error")
        .map(|f| (f.account.clone(), f.policy.clone()))
        .collect()
}

#[test]
fn the_sample_mistake_is_found_for_both_accounts() {
    let r = run(&sample());
    assert_eq!(r.accounts, ["bg1@contoso.com", "bg2@contoso.com"]);
    let ca010 = "CA010: Block access for unknown or unsupported device platform";
    // Each account twice: not excluded (static), and synthetic sign-ins from an unknown
    // platform blocked by it (the sweep).
    assert_eq!(
        errors(&r),
        vec![
            ("bg1@contoso.com".to_owned(), ca010.to_owned()),
            ("bg1@contoso.com".to_owned(), ca010.to_owned()),
            ("bg2@contoso.com".to_owned(), ca010.to_owned()),
            ("bg2@contoso.com".to_owned(), ca010.to_owned()),
        ]
    );
    assert!(r.findings[0].what.contains("includeUsers[0] all users"));
    assert!(
        r.findings[1]
            .what
            .contains("synthetic sign-ins with blocked")
            && r.findings[1].what.contains("platform unknown"),
        "{}",
        r.findings[1].what
    );
    // Nested group exclusions are credited, with the nesting named.
    let (_, left_out) = &r.exclusions[0];
    assert!(left_out
        .iter()
        .any(|e| e.contains("excluded by excludeGroups[0]") && e.contains("nested via")));
}

#[test]
fn excluding_the_group_or_a_role_clears_it() {
    let by_group = copy();
    edit_policy(&by_group, "CA010.json", |v| {
        v["conditions"]["users"]["excludeGroups"] = json!([BREAK_GLASS_GROUP]);
    });
    assert_eq!(errors(&run(&by_group)), vec![]);

    // The break-glass accounts hold Global Administrator: a role exclusion covers them too.
    let by_role = copy();
    edit_policy(&by_role, "CA010.json", |v| {
        v["conditions"]["users"]["excludeRoles"] = json!([GLOBAL_ADMIN]);
    });
    assert_eq!(errors(&run(&by_role)), vec![]);
    for d in [by_group, by_role] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn a_policy_for_the_break_glass_accounts_only_is_not_a_finding() {
    let dir = copy();
    std::fs::write(
        dir.join("policies/CA100.json"),
        json!({"id": "c0000000-0000-4000-8000-000000000100", "displayName": "CA100: phishing-resistant MFA for emergency accounts",
               "state": "enabled", "conditions": {"users": {"includeGroups": [BREAK_GLASS_GROUP]},
               "applications": {"includeApplications": ["All"]}, "clientAppTypes": ["all"]},
               "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}})
        .to_string(),
    )
    .unwrap();
    let r = run(&dir);
    assert!(
        errors(&r).iter().all(|(_, p)| !p.starts_with("CA100")),
        "{:?}",
        r.findings
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn without_configured_accounts_it_says_so_and_names_candidates() {
    let dir = copy();
    std::fs::write(
        dir.join("ca-replay.toml"),
        "[break_glass]\nusers = []\ngroups = []\n",
    )
    .unwrap();
    let r = run(&dir);
    assert!(!r.configured);
    assert!(r.findings[0]
        .what
        .contains("no break-glass accounts are configured"));
    let names: Vec<&str> = r.candidates.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.contains(&"bg1@contoso.com") && names.contains(&"bg2@contoso.com"),
        "{names:?}"
    );

    // A configured account that does not exist is an error, not silence.
    std::fs::write(
        dir.join("ca-replay.toml"),
        "[break_glass]\nusers = [\"bg1@contoso.com\", \"nobody@contoso.com\"]\n",
    )
    .unwrap();
    let r = run(&dir);
    assert!(r
        .findings
        .iter()
        .any(|f| f.account == "nobody@contoso.com" && f.severity == "error"));
    assert!(r.findings.iter().any(|f| f.what.contains("at least two")));
    let _ = std::fs::remove_dir_all(dir);
}
