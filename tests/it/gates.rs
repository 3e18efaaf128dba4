//! CI gates end to end through the binary: exit codes (0 pass, 1 a gate crossed, 2 error), the
//! JUnit file, `$GITHUB_STEP_SUMMARY`, `[gates]` in `ca-replay.toml` overridden by flags, and
//! `lint` on the sample tenant (its deliberate break-glass mistake fails it; fixing it passes).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};

const BREAK_GLASS_GROUP: &str = "f237f329-4362-4387-8e8c-382f56543d01";

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data/contoso")
}

fn scratch(what: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ca-replay-gates-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A copy of the sample tenant without its sign-ins (pass `--signins` for them).
fn copy() -> PathBuf {
    let dir = scratch("tenant");
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

/// Runs the binary with `args` (and `envs`), without the caller's GitHub variables; returns
/// the exit code and stderr.
fn ca_replay(args: &[&str], envs: &[(&str, &Path)]) -> (i32, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ca-replay"));
    c.args(args).env_remove("GITHUB_STEP_SUMMARY");
    for (k, v) in envs {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn run_exits_1_when_a_gate_is_crossed_and_says_so_everywhere() {
    let dir = scratch("run");
    let (out, junit, step) = (dir.join("out"), dir.join("gates.xml"), dir.join("step.md"));
    let sample = sample();
    let (code, err) = ca_replay(
        &[
            "run",
            "--tenant",
            s(&sample),
            "--out",
            s(&out),
            "--quiet",
            "--max-new-blocked-users",
            "0",
            "--min-agreement",
            "0.99",
            "--junit",
            s(&junit),
        ],
        &[("GITHUB_STEP_SUMMARY", &step)],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("gate max_new_blocked_users: CROSSED"), "{err}");
    assert!(err.contains("gate min_agreement: pass"), "{err}");

    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let blocked = summary["difference"]["users_newly_blocked"]
        .as_u64()
        .unwrap();
    assert!(blocked > 0);
    assert_eq!(
        summary["gates"],
        json!([
            {"gate": "max_new_blocked_users", "limit": "0", "actual": blocked.to_string(), "passed": false,
             "message": format!("{blocked} user(s) newly blocked, over the limit of 0")},
            {"gate": "min_agreement", "limit": "99.00%", "actual": "100.00%", "passed": true,
             "message": summary["gates"][1]["message"].clone()},
        ])
    );
    let x = std::fs::read_to_string(&junit).unwrap();
    assert!(x.contains("tests=\"2\" failures=\"1\""), "{x}");
    assert!(x.contains("<testcase classname=\"gates\" name=\"max_new_blocked_users\">\n      <failure message="), "{x}");
    // The job summary is the run's report.md, gates included.
    let report_md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let step_md = std::fs::read_to_string(&step).unwrap();
    assert_eq!(step_md, format!("{report_md}\n"));
    assert!(step_md.contains("## Gates") && step_md.contains("| `max_new_blocked_users` | 0 |"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn toml_gates_apply_and_flags_override_them() {
    let tenant = copy();
    let toml = std::fs::read_to_string(tenant.join("ca-replay.toml")).unwrap();
    std::fs::write(
        tenant.join("ca-replay.toml"),
        format!("{toml}\n[gates]\nmax_new_prompted_users = 0\n"),
    )
    .unwrap();
    let signins = sample().join("signins");
    let out = tenant.join("out");
    let base = [
        "run",
        "--tenant",
        s(&tenant),
        "--signins",
        s(&signins),
        "--out",
        s(&out),
        "--quiet",
        "--policy",
        "CA004",
    ];
    let (code, err) = ca_replay(&base, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("gate max_new_prompted_users: CROSSED"),
        "{err}"
    );
    let mut args = base.to_vec();
    args.extend(["--max-new-prompted-users", "1000000"]);
    let (code, err) = ca_replay(&args, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("gate max_new_prompted_users: pass"), "{err}");

    // A gate value that makes no sense is an error (exit 2) naming the file.
    std::fs::write(
        tenant.join("ca-replay.toml"),
        "[gates]\nmin_agreement = 99\n",
    )
    .unwrap();
    let (code, err) = ca_replay(&base, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("ca-replay.toml") && err.contains("min_agreement = 99"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(tenant);
}

#[test]
fn no_gates_configured_exits_0() {
    let dir = scratch("nogates");
    let sample = sample();
    let (code, err) = ca_replay(
        &[
            "run",
            "--tenant",
            s(&sample),
            "--out",
            s(&dir.join("out")),
            "--quiet",
            "--policy",
            "CA010",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("gate "), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn lint_fails_on_the_sample_mistake_and_passes_once_it_is_fixed() {
    let tenant = copy();
    let junit = tenant.join("lint.xml");
    let step = tenant.join("step.md");
    let args = ["lint", "--tenant", s(&tenant), "--junit", s(&junit)];
    let (code, err) = ca_replay(&args, &[("GITHUB_STEP_SUMMARY", &step)]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("lint failed"), "{err}");
    let x = std::fs::read_to_string(&junit).unwrap();
    assert!(x.contains("failures=\"2\""), "{x}");
    assert!(
        x.contains("<testcase classname=\"break_glass\" name=\"bg1@contoso.com\">\n      <failure message=\"CA010"),
        "{x}"
    );
    let step_md = std::fs::read_to_string(&step).unwrap();
    assert!(step_md.starts_with("# ca-replay lint:"), "{step_md}");
    assert!(
        step_md.contains("**error** bg2@contoso.com: CA010"),
        "{step_md}"
    );

    // Fixed: CA010 leaves out the break-glass group.
    let path = tenant.join("policies/CA010.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["conditions"]["users"]["excludeGroups"] = json!([BREAK_GLASS_GROUP]);
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let (code, err) = ca_replay(&args, &[]);
    assert_eq!(code, 0, "{err}");
    let x = std::fs::read_to_string(&junit).unwrap();
    assert!(x.contains("failures=\"0\""), "{x}");
    // The break-glass accounts' coverage gap is a note, not a failure.
    assert!(
        x.contains("<testcase classname=\"exclusions\" name=\"coverage gap\">\n      <system-out>2 user(s) excluded from every policy"),
        "{x}"
    );

    // An excluded group without members is a warning: listed, not failed.
    let groups_path = tenant.join("groups.json");
    let mut groups: Value =
        serde_json::from_str(&std::fs::read_to_string(&groups_path).unwrap()).unwrap();
    let empty = "0e0e0e0e-0000-4000-8000-00000000e0e0";
    groups["value"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": empty, "displayName": "Left empty", "members": []}));
    std::fs::write(&groups_path, serde_json::to_string(&groups).unwrap()).unwrap();
    v["conditions"]["users"]["excludeGroups"] = json!([BREAK_GLASS_GROUP, empty]);
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let (code, err) = ca_replay(&args, &[("GITHUB_STEP_SUMMARY", &step)]);
    assert_eq!(code, 0, "{err}");
    let x = std::fs::read_to_string(&junit).unwrap();
    assert!(x.contains("failures=\"0\""), "{x}");
    assert!(
        x.contains("<testcase classname=\"exclusions\" name=\"CA010: Block access for unknown or unsupported device platform\">\n      <system-out>excludeGroups[1] group `Left empty`"),
        "{x}"
    );
    let step_md = std::fs::read_to_string(&step).unwrap();
    assert!(
        step_md.contains("**Exclusions**: 0 error(s), 1 warning(s), 1 note(s)."),
        "{step_md}"
    );

    // A placeholder id is a validation error: lint fails on it, and does not run the
    // break-glass checks on a half-compiled set.
    v["conditions"]["users"]["excludeGroups"] = json!(["<EmergencyAccessGroup>"]);
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let (code, err) = ca_replay(&args, &[]);
    assert_eq!(code, 1, "{err}");
    let x = std::fs::read_to_string(&junit).unwrap();
    assert!(x.contains("<testcase classname=\"validation\" name=\"CA010: Block access for unknown or unsupported device platform\">\n      <failure message=\"error:"), "{x}");
    assert!(
        x.contains("not checked: the policies have blocking findings"),
        "{x}"
    );

    // Without configured accounts lint says so and fails.
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&{
            v["conditions"]["users"]["excludeGroups"] = json!([BREAK_GLASS_GROUP]);
            v
        })
        .unwrap(),
    )
    .unwrap();
    std::fs::write(tenant.join("ca-replay.toml"), "").unwrap();
    let (code, err) = ca_replay(&args, &[]);
    assert_eq!(code, 1, "{err}");
    let x = std::fs::read_to_string(&junit).unwrap();
    assert!(x.contains("no break-glass accounts are configured"), "{x}");
    let _ = std::fs::remove_dir_all(tenant);
}
