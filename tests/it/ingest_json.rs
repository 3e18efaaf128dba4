//! The JSON sign-in reader on bad and odd input: every unreadable record is a counted
//! diagnostic with its file, position, field and reason; nothing panics; nothing is dropped
//! without a count.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use ca_replay::ingest::{read_signins, IngestError, IngestOptions, IngestReport};
use ca_replay::signin::SignIn;
use serde_json::{json, Value};

fn scratch() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ca-replay-ingest-json-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn signin(i: usize) -> Value {
    json!({"id": format!("s{i}"), "createdDateTime": "2026-10-01T10:00:00Z", "userId": format!("u{i}"),
           "userPrincipalName": format!("user{i}@contoso.com"), "clientAppUsed": "Browser",
           "isInteractive": true, "status": {"errorCode": 0},
           "appliedConditionalAccessPolicies": [{"id": "P1", "displayName": "CA001", "result": "success",
               "enforcedGrantControls": ["Mfa"]}]})
}

fn read(dir: &Path, options: IngestOptions) -> Result<(Vec<SignIn>, IngestReport), IngestError> {
    read_signins(&[dir.to_path_buf()], options)
}

fn ndjson(range: std::ops::Range<usize>) -> String {
    range.map(|i| format!("{}\n", signin(i))).collect()
}

#[test]
fn a_bad_ndjson_line_is_counted_with_its_line_and_the_rest_is_read() {
    let dir = scratch();
    let mut text = ndjson(0..3);
    text.push_str("{\"id\": \"s3\", \"createdDateTime\": \n");
    text.push_str(&ndjson(4..6));
    std::fs::write(dir.join("day.ndjson"), text).unwrap();
    let (signins, report) = read(&dir, IngestOptions::default()).unwrap();
    assert_eq!(signins.len(), 5);
    assert_eq!(report.records, 6);
    assert_eq!(report.skipped.len(), 1);
    let d = &report.skipped[0];
    assert_eq!((d.record, d.field.as_str()), (4, "(record)"));
    assert!(d.why.contains("not valid JSON"), "{}", d.why);
    assert!(d.file.ends_with("day.ndjson"));
}

#[test]
fn a_truncated_array_keeps_the_complete_records_and_counts_the_cut_one() {
    let dir = scratch();
    let all = serde_json::to_string_pretty(&Value::Array((0..4).map(signin).collect())).unwrap();
    let cut = &all[..all.len() * 7 / 8];
    std::fs::write(dir.join("export.json"), cut).unwrap();
    let (signins, report) = read(&dir, IngestOptions::default()).unwrap();
    assert_eq!(signins.len(), 3);
    assert_eq!(report.records, 4);
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].record, 4);
    assert!(
        report.skipped[0].why.contains("truncated"),
        "{}",
        report.skipped[0].why
    );
}

#[test]
fn wrong_types_name_the_field_path_and_value() {
    let dir = scratch();
    let mut bad = signin(1);
    bad["status"]["errorCode"] = json!("abc");
    let mut bad2 = signin(2);
    bad2["appliedConditionalAccessPolicies"][0]["conditionsSatisfied"] = json!("nonsense");
    let mut bad3 = signin(3);
    bad3["deviceDetail"] = json!([1, 2]);
    let page = json!({"@odata.context": "x", "value": [signin(0), bad, bad2, bad3]});
    std::fs::write(dir.join("page.json"), page.to_string()).unwrap();
    let (signins, report) = read(&dir, IngestOptions::default()).unwrap();
    assert_eq!(signins.len(), 1);
    let got: Vec<(usize, &str, &str)> = report
        .skipped
        .iter()
        .map(|d| (d.record, d.field.as_str(), d.value.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (2, "status.errorCode", "\"abc\""),
            (
                3,
                "appliedConditionalAccessPolicies[0].conditionsSatisfied",
                "\"nonsense\""
            ),
            (4, "deviceDetail", "[1,2]"),
        ]
    );
}

#[test]
fn strict_stops_at_the_first_and_max_bad_rows_past_the_limit() {
    let dir = scratch();
    let mut text = ndjson(0..2);
    text.push_str("garbage\n{\"id\": 1}\n");
    std::fs::write(dir.join("a.ndjson"), text).unwrap();
    let strict = IngestOptions {
        strict: true,
        ..IngestOptions::default()
    };
    match read(&dir, strict) {
        Err(IngestError::Strict(d)) => assert_eq!(d.record, 3),
        other => panic!("{other:?}"),
    }
    let limit = |n| IngestOptions {
        max_bad_rows: Some(n),
        ..IngestOptions::default()
    };
    assert!(matches!(
        read(&dir, limit(1)),
        Err(IngestError::TooManyBad {
            limit: 1,
            count: 2,
            ..
        })
    ));
    assert_eq!(read(&dir, limit(2)).unwrap().1.skipped.len(), 2);
}

#[test]
fn empty_files_are_counted_and_foreign_json_is_named() {
    let dir = scratch();
    std::fs::write(dir.join("empty.json"), "\u{feff}\n").unwrap();
    std::fs::write(dir.join("day.ndjson"), ndjson(0..2)).unwrap();
    let (signins, report) = read(&dir, IngestOptions::default()).unwrap();
    assert_eq!(signins.len(), 2);
    assert_eq!(report.skipped.len(), 1);
    assert!(report.skipped[0].why.contains("empty"));

    let other = scratch();
    std::fs::write(
        other.join("users.json"),
        json!({"value": [{"id": "u1", "displayName": "A", "userType": "Member"}]}).to_string(),
    )
    .unwrap();
    match read(&other, IngestOptions::default()) {
        Err(e @ IngestError::NotSignIns { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("users.json") && text.contains("displayName"),
                "{text}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn utf16_pascal_case_huge_fields_and_duplicates() {
    let dir = scratch();
    // Windows PowerShell 5's Out-File: UTF-16LE with a BOM, PascalCase keys from the SDK.
    let pascal = json!([{"Id": "s0", "CreatedDateTime": "2026-10-01T10:00:00Z", "UserId": "u0",
        "UserPrincipalName": "user0@contoso.com", "ClientAppUsed": "Browser", "IsInteractive": true,
        "Status": {"ErrorCode": 0, "AdditionalProperties": {}},
        "AppliedConditionalAccessPolicies": [{"Id": "P1", "DisplayName": "CA001", "Result": "success",
            "EnforcedGrantControls": ["Mfa"]}]}]);
    let mut bytes = vec![0xff, 0xfe];
    for unit in pascal.to_string().encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    std::fs::write(dir.join("a-powershell.json"), bytes).unwrap();
    // The same sign-in again from the REST API (a duplicate), and one with a 1 MB user agent.
    let mut big = signin(7);
    big["userAgent"] = json!("x".repeat(1 << 20));
    std::fs::write(
        dir.join("b-rest.ndjson"),
        format!("{}\n{}\n", signin(0), big),
    )
    .unwrap();
    let (signins, report) = read(&dir, IngestOptions::default()).unwrap();
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(signins.len(), 2);
    assert_eq!(report.duplicates, 1);
    let rest: Vec<SignIn> = ca_replay::ingest::graph::parse_signin(&signin(0), None)
        .into_iter()
        .collect();
    assert_eq!(
        signins[0], rest[0],
        "PascalCase UTF-16 reads as the REST shape"
    );
    assert_eq!(signins[1].user_agent.len(), 1 << 20);
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn corpus() -> String {
        let mut text = String::new();
        for i in 0..4 {
            let mut s = signin(i);
            s["deviceDetail"] = json!({"operatingSystem": "Windows10", "isCompliant": i % 2 == 0});
            s["authenticationDetails"] =
                json!([{"authenticationMethod": "Password", "succeeded": true}]);
            text.push_str(&s.to_string());
            text.push('\n');
        }
        text
    }

    #[derive(Debug, Clone)]
    enum Edit {
        Truncate(usize),
        Insert(usize, char),
        Replace(usize, char),
        Delete(usize, usize),
        AsArray,
    }

    fn edit() -> impl Strategy<Value = Edit> {
        let ch = prop_oneof![
            Just('"'),
            Just('{'),
            Just('}'),
            Just('['),
            Just(']'),
            Just(','),
            Just(':'),
            Just('\n'),
            Just('\\'),
            Just('\u{feff}'),
            Just('é'),
            any::<char>()
        ];
        prop_oneof![
            any::<usize>().prop_map(Edit::Truncate),
            (any::<usize>(), ch.clone()).prop_map(|(i, c)| Edit::Insert(i, c)),
            (any::<usize>(), ch).prop_map(|(i, c)| Edit::Replace(i, c)),
            (any::<usize>(), 1usize..40).prop_map(|(i, n)| Edit::Delete(i, n)),
            Just(Edit::AsArray),
        ]
    }

    fn at(text: &str, i: usize) -> usize {
        let mut i = i % (text.len() + 1);
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    }

    fn apply(mut text: String, e: &Edit) -> String {
        match *e {
            Edit::Truncate(i) => text.truncate(at(&text, i)),
            Edit::Insert(i, c) => text.insert(at(&text, i), c),
            Edit::Replace(i, c) => {
                let i = at(&text, i);
                if let Some(old) = text[i..].chars().next() {
                    text.replace_range(i..i + old.len_utf8(), &c.to_string());
                }
            }
            Edit::Delete(i, n) => {
                let a = at(&text, i);
                let b = at(&text, a.saturating_add(n).min(text.len()));
                if b > a {
                    text.replace_range(a..b, "");
                }
            }
            Edit::AsArray => {
                let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
                text = format!("[\n{}\n]", lines.join(",\n"));
            }
        }
        text
    }

    proptest! {
        /// Damaged JSON never panics the reader, and every record is either read or counted.
        #[test]
        fn damaged_json_is_read_or_counted(edits in proptest::collection::vec(edit(), 1..6)) {
            let text = edits.iter().fold(corpus(), apply);
            if let Ok(r) = ca_replay::ingest::read_json_text(Path::new("fuzz.json"), &text) {
                prop_assert_eq!(r.records, r.signins.len() + r.skipped.len());
                prop_assert!(r.signins.len() <= 5);
            }
        }
    }
}

mod fuzz_csv {
    use super::*;
    use proptest::prelude::*;

    fn fixture(name: &str) -> String {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/signins")
            .join(name);
        std::fs::read_to_string(p).unwrap()
    }

    #[derive(Debug, Clone)]
    enum Edit {
        Truncate(usize),
        Insert(usize, char),
        Delete(usize, usize),
        Duplicate(usize, usize),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        let ch = prop_oneof![
            Just('"'),
            Just(','),
            Just(';'),
            Just('\n'),
            Just('\r'),
            Just('{'),
            Just('\u{feff}'),
            any::<char>()
        ];
        prop_oneof![
            any::<usize>().prop_map(Edit::Truncate),
            (any::<usize>(), ch).prop_map(|(i, c)| Edit::Insert(i, c)),
            (any::<usize>(), 1usize..60).prop_map(|(i, n)| Edit::Delete(i, n)),
            (any::<usize>(), 1usize..200).prop_map(|(i, n)| Edit::Duplicate(i, n)),
        ]
    }

    fn at(text: &str, i: usize) -> usize {
        let mut i = i % (text.len() + 1);
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    }

    fn apply(mut text: String, e: &Edit) -> String {
        match *e {
            Edit::Truncate(i) => text.truncate(at(&text, i)),
            Edit::Insert(i, c) => text.insert(at(&text, i), c),
            Edit::Delete(i, n) | Edit::Duplicate(i, n) => {
                let a = at(&text, i);
                let b = at(&text, a.saturating_add(n).min(text.len()));
                if matches!(e, Edit::Delete(..)) {
                    text.replace_range(a..b, "");
                } else {
                    let copy = text[a..b].to_owned();
                    text.insert_str(b, &copy);
                }
            }
        }
        text
    }

    proptest! {
        /// Damaged portal and Log Analytics CSVs never panic the readers; every row is read or
        /// counted, and a file that is no longer recognisable is an error, not a silent nothing.
        #[test]
        fn damaged_csv_is_read_or_counted(
            which in 0usize..3,
            edits in proptest::collection::vec(edit(), 1..5),
        ) {
            let (name, base) = [
                ("InteractiveSignIns_fuzz.csv", "portal/InteractiveSignIns_2026-11-16_2026-11-17.csv"),
                ("NonInteractiveSignIns_fuzz.csv", "portal/NonInteractiveSignIns_2026-11-16_2026-11-17.csv"),
                ("query_data.csv", "log-analytics-csv/query_data.csv"),
            ][which];
            let text = edits.iter().fold(fixture(base), apply);
            if let Ok(r) = ca_replay::ingest::read_text(Path::new(name), &text) {
                prop_assert_eq!(r.records, r.signins.len() + r.skipped.len());
            }
        }
    }
}
