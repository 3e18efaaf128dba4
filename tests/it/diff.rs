//! `ca-replay diff` end to end: a small tenant whose numbers were checked by hand (a policy
//! tightened, an exclusion removed, a policy deleted, a report-only policy switched on, a
//! break-glass exclusion dropped), the sample tenant against a copy of its policies (checked
//! against `run`'s own current-vs-proposed numbers), and `--base` as a git revision in a
//! temporary repository; exit codes through the binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use ca_replay::checks::diff::{Change, Diff, Effect, Side};
use ca_replay::domain::Impact;
use serde_json::{json, Value};

fn scratch(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ca-replay-diff-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data/contoso")
}

fn write_json(path: &Path, v: &Value) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

const TENANT_ID: &str = "0e2d1a77-5b3c-4d5e-8f60-7a8b9c0d1e2f";
const PILOT: &str = "10000000-0000-4000-8000-000000000001";

/// (name, id) of the small tenant's users.
const USERS: [(&str, &str); 7] = [
    ("alice", "00000000-0000-4000-8000-00000000000a"),
    ("bob", "00000000-0000-4000-8000-00000000000b"),
    ("carol", "00000000-0000-4000-8000-00000000000c"),
    ("dave", "00000000-0000-4000-8000-00000000000d"),
    ("erin", "00000000-0000-4000-8000-00000000000e"),
    ("bg1", "00000000-0000-4000-8000-0000000000b1"),
    ("bg2", "00000000-0000-4000-8000-0000000000b2"),
];

fn id(name: &str) -> &'static str {
    USERS.iter().find(|(n, _)| *n == name).unwrap().1
}

fn upn(name: &str) -> String {
    format!("{name}@contoso.com")
}

fn policy(name: &str, state: &str, users: Value, clients: &[&str], grant: &str) -> Value {
    json!({
        "displayName": name,
        "state": state,
        "conditions": {
            "users": users,
            "applications": {"includeApplications": ["All"]},
            "clientAppTypes": clients,
        },
        "grantControls": {"operator": "OR", "builtInControls": [grant]},
    })
}

/// The base policies:
/// - P1 blocks Exchange ActiveSync for everyone but the break-glass accounts;
/// - P2 asks everyone for MFA in browsers and apps, except the pilot group (bob) and carol;
/// - P3 asks carol for MFA;
/// - P4 (report-only) blocks dave.
fn base_policies(dir: &Path) {
    let bg = json!([id("bg1"), id("bg2")]);
    write_json(
        &dir.join("P1.json"),
        &policy(
            "P1: Block legacy authentication",
            "enabled",
            json!({"includeUsers": ["All"], "excludeUsers": bg}),
            &["exchangeActiveSync"],
            "block",
        ),
    );
    write_json(
        &dir.join("P2.json"),
        &policy(
            "P2: MFA for everyone",
            "enabled",
            json!({"includeUsers": ["All"], "excludeUsers": [id("carol"), id("bg1"), id("bg2")],
                   "excludeGroups": [PILOT]}),
            &["browser", "mobileAppsAndDesktopClients"],
            "mfa",
        ),
    );
    write_json(
        &dir.join("P3.json"),
        &policy(
            "P3: MFA for carol",
            "enabled",
            json!({"includeUsers": [id("carol")]}),
            &["browser"],
            "mfa",
        ),
    );
    write_json(
        &dir.join("P4.json"),
        &policy(
            "P4: Block dave",
            "enabledForReportingButNotEnforced",
            json!({"includeUsers": [id("dave")]}),
            &["all"],
            "block",
        ),
    );
}

/// The head policies: P1 tightened (legacy protocols other than ActiveSync too) and, by
/// mistake, no longer excluding bg2; P2 without the pilot group's exclusion; P3 deleted; P4
/// switched on; P2's excluded users listed in another order (no change).
fn head_policies(dir: &Path) {
    base_policies(dir);
    let edit = |file: &str, f: &dyn Fn(&mut Value)| {
        let p = dir.join(file);
        let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        f(&mut v);
        write_json(&p, &v);
    };
    edit("P1.json", &|v| {
        v["conditions"]["clientAppTypes"] = json!(["other", "exchangeActiveSync"]);
        v["conditions"]["users"]["excludeUsers"] = json!([id("bg1")]);
    });
    edit("P2.json", &|v| {
        v["conditions"]["users"]["excludeGroups"] = json!([]);
        // The same users excluded, in another order: no change.
        v["conditions"]["users"]["excludeUsers"] = json!([id("bg2"), id("bg1"), id("carol")]);
    });
    edit("P4.json", &|v| v["state"] = json!("enabled"));
    std::fs::remove_file(dir.join("P3.json")).unwrap();
}

fn signin(n: usize, who: &str, client: &str, mfa: bool) -> Value {
    json!({
        "id": format!("s{n}"),
        "createdDateTime": format!("2026-10-01T10:{n:02}:00Z"),
        "userId": id(who),
        "userPrincipalName": upn(who),
        "userType": "member",
        "homeTenantId": TENANT_ID,
        "resourceTenantId": TENANT_ID,
        "appId": "89bee1f7-5e6e-4d8a-9f3d-ecd601259da7",
        "resourceId": "00000003-0000-0ff1-ce00-000000000000",
        "clientAppUsed": client,
        "isInteractive": true,
        "ipAddress": "203.0.113.5",
        "location": {"countryOrRegion": "NL"},
        "deviceDetail": {"operatingSystem": "Windows10"},
        "riskLevelDuringSignIn": "none",
        "status": {"errorCode": 0},
        "authenticationRequirement": if mfa { "multiFactorAuthentication" } else { "singleFactorAuthentication" },
    })
}

/// A tenant folder with the head policies in `policies/` and the base ones in `base/` (outside
/// the tenant's own folders), and eight sign-ins:
///
/// | # | user, client, MFA done | base (enforced / proposed) | head | effect |
/// |---|---|---|---|---|
/// | 1 | alice browser, MFA | satisfied | satisfied | none |
/// | 2 | alice IMAP | not applied | blocked (P1) | newly blocked, newly protected |
/// | 3 | bob browser | not applied (pilot) | MFA prompt (P2) | newly prompted, newly protected |
/// | 4 | bob ActiveSync | blocked | blocked | none |
/// | 5 | carol browser | MFA prompt (P3) | not applied | no longer prompted, no longer protected |
/// | 6 | carol browser, MFA | satisfied (P3) | not applied | no longer protected |
/// | 7 | dave browser | MFA prompt / blocked (P4) | blocked (P4) | enforced: newly blocked |
/// | 8 | erin browser | MFA prompt | MFA prompt | none |
fn small_tenant() -> (PathBuf, PathBuf) {
    let root = scratch("tenant");
    let users: Vec<Value> = USERS
        .iter()
        .map(|(n, i)| {
            json!({"id": i, "userPrincipalName": upn(n), "userType": "Member",
                   "accountEnabled": true, "displayName": n})
        })
        .collect();
    write_json(&root.join("users.json"), &json!({"value": users}));
    write_json(
        &root.join("groups.json"),
        &json!({"value": [{"id": PILOT, "displayName": "MFA pilot",
                           "members": [{"@odata.type": "#microsoft.graph.user", "id": id("bob")}]}]}),
    );
    let reg: Vec<Value> = USERS
        .iter()
        .map(|(n, i)| {
            json!({"id": i, "userPrincipalName": upn(n), "isMfaCapable": true,
                   "isMfaRegistered": true, "methodsRegistered": ["microsoftAuthenticatorPush"]})
        })
        .collect();
    write_json(
        &root.join("userRegistrationDetails.json"),
        &json!({"value": reg}),
    );
    std::fs::write(
        root.join("ca-replay.toml"),
        "[break_glass]\nusers = [\"bg1@contoso.com\", \"bg2@contoso.com\"]\n",
    )
    .unwrap();
    let signins = [
        signin(1, "alice", "Browser", true),
        signin(2, "alice", "IMAP4", false),
        signin(3, "bob", "Browser", false),
        signin(4, "bob", "Exchange ActiveSync", false),
        signin(5, "carol", "Browser", false),
        signin(6, "carol", "Browser", true),
        signin(7, "dave", "Browser", false),
        signin(8, "erin", "Browser", false),
    ];
    let lines: Vec<String> = signins.iter().map(Value::to_string).collect();
    std::fs::create_dir_all(root.join("signins")).unwrap();
    std::fs::write(root.join("signins/signins.ndjson"), lines.join("\n") + "\n").unwrap();
    head_policies(&root.join("policies"));
    let base = root.join("base");
    base_policies(&base);
    (root, base)
}

/// `ca-replay diff <args>` through the library, returning what it found.
fn lib_diff(args: &[&str]) -> anyhow::Result<Diff> {
    use clap::Parser;
    let mut all = vec!["ca-replay", "diff", "--quiet"];
    all.extend_from_slice(args);
    match ca_replay::cli::Cli::try_parse_from(all)?.command {
        Some(ca_replay::cli::Command::Diff(a)) => ca_replay::cli::diff::run(&a).map(|(d, _)| d),
        other => panic!("not a diff command: {other:?}"),
    }
}

/// `ca-replay diff <args>` through the binary: exit code and stderr.
fn bin_diff(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ca-replay"))
        .arg("diff")
        .args(args)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn users_with(d: &Diff, kind: ca_replay::engine::SetKind, e: Effect) -> Vec<String> {
    let mut v: Vec<String> = d
        .changed_users
        .iter()
        .filter(|u| match kind {
            ca_replay::engine::SetKind::Current => u.enforced.contains_key(&e),
            ca_replay::engine::SetKind::Proposed => u.proposed.contains_key(&e),
        })
        .map(|u| u.label.clone())
        .collect();
    v.sort();
    v
}

/// The hand-checked numbers of the small tenant (see `small_tenant`).
fn assert_small_tenant(d: &Diff) {
    use ca_replay::engine::SetKind::{Current, Proposed};
    let changes: Vec<(&str, Change, Vec<&str>)> = d
        .policies
        .iter()
        .map(|p| {
            (
                p.id.as_str(),
                p.change,
                p.pointers.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            (
                "P1",
                Change::Changed,
                vec![
                    "/conditions/clientAppTypes",
                    "/conditions/users/excludeUsers"
                ]
            ),
            (
                "P2",
                Change::Changed,
                vec!["/conditions/users/excludeGroups"]
            ),
            ("P3", Change::Removed, vec![]),
            ("P4", Change::Changed, vec!["/state"]),
        ]
    );
    assert_eq!(d.policies_unchanged, 0);
    assert_eq!((d.signins, d.evaluated, d.users), (8, 8, 5));

    let e = &d.enforced;
    assert_eq!(e.newly_blocked_users, 2);
    assert_eq!(
        users_with(d, Current, Effect::Newly(Impact::Blocked)),
        ["alice@contoso.com", "dave@contoso.com"]
    );
    assert_eq!(e.newly_prompted_users, 1);
    assert_eq!(
        users_with(d, Current, Effect::Newly(Impact::MfaPrompt)),
        ["bob@contoso.com"]
    );
    assert_eq!(e.newly_registering_users, 0);
    assert_eq!(e.newly_password_change_users, 0);
    assert_eq!(e.no_longer_protected_users, 1);
    assert_eq!(e.get(Effect::NoLongerProtected).signins, 2);
    assert_eq!(
        users_with(d, Current, Effect::NoLongerProtected),
        ["carol@contoso.com"]
    );
    assert_eq!(e.get(Effect::Eased(Impact::MfaPrompt)).users, 1);
    assert_eq!(e.get(Effect::Eased(Impact::MfaPrompt)).signins, 1);
    assert_eq!(e.get(Effect::NewlyProtected).users, 2);
    assert_eq!(e.signins_changed, 5);

    // Switching P4 on is visible in the enforced view only: the proposed set had it already.
    let p = &d.proposed;
    assert_eq!(p.newly_blocked_users, 1);
    assert_eq!(
        users_with(d, Proposed, Effect::Newly(Impact::Blocked)),
        ["alice@contoso.com"]
    );
    assert_eq!(p.newly_prompted_users, 1);
    assert_eq!(p.no_longer_protected_users, 1);
    assert_eq!(p.signins_changed, 4);

    // The deciding policies: head's for what got stricter, base's for what was lost.
    let by = |side: Side, id: &str, effect: Effect| {
        e.by_policy
            .iter()
            .find(|x| x.side == side && x.id == id)
            .and_then(|x| x.effects.get(&effect))
            .map(|c| (c.users, c.signins))
    };
    assert_eq!(
        by(Side::Head, "P1", Effect::Newly(Impact::Blocked)),
        Some((1, 1))
    );
    assert_eq!(
        by(Side::Head, "P4", Effect::Newly(Impact::Blocked)),
        Some((1, 1))
    );
    assert_eq!(
        by(Side::Head, "P2", Effect::Newly(Impact::MfaPrompt)),
        Some((1, 1))
    );
    assert_eq!(
        by(Side::Base, "P3", Effect::NoLongerProtected),
        Some((1, 2))
    );
    // The worst affected first: alice and dave (newly blocked), then bob, then carol.
    let order: Vec<&str> = d.changed_users.iter().map(|u| u.label.as_str()).collect();
    assert_eq!(
        order,
        [
            "alice@contoso.com",
            "dave@contoso.com",
            "bob@contoso.com",
            "carol@contoso.com"
        ]
    );

    // bg2 is no longer excluded from P1: the static check and the sweep find it.
    let bg = &d.break_glass;
    assert_eq!((bg.base_errors, bg.head_errors), (0, 2));
    assert_eq!(d.break_glass_new_errors, 2);
    assert!(bg
        .new_in_head
        .iter()
        .all(|f| f.account == "bg2@contoso.com" && f.policy.starts_with("P1:")));
    assert!(bg.fixed_in_head.is_empty());
}

#[test]
fn two_policy_folders_give_the_hand_checked_numbers() {
    let (root, base) = small_tenant();
    let out = root.join("out");
    let d = lib_diff(&[
        "--tenant",
        root.to_str().unwrap(),
        "--base",
        base.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
    .unwrap();
    assert_small_tenant(&d);

    // diff.json carries the same numbers, versioned.
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("diff.json")).unwrap()).unwrap();
    assert_eq!(v["schema_version"], 1);
    let enforced = &v["views"]["enforced"];
    assert_eq!(enforced["users"]["newly_blocked"], 2);
    assert_eq!(enforced["signins"]["newly_blocked"], 2);
    assert_eq!(enforced["users"]["newly_prompted"], 1);
    assert_eq!(enforced["users"]["no_longer_protected"], 1);
    assert_eq!(enforced["signins"]["no_longer_protected"], 2);
    assert_eq!(enforced["users"]["no_longer_prompted"], 1);
    assert_eq!(v["views"]["proposed"]["users"]["newly_blocked"], 1);
    assert_eq!(v["policies"]["removed"], 1);
    assert_eq!(v["policies"]["changed"], 3);
    assert_eq!(v["break_glass"]["new_errors_in_head"], 2);
    assert_eq!(v["users"].as_array().unwrap().len(), 4);
    assert_eq!(
        v["headline"].as_str().unwrap(),
        ca_replay::report::diff::headline(&d)
    );

    // diff.md: the headline, the changed policies and the people.
    let md = std::fs::read_to_string(out.join("diff.md")).unwrap();
    assert!(
        md.contains("Once merged, this change would newly block 2 users (2 sign-ins), newly prompt 1 user (1 sign-in) for MFA, and leave 1 user (2 sign-ins) no longer protected by MFA or a block."),
        "{md}"
    );
    assert!(
        md.contains("It adds 2 errors for the break-glass accounts."),
        "{md}"
    );
    assert!(
        md.contains("| P4: Block dave | changed | report-only → enabled | `/state` |"),
        "{md}"
    );
    assert!(
        md.contains("| P3: MFA for carol | removed | enabled | · |"),
        "{md}"
    );
    assert!(md.contains("| Newly blocked | 2 (2) | 1 (1) |"), "{md}");
    assert!(
        md.contains("| No longer protected by MFA or a block | 1 (2) | 1 (2) |"),
        "{md}"
    );
    assert!(
        md.contains("| dave@contoso.com | newly blocked (1 sign-in) | · |"),
        "{md}"
    );
    assert!(
        md.contains("❌ new in head: bg2@contoso.com · P1: Block legacy authentication"),
        "{md}"
    );

    // diff.html: self-contained, the same headline.
    let html = std::fs::read_to_string(out.join("diff.html")).unwrap();
    assert!(html.contains("newly block 2 users (2 sign-ins)"));
    assert!(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"));
    assert!(
        html.contains(".card .v"),
        "the report's style sheet is inlined"
    );

    // Through the binary: exit 0, the headline on stderr.
    let (code, err) = bin_diff(
        &[
            "--tenant",
            root.to_str().unwrap(),
            "--base",
            base.to_str().unwrap(),
            "--out",
            root.join("out2").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("Once merged, this change would newly block 2 users"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(out.join("diff.json")).unwrap(),
        std::fs::read(root.join("out2/diff.json")).unwrap(),
        "the same inputs give the same bytes"
    );

    // The same folder on both sides: nothing to report, and it says so.
    let same = lib_diff(&[
        "--tenant",
        root.to_str().unwrap(),
        "--base",
        root.join("policies").to_str().unwrap(),
        "--out",
        root.join("out3").to_str().unwrap(),
    ])
    .unwrap();
    assert!(same.policies.is_empty());
    assert_eq!(same.policies_unchanged, 3);
    assert_eq!(
        same.enforced.signins_changed + same.proposed.signins_changed,
        0
    );
    assert!(same.changed_users.is_empty());
    assert_eq!(
        ca_replay::report::diff::headline(&same),
        "No policy differs between base and head: nothing changes."
    );
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn gates_on_a_diff_exit_1_and_show_in_the_reports() {
    let (root, base) = small_tenant();
    let (tenant, base) = (root.to_str().unwrap(), base.to_str().unwrap());
    let out = root.join("gated");
    let (junit, step) = (root.join("diff.xml"), root.join("step.md"));
    let args = [
        "--tenant",
        tenant,
        "--base",
        base,
        "--out",
        out.to_str().unwrap(),
        "--max-new-blocked-users",
        "1",
        "--max-new-prompted-users",
        "1",
        "--junit",
        junit.to_str().unwrap(),
    ];
    // 2 users newly blocked (enforced view) is over 1; 1 newly prompted is within 1.
    let (code, err) = bin_diff(&args, &[("GITHUB_STEP_SUMMARY", step.to_str().unwrap())]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(
            "gate max_new_blocked_users: CROSSED (2 user(s) newly blocked, over the limit of 1)"
        ),
        "{err}"
    );
    assert!(err.contains("gate max_new_prompted_users: pass"), "{err}");
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("diff.json")).unwrap()).unwrap();
    assert_eq!(v["gates"][0]["gate"], "max_new_blocked_users");
    assert_eq!(v["gates"][0]["passed"], false);
    let md = std::fs::read_to_string(out.join("diff.md")).unwrap();
    assert!(
        md.contains("## Gates") && md.contains("**crossed**"),
        "{md}"
    );
    assert_eq!(std::fs::read_to_string(&step).unwrap(), format!("{md}\n"));
    let x = std::fs::read_to_string(&junit).unwrap();
    assert!(x.contains("tests=\"2\" failures=\"1\""), "{x}");
    assert!(std::fs::read_to_string(out.join("diff.html"))
        .unwrap()
        .contains("<h2>Gates</h2>"));

    // The break-glass gate counts errors new in head: the head drops bg2's exclusion.
    let mut relaxed = args.to_vec();
    relaxed[7] = "10";
    let (code, err) = bin_diff(&relaxed, &[]);
    assert_eq!(code, 0, "{err}");
    relaxed.push("--break-glass-gate");
    let (code, err) = bin_diff(&relaxed, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("gate break_glass: CROSSED (2 break-glass error(s)"),
        "{err}"
    );
    // Self-validation is `run`'s: asking `diff` for it is an error.
    let (code, err) = bin_diff(
        &["--tenant", tenant, "--base", base, "--min-agreement", "0.9"],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--min-agreement applies to `run`"), "{err}");
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn errors_exit_2_and_name_what_is_wrong() {
    let (root, base) = small_tenant();
    let tenant = root.to_str().unwrap();
    // A base that is neither a folder nor a revision (the tenant is in no repository).
    let (code, err) = bin_diff(&["--tenant", tenant, "--base", "no-such-folder"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`no-such-folder`"), "{err}");
    // A base policy that does not compile stops the run, naming the side.
    write_json(
        &base.join("P9.json"),
        &json!({"state": "sometimes", "conditions": {}}),
    );
    let (code, err) = bin_diff(&["--tenant", tenant, "--base", base.to_str().unwrap()], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("loading the base policies"), "{err}");
    let _ = std::fs::remove_dir_all(root);
}

/// Runs git in `dir` with an identity of its own (a clean CI machine has none).
fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .env("GIT_AUTHOR_NAME", "ca-replay test")
        .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
        .env("GIT_COMMITTER_NAME", "ca-replay test")
        .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn base_as_a_git_revision() {
    let (root, _) = small_tenant();
    // The repository holds the tenant; the base policies are committed, then changed.
    let policies = root.join("policies");
    std::fs::remove_dir_all(&policies).unwrap();
    base_policies(&policies);
    git(&root, &["init", "-q"]);
    git(&root, &["add", "policies"]);
    git(&root, &["commit", "-q", "-m", "base policies"]);
    std::fs::remove_dir_all(&policies).unwrap();
    head_policies(&policies);
    let tenant = root.to_str().unwrap();
    let leftovers = || {
        let prefix = format!("ca-replay-base-{}-", std::process::id());
        std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(&prefix)
            })
            .count()
    };

    for rev in ["HEAD:policies", "HEAD", "main"] {
        let out = scratch("git-out");
        let d = lib_diff(&[
            "--tenant",
            tenant,
            "--base",
            rev,
            "--out",
            out.to_str().unwrap(),
        ])
        .unwrap();
        assert_small_tenant(&d);
        let rev_part = rev.split(':').next().unwrap();
        assert_eq!(d.base_label, format!("{rev_part}:policies"));
        assert_eq!(d.base_commit.as_deref().map(str::len), Some(40));
        let md = std::fs::read_to_string(out.join("diff.md")).unwrap();
        assert!(md.contains(&format!("Base `{}`", d.base_label)), "{md}");
        let _ = std::fs::remove_dir_all(out);
    }
    // The revision's files were extracted into a temporary folder, removed afterwards.
    assert_eq!(leftovers(), 0);

    // Through the binary: a revision is exit 0; an unknown one, or a path missing at that
    // revision, is exit 2 and says what git said.
    let out = root.join("out");
    let (code, err) = bin_diff(
        &[
            "--tenant",
            tenant,
            "--base",
            "HEAD:policies",
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let (code, err) = bin_diff(&["--tenant", tenant, "--base", "nope:policies"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`nope:policies`") && err.contains("git said"),
        "{err}"
    );
    let (code, err) = bin_diff(&["--tenant", tenant, "--base", "HEAD:elsewhere"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`HEAD:elsewhere`") && err.contains("elsewhere"),
        "{err}"
    );
    // A revision naming a file, not a folder.
    let (code, err) = bin_diff(
        &["--tenant", tenant, "--base", "HEAD:policies/P1.json"],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a folder"), "{err}");
    let _ = std::fs::remove_dir_all(root);
}

/// The sample tenant against a copy of its policies with CA004 (MFA for all users) switched on
/// and CA010's break-glass mistake fixed. The enforced view of the change is what `run` reports
/// for switching on CA004 alone (`--policy` keeps the enabled ones and CA004): one replay
/// machinery, the same numbers.
#[test]
fn the_sample_tenant_with_one_policy_switched_on() {
    let head = scratch("sample-head");
    for entry in std::fs::read_dir(sample().join("policies")).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, head.join(p.file_name().unwrap())).unwrap();
    }
    let edit = |file: &str, f: &dyn Fn(&mut Value)| {
        let p = head.join(file);
        let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        f(&mut v);
        write_json(&p, &v);
    };
    edit("CA004.json", &|v| v["state"] = json!("enabled"));
    edit("CA010.json", &|v| {
        v["conditions"]["users"]["excludeGroups"] = json!(["f237f329-4362-4387-8e8c-382f56543d01"])
    });
    let out = head.join("out");
    let base = sample().join("policies");
    let d = lib_diff(&[
        "--tenant",
        sample().to_str().unwrap(),
        "--base",
        base.to_str().unwrap(),
        "--head",
        head.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
    .unwrap();
    let changed: Vec<(&str, Vec<&str>)> = d
        .policies
        .iter()
        .map(|p| {
            (
                &p.name[..5],
                p.pointers.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        changed,
        [
            ("CA004", vec!["/state"]),
            ("CA010", vec!["/conditions/users/excludeGroups"])
        ]
    );
    assert_eq!(d.policies_unchanged, 9);
    // CA010 is report-only and only its break-glass scope changed: the proposed view is quiet.
    assert_eq!(d.proposed.signins_changed, 0);
    assert!(d.enforced.newly_prompted_users > 0);
    assert_eq!(d.enforced.newly_blocked_users, 0);
    assert_eq!(d.enforced.no_longer_protected_users, 0);
    // The sample's break-glass mistake (CA010, both accounts, static and sweep) is fixed.
    assert_eq!(d.break_glass.fixed_in_head.len(), 4);
    assert_eq!(d.break_glass_new_errors, 0);
    assert_eq!(d.break_glass.head_errors, 0);

    // `run` with CA004 as the only report-only policy: its current → proposed difference.
    let run_out = head.join("run");
    let mut args: Vec<String> = ["ca-replay", "run", "--quiet", "--tenant"]
        .map(String::from)
        .to_vec();
    args.push(sample().display().to_string());
    args.push("--out".into());
    args.push(run_out.display().to_string());
    for p in [
        "CA001",
        "CA002",
        "CA003",
        "CA004",
        "CA005",
        "CA006",
        "CA011",
        "idp-signin-risk",
        "idp-mfa-registration",
    ] {
        args.push("--policy".into());
        args.push(p.into());
    }
    use clap::Parser;
    ca_replay::cli::main(ca_replay::cli::Cli::try_parse_from(args).unwrap()).unwrap();
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(run_out.join("summary.json")).unwrap())
            .unwrap();
    let r = &summary["difference"];
    let e = &d.enforced;
    for (key, impact) in [
        ("users_newly_blocked", Impact::Blocked),
        ("users_newly_password_change", Impact::PasswordChange),
        ("users_newly_registering", Impact::MfaRegistration),
        ("users_newly_prompted", Impact::MfaPrompt),
        ("users_newly_reauth", Impact::InteractiveReauth),
        ("users_newly_nudged", Impact::RegistrationNudge),
    ] {
        let c = e.get(Effect::Newly(impact));
        assert_eq!(r[key].as_u64().unwrap(), c.users as u64, "{key}");
        assert_eq!(
            r["signins_newly"][impact.as_str()].as_u64().unwrap_or(0),
            c.signins,
            "{key}"
        );
    }
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("diff.json")).unwrap()).unwrap();
    assert_eq!(
        v["views"]["enforced"]["users"]["newly_prompted"],
        r["users_newly_prompted"]
    );
    let _ = std::fs::remove_dir_all(head);
}
