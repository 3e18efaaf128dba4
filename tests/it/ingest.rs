//! Sign-in ingest across formats: the same seven sign-ins written as Graph JSON, as the portal's
//! CSV download, as Log Analytics JSON rows and as a Log Analytics CSV export
//! (`tests/fixtures/signins/`) normalize to equal `SignIn`s for what each format carries; bad
//! inputs become counted diagnostics (file, record, line, field, reason) or a clear error, never a
//! panic; the public samples of `../shared/fixtures/` load in place.

use std::io::Write;
use std::path::{Path, PathBuf};

use ca_replay::ingest::{
    portal_csv::CSV_CANNOT_CARRY, read_signins, Diagnostic, IngestError, IngestOptions,
    IngestReport,
};
use ca_replay::signin::{EventType, SignIn};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/signins")
}

fn read(path: &Path) -> (Vec<SignIn>, IngestReport) {
    let (mut signins, report) = read_signins(&[path.to_path_buf()], IngestOptions::default())
        .unwrap_or_else(|e| panic!("{} does not load: {e}", path.display()));
    signins.sort_by(|a, b| a.id.cmp(&b.id));
    (signins, report)
}

fn read_err(path: &Path) -> IngestError {
    match read_signins(&[path.to_path_buf()], IngestOptions::default()) {
        Ok((s, r)) => panic!(
            "{} loaded {} sign-ins, {} skipped; expected an error",
            path.display(),
            s.len(),
            r.skipped.len()
        ),
        Err(e) => e,
    }
}

/// A fresh folder for one test's files, removed when the test ends.
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(test: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("ca-replay-ingest-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    Scratch(dir)
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write temp file");
    p
}

fn graph_signins() -> Vec<SignIn> {
    let (s, report) = read(&fixtures().join("graph/signins.json"));
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    s
}

/// What a Log Analytics export lacks: `SessionId` and `IsThroughGlobalSecureAccess` are not
/// among the table's columns (entra-semantics.md §6.4), nor `UserType` in the non-interactive one.
fn as_log_analytics(mut s: SignIn) -> SignIn {
    s.session_id.clear();
    s.through_global_secure_access = None;
    if s.event_type == EventType::NonInteractiveUser {
        s.user_type = Default::default();
    }
    s
}

/// What the portal's CSV lacks (`CSV_CANNOT_CARRY`), blanked.
fn as_portal_csv(mut s: SignIn) -> SignIn {
    s.applied_policies.clear();
    s.authentication_methods.clear();
    s.audiences.clear();
    s.auth_context.clear();
    s.device.display_name = Default::default();
    s.sign_in_risk = None;
    s.risk_level_aggregated = None;
    s
}

fn assert_same(format: &str, got: &[SignIn], want: &[SignIn]) {
    assert_eq!(got.len(), want.len(), "{format}: number of sign-ins");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g, w, "{format}: sign-in {}", w.id);
    }
}

#[test]
fn the_reference_fixture_has_every_case() {
    let s = graph_signins();
    assert_eq!(s.len(), 7);
    let has = |what: &str, f: &dyn Fn(&SignIn) -> bool| {
        assert!(s.iter().any(f), "no sign-in with {what}");
    };
    has("a non-interactive sign-in", &|s| {
        s.event_type == EventType::NonInteractiveUser
    });
    has("a guest", &|s| s.user_type == "guest");
    has("a 50126 failure", &|s| {
        s.error_code == 50126 && s.first_factor_failed()
    });
    has("MFA done", &|s| s.mfa_satisfied);
    has("a legacy client", &|s| s.client_app.is_legacy());
    has("a compliant, joined device", &|s| {
        s.device.is_compliant == Some(true) && !s.device.trust_type.is_empty()
    });
    has("a hybrid-joined device", &|s| s.device.is_hybrid_joined());
    has("applied policies", &|s| !s.applied_policies.is_empty());
    has("an IPv6 address", &|s| {
        s.ip_address.is_some_and(|ip| ip.is_ipv6())
    });
    has("audiences, auth contexts and device names", &|s| {
        !s.audiences.is_empty() && !s.auth_context.is_empty() && !s.device.display_name.is_empty()
    });
    has("a sign-in risk", &|s| s.sign_in_risk.is_some());
    has("device code flow", &|s| s.transfer_method.is_some());
}

#[test]
fn log_analytics_json_equals_graph() {
    let want: Vec<SignIn> = graph_signins().into_iter().map(as_log_analytics).collect();
    let (got, report) = read(&fixtures().join("log-analytics"));
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(report.files.len(), 2);
    assert_same("Log Analytics JSON", &got, &want);
}

#[test]
fn log_analytics_csv_equals_graph() {
    let want: Vec<SignIn> = graph_signins().into_iter().map(as_log_analytics).collect();
    let (got, report) = read(&fixtures().join("log-analytics-csv/query_data.csv"));
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_same("Log Analytics CSV", &got, &want);
}

#[test]
fn portal_csv_equals_graph_for_what_it_carries() {
    let want: Vec<SignIn> = graph_signins().into_iter().map(as_portal_csv).collect();
    let (got, report) = read(&fixtures().join("portal"));
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(report.records, 7);
    assert_same("portal CSV", &got, &want);
    // What the CSV lacks is absent, not invented.
    for s in &got {
        assert!(s.applied_policies.is_empty() && s.audiences.is_empty());
        assert!(s.auth_context.is_empty() && s.authentication_methods.is_empty());
        assert!(s.sign_in_risk.is_none() && s.device.display_name.is_empty());
    }
    assert!(CSV_CANNOT_CARRY
        .iter()
        .any(|l| l.contains("appliedConditionalAccessPolicies")));
    // ... and every report says so: one note per missing field, none about the file names.
    assert_eq!(report.notes.len(), CSV_CANNOT_CARRY.len());
    assert!(report
        .notes
        .iter()
        .all(|n| n.starts_with("portal CSV input lacks ")));
}

#[test]
fn log_analytics_query_api_results_equal_graph() {
    // The same rows as `SigninLogs.json`, in the query API's tables/columns/rows shape.
    let rows: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("log-analytics/SigninLogs.json"))
            .expect("fixture"),
    )
    .expect("fixture JSON");
    let names: Vec<String> = rows[0].as_object().expect("row").keys().cloned().collect();
    let table = serde_json::json!({"tables": [{
        "name": "PrimaryResult",
        "columns": names.iter().map(|n| serde_json::json!({"name": n, "type": "string"})).collect::<Vec<_>>(),
        "rows": rows.iter().map(|r| names.iter().map(|n| r[n].clone()).collect::<Vec<_>>()).collect::<Vec<_>>(),
    }]});
    let dir = scratch("query-api");
    let (got, report) = read(&write(&dir, "result.json", table.to_string()));
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    let want: Vec<SignIn> = graph_signins()
        .into_iter()
        .filter(|s| s.is_interactive)
        .map(as_log_analytics)
        .collect();
    assert_same("Log Analytics query API", &got, &want);
}

#[test]
fn every_format_in_one_folder_counts_duplicates_once() {
    let (got, report) = read(&fixtures());
    // Five formats of the same seven sign-ins (the diagnostic-settings one is in formats.rs).
    assert_eq!(got.len(), 7);
    assert_eq!(report.records, 35);
    assert_eq!(report.duplicates, 28);
    assert!(report.skipped.is_empty());
}

// ---- bad inputs -------------------------------------------------------------------------

const PORTAL_HEADER: &str =
    "Date (UTC),Request ID,User ID,Status,Sign-in error code,Failure reason,User agent\n";

fn one_diagnostic(report: &IngestReport) -> &Diagnostic {
    assert_eq!(report.skipped.len(), 1, "{:?}", report.skipped);
    &report.skipped[0]
}

#[test]
fn csv_with_embedded_newline_and_quotes_reads_fine() {
    let dir = scratch("embedded");
    let text = format!(
        "{PORTAL_HEADER}2026-11-16T08:00:00,r1,u1,Failure,50126,\"Line one\nsaid \"\"no\"\", twice\",ua\n\
         2026-11-16T08:00:01,r2,u1,Success,0,,ua\n\
         2026-11-16T08:00:02,r3,u1,Failure,x50,,ua\n"
    );
    let file = write(&dir, "InteractiveSignIns_a.csv", text);
    let (got, report) = read(&file);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].failure_reason, "Line one\nsaid \"no\", twice");
    // The bad row after the two-line one still names its own line.
    let d = one_diagnostic(&report);
    assert_eq!(
        (
            d.file.as_path(),
            d.record,
            d.line,
            d.field.as_str(),
            d.value.as_str()
        ),
        (file.as_path(), 3, Some(5), "Sign-in error code", "\"x50\"")
    );
}

#[test]
fn truncated_csv_counts_the_cut_row() {
    let dir = scratch("truncated");
    let full = std::fs::read_to_string(
        fixtures().join("portal/InteractiveSignIns_2026-11-16_2026-11-17.csv"),
    )
    .expect("fixture");
    let cut = full.rfind("Microsoft Graph").expect("last row's resource");
    let file = write(&dir, "InteractiveSignIns_cut.csv", &full[..cut]);
    let (got, report) = read(&file);
    assert_eq!((got.len(), report.records), (4, 5));
    let d = one_diagnostic(&report);
    assert_eq!(
        (d.file.as_path(), d.record, d.line, d.field.as_str()),
        (file.as_path(), 5, Some(6), "(row)")
    );
    assert_eq!(
        d.why,
        "the header has 57 columns; hint: the row or the file may be truncated"
    );
}

#[test]
fn wrong_type_is_a_counted_diagnostic_with_line_and_field() {
    let dir = scratch("wrongtype");
    let text = "TimeGenerated [UTC],Id,UserId,UserPrincipalName,ResultType\n\
                \"11/16/2026, 8:01:12.000 AM\",a,u1,u1@x,0\n\
                \"11/16/2026, 8:01:13.000 AM\",b,u1,u1@x,abc\n";
    let file = write(&dir, "query_data.csv", text);
    let (got, report) = read(&file);
    assert_eq!(got.len(), 1);
    let d = one_diagnostic(&report);
    assert_eq!(
        (
            d.file.as_path(),
            d.record,
            d.line,
            d.field.as_str(),
            d.value.as_str()
        ),
        (file.as_path(), 2, Some(3), "ResultType", "\"abc\"")
    );
    assert!(d.why.contains("integer"), "{d}");
    assert!(
        d.to_string()
            .contains("record 2 (line 3): `ResultType` = \"abc\""),
        "{d}"
    );
    // --strict: the same diagnostic stops the run.
    match read_signins(
        std::slice::from_ref(&file),
        IngestOptions {
            strict: true,
            ..IngestOptions::default()
        },
    ) {
        Err(IngestError::Strict(s)) => assert_eq!(s.as_ref(), d),
        other => panic!("expected a strict error, got {other:?}"),
    }
    // The same in NDJSON rows: the record is the line.
    let ndjson = "{\"TimeGenerated\":\"2026-11-16T08:01:12Z\",\"Id\":\"a\",\"UserId\":\"u\",\"Type\":\"SigninLogs\",\"ResultType\":\"0\"}\n\n\
                  {\"TimeGenerated\":\"2026-11-16T08:01:13Z\",\"Id\":\"b\",\"UserId\":\"u\",\"Type\":\"SigninLogs\",\"ResultType\":\"abc\"}\n";
    let file = write(&dir, "rows.ndjson", ndjson);
    let (_, report) = read(&file);
    let d = one_diagnostic(&report);
    assert_eq!(
        (d.record, d.line, d.field.as_str()),
        (3, Some(3), "ResultType")
    );
}

#[test]
fn empty_files_are_counted_not_fatal() {
    let dir = scratch("empty");
    for name in ["InteractiveSignIns_empty.csv", "signins.json"] {
        let file = write(&dir, name, "");
        let (got, report) = read(&file);
        assert!(got.is_empty());
        assert_eq!(report.records, 1);
        let d = one_diagnostic(&report);
        assert_eq!(
            (d.file.as_path(), d.record, d.field.as_str()),
            (file.as_path(), 0, "(file)")
        );
        assert!(d.why.contains("empty"), "{d}");
    }
    // A header without rows is a valid, empty export.
    let file = write(&dir, "InteractiveSignIns_none.csv", PORTAL_HEADER);
    let (got, report) = read(&file);
    assert!(got.is_empty() && report.skipped.is_empty() && report.records == 0);
}

#[test]
fn utf16le_and_utf8_bom_csvs_read_like_plain_utf8() {
    let dir = scratch("encodings");
    let src = fixtures().join("portal/NonInteractiveSignIns_2026-11-16_2026-11-17.csv");
    let text = std::fs::read_to_string(&src).expect("fixture");
    assert!(!text.starts_with('\u{feff}'));
    let (want, _) = read(&src);
    assert_eq!(want.len(), 2);

    let mut utf16 = vec![0xff, 0xfe];
    utf16.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    let (got, report) = read(&write(&dir, "NonInteractiveSignIns_utf16.csv", utf16));
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(got, want);

    let mut bom = b"\xef\xbb\xbf".to_vec();
    bom.extend(text.as_bytes());
    let (got, _) = read(&write(&dir, "NonInteractiveSignIns_bom.csv", bom));
    assert_eq!(got, want);

    // The interactive fixture is written as the portal writes it: UTF-8 with BOM, CRLF.
    let raw = std::fs::read(fixtures().join("portal/InteractiveSignIns_2026-11-16_2026-11-17.csv"))
        .expect("fixture");
    assert!(raw.starts_with(b"\xef\xbb\xbf") && raw.windows(2).any(|w| w == b"\r\n"));
}

#[test]
fn gzip_and_any_extension_are_told_by_content() {
    let dir = scratch("content");
    let text = std::fs::read(fixtures().join("log-analytics-csv/query_data.csv")).expect("fixture");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&text).expect("gzip");
    let file = write(&dir, "export.csv.gz", gz.finish().expect("gzip"));
    assert_eq!(read(&file).0.len(), 7);
    // A CSV under a .json name, named on the command line, is still a CSV.
    let file = write(&dir, "export.json", &text);
    assert_eq!(read(&file).0.len(), 7);
}

#[test]
fn files_that_are_not_sign_in_exports() {
    let dir = scratch("foreign");
    let csv = write(&dir, "users.csv", "id,displayName,mail\n1,Ann,ann@x\n");
    let e = read_err(&csv);
    assert!(matches!(&e, IngestError::NotSignIns { path, .. } if *path == csv));
    assert!(e.to_string().contains("`id`, `displayName`, `mail`"), "{e}");
    let json = write(
        &dir,
        "groups.json",
        "[{\"displayName\": \"g\", \"members\": []}]",
    );
    let e = read_err(&json);
    assert!(e.to_string().contains("displayName, members"), "{e}");
    // Another Log Analytics table (AuditLogs) is not taken for sign-ins.
    let audit = write(
        &dir,
        "audit.csv",
        "TimeGenerated [UTC],OperationName,Category,Result\n\"11/16/2026, 8:01:12.000 AM\",Add user,UserManagement,success\n",
    );
    assert!(matches!(read_err(&audit), IngestError::NotSignIns { .. }));
    let audit = write(
        &dir,
        "audit.json",
        "[{\"TimeGenerated\": \"2026-11-16T08:01:12Z\", \"Category\": \"UserManagement\", \"Id\": \"x\"}]",
    );
    assert!(matches!(read_err(&audit), IngestError::NotSignIns { .. }));
    // Text under a .json name that is neither JSON nor a sign-in CSV: the JSON error.
    let e = read_err(&write(&dir, "notes.json", "hello\nworld\n"));
    assert!(e.to_string().contains("is not JSON"), "{e}");

    // Under a folder, obviously foreign files are passed over; a .csv that is not an export stops.
    let folder = scratch("foreign-folder");
    write(&folder, "README.md", "# exports\n");
    write(&folder, "notes.txt", "nothing here\n");
    std::fs::copy(
        fixtures().join("portal/NonInteractiveSignIns_2026-11-16_2026-11-17.csv"),
        folder.join("NonInteractiveSignIns_x.csv"),
    )
    .expect("copy fixture");
    // The portal's authentication-details file beside its sign-ins: passed over, with a note.
    write(
        &folder,
        "NonInteractiveSignIns_AuthDetails_x.csv",
        "Request ID,Authentication method,Authentication method detail,Succeeded,Result detail\n\
         6e1c2a40-1111-4a5b-9c0d-000000000005,Previously satisfied,,true,MFA requirement satisfied by claim in the token\n",
    );
    let (got, report) = read(&folder);
    assert_eq!((got.len(), report.files.len(), report.records), (2, 2, 2));
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("NonInteractiveSignIns_AuthDetails_x.csv")
                && n.contains("authentication-details")),
        "{:?}",
        report.notes
    );
    write(&folder, "users.csv", "id,displayName\n1,Ann\n");
    assert!(matches!(read_err(&folder), IngestError::NotSignIns { .. }));
}

#[test]
fn a_huge_field_is_read_and_a_huge_bad_value_is_cut_in_the_diagnostic() {
    let dir = scratch("huge");
    let big = "x".repeat(1 << 20);
    let text = format!(
        "{PORTAL_HEADER}2026-11-16T08:00:00,r1,u1,Success,0,,{big}\n\
         2026-11-16T08:00:01,r2,u1,Failure,{big},,ua\n"
    );
    let file = write(&dir, "InteractiveSignIns_big.csv", text);
    let (got, report) = read(&file);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].user_agent.len(), 1 << 20);
    let d = one_diagnostic(&report);
    assert_eq!(
        (d.file.as_path(), d.record, d.line, d.field.as_str()),
        (file.as_path(), 2, Some(3), "Sign-in error code")
    );
    assert_eq!(d.why, "not an integer error code (`0` is success)");
    assert!(
        d.value.chars().count() < 100,
        "value not cut: {} chars",
        d.value.len()
    );
}

#[test]
fn older_portal_header_sets_and_service_principal_files() {
    let dir = scratch("older");
    let text = "Date (UTC),Request ID,User ID,Username,Status,Sign-in error code,Location,Risk level (aggregate),Risk level (sign-in),Conditional access\n\
                2021-03-01T10:00:00,r1,u1,a@x,Success,0,\", , GB\",Medium,Low,Not Applied\n";
    let (got, report) = read(&write(&dir, "SignIns_2021.csv", text));
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    let s = &got[0];
    assert_eq!(s.country, "GB");
    assert_eq!(s.sign_in_risk.map(|r| r.as_str()), Some("low"));
    assert_eq!(s.risk_level_aggregated.map(|r| r.as_str()), Some("medium"));
    // No file name saying otherwise: read as interactive, and the report says so for this file.
    assert!(s.is_interactive);
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("SignIns_2021.csv") && n.contains("read as interactive")),
        "{:?}",
        report.notes
    );

    let sp = "Date (UTC),Request ID,Correlation ID,Service principal ID,Service principal name,Application,Application ID ,Status,Sign-in error code,Conditional Access\n\
              2026-11-16T08:00:00,r1,c1,sp1,deploy-bot,deploy-bot,app1,Success,0,Not Applied\n";
    let (got, report) = read(&write(&dir, "ServicePrincipalSignIns_x.csv", sp));
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(got[0].event_type, EventType::ServicePrincipal);
    assert_eq!(got[0].service_principal_id, "sp1");
}

// ---- the public samples of ../shared/fixtures, read in place ------------------------------

fn shared() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!(
            "notice: {} is absent; the public sign-in sample tests are skipped",
            p.display()
        );
        None
    }
}

#[test]
fn shared_diagnostic_settings_samples_load() {
    let Some(root) = shared() else { return };
    let file = root.join("signins/panther-analysis/azure_signin_rule_test_events.ndjson");
    let (got, report) = read(&file);
    // Panther's test events: 16 lack `properties.id` (rule tests need no id), 8 repeat an id.
    assert_eq!(
        (
            report.records,
            got.len(),
            report.duplicates,
            report.skipped.len()
        ),
        (27, 3, 8, 16)
    );
    for d in &report.skipped {
        assert_eq!((d.field.as_str(), d.line), ("id", Some(d.record)), "{d}");
        assert_eq!(d.why, "missing: every sign-in needs an id");
    }
    let file = root
        .join("signins/datadog-integrations-core/azure.activedirectory_tests.signin-sample.json");
    let (got, report) = read(&file);
    assert_eq!((got.len(), report.skipped.len()), (1, 0));
    assert_eq!(got[0].applied_policies[0].conditions_satisfied, Some(3));
    // The index beside Panther's events is provenance, not sign-ins: named as such.
    let e = read_err(&root.join("signins/panther-analysis"));
    assert!(
        matches!(&e, IngestError::NotSignIns { path, .. } if path.ends_with("azure_signin_rule_test_events.index.json")),
        "{e}"
    );
}

#[test]
fn shared_entra_docs_samples_load_or_fail_clearly() {
    let Some(root) = shared() else { return };
    let docs = root.join("entra-docs");
    let (got, report) = read(&docs.join("entra-signin-log-schema-sample.repaired.json"));
    assert_eq!((got.len(), report.skipped.len()), (1, 0));
    // The published sample is malformed: the error says where.
    let e = read_err(&docs.join("entra-signin-log-schema-sample.json"));
    assert!(matches!(e, IngestError::Source(_)), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("is not JSON") && text.contains("line 22 column 30"),
        "{text}"
    );
    assert!(text.contains("\"autonomousSystemNumber\": 000"), "{text}");
    // The Azure Monitor record has placeholders for values: counted, with the field.
    let (got, report) = read(&docs.join("entra-azure-monitor-signinlogs-record.json"));
    assert!(got.is_empty());
    let d = one_diagnostic(&report);
    assert_eq!(
        (d.field.as_str(), d.value.as_str(), d.why.as_str()),
        ("ipAddress", "\"<IP ADDRESS>\"", "not an IP address")
    );
    assert_eq!((d.record, d.line), (1, Some(1)));
}
