//! The report files end to end: golden snapshots of the sample tenant's `summary.json` and
//! `report.md`, byte-identical output across runs and thread counts, and hostile names escaped.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use ca_replay::generate::{self, Options};
use ca_replay::ingest::{read_signins, IngestOptions};
use ca_replay::policy::BuildOptions;
use ca_replay::replay::Details;
use ca_replay::tenant::Tenant;

/// A fresh folder `<unique>/run`: its parent holds no other run, so no trend is picked up.
pub(crate) fn scratch() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let base = std::env::temp_dir().join(format!(
        "ca-replay-reports-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&base);
    base.join("run")
}

/// Removes a `scratch()` folder with its unique parent.
pub(crate) fn cleanup(dir: PathBuf) {
    if let Some(base) = dir.parent() {
        let _ = std::fs::remove_dir_all(base);
    }
}

/// Loads, replays and writes the reports of `root` into `out` on `threads` threads.
fn run(root: &Path, out: &Path, threads: usize) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let options = BuildOptions::default();
        let tenant = Tenant::load(root, options).unwrap();
        let (signins, report) =
            read_signins(&[root.join("signins")], IngestOptions::default()).unwrap();
        ca_replay::report::replay_and_write(
            out,
            &tenant,
            &signins,
            &report,
            Details::Applied,
            options,
        )
        .unwrap();
    });
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// `ca-replay run --tenant <sample> <extra…>` through the library's CLI entry point.
pub(crate) fn cli_run(extra: &[&str]) -> anyhow::Result<ca_replay::cli::ExitCode> {
    cli_run_on(&sample(), extra)
}

/// `ca-replay run --tenant <tenant> <extra…>` through the library's CLI entry point.
pub(crate) fn cli_run_on(
    tenant: &Path,
    extra: &[&str],
) -> anyhow::Result<ca_replay::cli::ExitCode> {
    use clap::Parser;
    let mut args = vec!["ca-replay", "run", "--tenant", tenant.to_str().unwrap()];
    args.extend_from_slice(extra);
    ca_replay::cli::main(ca_replay::cli::Cli::try_parse_from(args).unwrap())
}

pub(crate) fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data/contoso")
}

/// The sample tenant's summary and Markdown report, checked by hand once and pinned.
#[test]
fn sample_tenant_reports_match_the_snapshots() {
    let out = scratch();
    run(&sample(), &out, 2);
    let summary = std::fs::read_to_string(out.join("summary.json")).unwrap();
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    insta::assert_snapshot!("sample_summary_json", summary);
    insta::assert_snapshot!("sample_report_md", report);
    // details.parquet holds the rows of details.csv, typed.
    let csv_rows = csv::Reader::from_path(out.join("details.csv"))
        .unwrap()
        .records()
        .count() as i64;
    let file = std::fs::File::open(out.join("details.parquet")).unwrap();
    let meta = parquet::file::reader::FileReader::metadata(
        &parquet::file::reader::SerializedFileReader::new(file).unwrap(),
    )
    .file_metadata()
    .clone();
    assert_eq!(meta.num_rows(), csv_rows);
    assert_eq!(meta.schema_descr().num_columns(), 11);
    let names: Vec<String> = files(&out).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "details.csv",
            "details.parquet",
            "report.html",
            "report.md",
            "summary.json",
            "users.csv"
        ]
    );
    cleanup(out);
}

/// Two runs, on one thread and on several, write the same bytes.
#[test]
fn reports_are_byte_identical_across_runs_and_threads() {
    let root = scratch();
    generate::generate(
        &root,
        &Options {
            users: 120,
            days: 4,
            seed: 11,
            signins: Some(8_000),
            start: chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 11, 2, 0, 0, 0).unwrap(),
            gzip: false,
            format: generate::Format::Graph,
        },
    )
    .unwrap();
    let (a, b, c) = (scratch(), scratch(), scratch());
    run(&root, &a, 1);
    run(&root, &b, 4);
    run(&root, &c, 2);
    let fa = files(&a);
    assert_eq!(fa.len(), 6);
    assert!(fa == files(&b), "1 thread vs 4 threads differ");
    assert!(fa == files(&c), "two runs differ");
    for d in [root, a, b, c] {
        cleanup(d);
    }
}

/// The streaming run (batches read, replayed and reported one after another) writes the same
/// files as a replay of every sign-in held in memory, even with the files newest first: the
/// MFA registration clocks then move back as older files come, answers given inside the
/// 14-day grace change, and the run replays again with the final clocks.
#[test]
fn a_streamed_run_newest_first_equals_the_replay_in_memory() {
    let root = scratch();
    let signins = root.join("signins");
    std::fs::create_dir_all(&signins).unwrap();
    for e in std::fs::read_dir(sample()).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, root.join(p.file_name().unwrap())).unwrap();
        }
    }
    copy_dir(&sample().join("policies"), &root.join("policies"));
    let mut days: Vec<PathBuf> = std::fs::read_dir(sample().join("signins"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    days.sort();
    days.reverse();
    for (i, p) in days.iter().enumerate() {
        let name = format!("{i:02}-{}", p.file_name().unwrap().to_string_lossy());
        std::fs::copy(p, signins.join(name)).unwrap();
    }
    let (streamed, held) = (scratch(), scratch());
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_ca-replay"))
        .args(["run", "--quiet", "--tenant"])
        .arg(&root)
        .arg("--out")
        .arg(&streamed)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{err}");
    assert!(err.contains("note: replayed twice"), "{err}");
    let options = BuildOptions::default();
    let tenant = Tenant::load(&root, options).unwrap();
    let (all, report) = read_signins(&[signins], IngestOptions::default()).unwrap();
    ca_replay::report::replay_and_write(&held, &tenant, &all, &report, Details::Applied, options)
        .unwrap();
    let (a, b) = (files(&streamed), files(&held));
    assert_eq!(a.len(), 6);
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(x == y, "{name} differs");
    }
    for d in [root, streamed, held] {
        cleanup(d);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
}

/// Names with markup, table pipes, newlines and spreadsheet formula prefixes come out escaped.
#[test]
fn hostile_names_are_escaped_in_every_report() {
    let root = scratch();
    generate::generate(
        &root,
        &Options {
            users: 60,
            days: 2,
            seed: 5,
            signins: Some(400),
            start: chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 11, 2, 0, 0, 0).unwrap(),
            gzip: false,
            format: generate::Format::Graph,
        },
    )
    .unwrap();
    // A real member of the tenant, signing in over IMAP (blocked by the legacy-auth policy).
    let users: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("users.json")).unwrap()).unwrap();
    let member = users["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| {
            u["userType"] == "Member" && u["userPrincipalName"].as_str().unwrap().starts_with('a')
        })
        .or_else(|| {
            users["value"]
                .as_array()
                .unwrap()
                .iter()
                .find(|u| u["userType"] == "Member")
        })
        .unwrap();
    let mut lines = String::new();
    for i in 0..3 {
        let s = serde_json::json!({
            "id": format!("hostile-{i}"), "createdDateTime": "2026-11-02T10:00:00Z",
            "userId": member["id"], "userType": "member",
            "userPrincipalName": "=HYPERLINK(\"http://x\")<script>alert(1)</script>",
            "appId": "00000002-0000-0ff1-ce00-000000000000",
            "appDisplayName": "Mail | *bold* [x](http://evil)\n# heading",
            "resourceId": "00000002-0000-0ff1-ce00-000000000000",
            "clientAppUsed": "IMAP4", "isInteractive": true, "ipAddress": "203.0.113.9",
            "location": {"countryOrRegion": "NL"}, "status": {"errorCode": 0}
        });
        lines.push_str(&s.to_string());
        lines.push('\n');
    }
    std::fs::write(root.join("signins/hostile.ndjson"), lines).unwrap();
    let out = scratch();
    run(&root, &out, 2);
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(!md.contains("<script>"), "{md}");
    assert!(md.contains("&lt;script&gt;"), "{md}");
    assert!(
        md.contains("Mail \\| \\*bold\\* \\[x\\](http://evil) \\# heading"),
        "{md}"
    );
    assert!(!md.contains("\n# heading"));
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(!html.contains("<script>alert"), "raw markup in report.html");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;")
            || html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "escaped name missing from report.html"
    );
    assert!(
        html.contains("Mail | *bold* [x](http:&#x2f;&#x2f;evil)")
            || html.contains("Mail | *bold* [x](http://evil)")
    );
    assert_eq!(
        html.matches("<script>").count(),
        1,
        "only the page's own sorting script"
    );
    for csv_name in ["users.csv", "details.csv"] {
        let text = std::fs::read_to_string(out.join(csv_name)).unwrap();
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let mut hostile_rows = 0;
        for rec in r.records() {
            let rec = rec.unwrap();
            for cell in rec.iter() {
                assert!(
                    !cell.starts_with(['=', '+', '-', '@']),
                    "{csv_name}: formula cell `{cell}`"
                );
            }
            if rec.iter().any(|c| c.contains("HYPERLINK")) {
                hostile_rows += 1;
                assert!(rec.iter().any(|c| c.starts_with("'=HYPERLINK")));
            }
        }
        assert!(
            hostile_rows > 0,
            "{csv_name} has no row for the hostile sign-ins"
        );
    }
    for d in [root, out] {
        cleanup(d);
    }
}

/// The generated sample's recorded verdicts agree with ca-replay's; a perturbed one shows up as
/// a disagreement with ca-replay's reason.
#[test]
fn self_validation_finds_a_perturbed_verdict() {
    let root = scratch();
    generate::generate(
        &root,
        &Options {
            users: 60,
            days: 1,
            seed: 21,
            signins: Some(600),
            start: chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 11, 2, 0, 0, 0).unwrap(),
            gzip: false,
            format: generate::Format::Graph,
        },
    )
    .unwrap();
    let summary = |root: &Path| {
        let out = scratch();
        run(root, &out, 2);
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap())
                .unwrap();
        cleanup(out);
        v["self_validation"].clone()
    };
    let clean = summary(&root);
    assert!(clean["compared"].as_u64().unwrap() > 1000);
    assert_eq!(clean["compared"], clean["agreed"]);

    // Entra "recorded" a failure for a policy that did not apply to the first sign-in.
    let file = root.join("signins/signins-2026-11-02.ndjson");
    let text = std::fs::read_to_string(&file).unwrap();
    let (first, rest) = text.split_once('\n').unwrap();
    let first = first.replacen("\"result\":\"notApplied\"", "\"result\":\"failure\"", 1);
    assert!(first.contains("\"result\":\"failure\""));
    std::fs::write(&file, format!("{first}\n{rest}")).unwrap();
    let id = serde_json::from_str::<serde_json::Value>(&first).unwrap()["id"].clone();

    let perturbed = summary(&root);
    assert_eq!(
        perturbed["agreed"].as_u64().unwrap() + 1,
        perturbed["compared"].as_u64().unwrap()
    );
    let d = &perturbed["disagreements_first"][0];
    assert_eq!(d["signin_id"], id);
    assert_eq!(
        (d["entra"].as_str(), d["ca_replay"].as_str()),
        (Some("failure"), Some("notApplied"))
    );
    assert!(!d["reason"].as_str().unwrap().is_empty());
    cleanup(root);
}

/// `--from`/`--to` replay a window; what falls outside is counted, not lost.
#[test]
fn a_time_window_counts_what_it_leaves_out() {
    let out = scratch();
    let code = cli_run(&[
        "--out",
        out.to_str().unwrap(),
        "--from",
        "2026-11-10",
        "--to",
        "2026-11-12T00:00:00Z",
    ])
    .unwrap();
    assert_eq!(code as i32, 0);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let inputs = &v["inputs"];
    let inside = inputs["signins"].as_u64().unwrap();
    let outside = inputs["window"]["signins_outside"].as_u64().unwrap();
    assert_eq!(inside + outside, 41_040);
    assert!(inside > 0 && outside > inside);
    assert!(inputs["from"].as_str().unwrap() >= "2026-11-10");
    assert!(inputs["to"].as_str().unwrap() < "2026-11-12");
    cleanup(out);
}

/// Without a terminal on stderr (CI, a pipe) the run prints no progress bars: only its lines.
#[test]
fn no_progress_output_without_a_terminal() {
    let out = scratch();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_ca-replay"))
        .args(["run", "--tenant"])
        .arg(sample())
        .arg("--out")
        .arg(&out)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        !err.contains("reading [") && !err.contains("replaying ["),
        "{err}"
    );
    assert!(
        !err.contains('\r') && !err.contains("\u{1b}["),
        "control sequences: {err:?}"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with("replayed 41040 sign-ins")),
        "{err}"
    );
    cleanup(out);
}

/// Runs written one folder each under one root: the newer one reports the change since the
/// older one; a folder name that could escape the root is refused.
#[test]
fn nightly_runs_report_the_trend_since_the_previous_one() {
    let root = scratch();
    let run = |extra: &[&str]| {
        let mut args = vec!["--reports-dir", root.to_str().unwrap()];
        args.extend_from_slice(extra);
        cli_run(&args)
    };
    run(&["--to", "2026-11-15", "--run-name", "week-1"]).unwrap();
    run(&[]).unwrap();
    let newest = root.join("contoso-2026-11-22");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(newest.join("summary.json")).unwrap())
            .unwrap();
    let t = &v["trend"];
    assert_eq!(t["previous_run"], "week-1");
    let blocked = &t["difference"]["users_newly_blocked"];
    assert_eq!(
        blocked["now"].as_i64().unwrap() - blocked["previous"].as_i64().unwrap(),
        blocked["change"].as_i64().unwrap()
    );
    let md = std::fs::read_to_string(newest.join("report.md")).unwrap();
    assert!(md.contains("Since the previous run (week-1"), "{md}");
    let first: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("week-1/summary.json")).unwrap())
            .unwrap();
    assert!(first["trend"].is_null());
    assert!(run(&["--run-name", "../escape"]).is_err());
    cleanup(root);
}

/// `--policy` replays a subset (by id, name, or the name's `CA010`-style prefix); a name that
/// matches nothing is an error, not an empty report.
#[test]
fn policy_subset_replays_only_the_named_policies() {
    let out = scratch();
    let run = |extra: &[&str]| {
        let mut args = vec!["--out", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        cli_run(&args)
    };
    run(&[
        "--policy",
        "ca010",
        "--policy",
        "a1b2c3d4-0000-4000-8000-000000000002",
    ])
    .unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let names: Vec<&str> = v["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "CA002: Block legacy authentication",
            "CA010: Block access for unknown or unsupported device platform"
        ]
    );
    let e = run(&["--policy", "CA999"]).unwrap_err().to_string();
    assert!(e.contains("CA999") && e.contains("CA001:"), "{e}");
    cleanup(out);
}

/// `--details-csv never` writes details.parquet only, says so in the summary, and removes the
/// details.csv an earlier run left in the same folder.
#[test]
fn details_csv_can_be_left_out_and_an_old_one_goes() {
    let out = scratch();
    let run = |extra: &[&str]| {
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_ca-replay"))
            .args(["run", "--quiet", "--tenant"])
            .arg(sample())
            .arg("--out")
            .arg(&out)
            .args(extra)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
        summary["details"].clone()
    };
    let first = run(&[]);
    assert_eq!(first["csv_written"], true);
    assert!(first["csv_note"].is_null());
    let rows = first["rows"].as_u64().unwrap();
    let csv = std::fs::read_to_string(out.join("details.csv")).unwrap();
    assert_eq!(csv.lines().count() as u64, rows + 1);
    let second = run(&["--details-csv", "never"]);
    assert_eq!(second["csv_written"], false);
    assert_eq!(second["rows"].as_u64(), Some(rows));
    assert!(second["csv_note"].as_str().unwrap().contains("never"));
    assert!(!out.join("details.csv").exists());
    assert!(out.join("details.parquet").exists());
    cleanup(out);
}
