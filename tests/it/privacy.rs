//! `run --pseudonymize` end to end, through the binary (the key is an environment variable, so
//! each run gets its own process): the sample tenant and a small hostile tenant (apostrophes,
//! `&`, `<`, unicode, an IP that is a prefix of another, UPN case differences, an unreadable
//! record and a warning that quote personal values) are replayed, and every output file,
//! decoded the way a reader sees it (Parquet read back), is scanned for every UPN, user id,
//! display name, IP and device of the input: none may be there. Also: same key, same bytes;
//! another key, other pseudonyms; no key, exit 2; the mapping file leads back to the originals.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use ca_replay::generate::{self, Options};
use ca_replay::privacy::{self, Field, Key, Pseudonymizer, KEY_VAR};
use serde_json::{json, Value};

const KEY: &str = "test-key-0123456789abcdef0123456789abcdef";
const OTHER_KEY: &str = "another-key-fedcba9876543210fedcba9876543210";

const REPORTS: [&str; 6] = [
    "details.csv",
    "details.parquet",
    "report.html",
    "report.md",
    "summary.json",
    "users.csv",
];

/// A fresh folder `<unique>/run` (its parent holds no other run, so no trend).
fn scratch() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let base = std::env::temp_dir().join(format!(
        "ca-replay-privacy-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&base);
    base.join("run")
}

fn cleanup(dir: &Path) {
    if let Some(base) = dir.parent() {
        let _ = std::fs::remove_dir_all(base);
    }
}

/// `ca-replay run --tenant <tenant> --out <out> <extra…>` with the key variable as given.
fn run(tenant: &Path, out: &Path, key: Option<&str>, extra: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ca-replay"));
    c.arg("run")
        .arg("--tenant")
        .arg(tenant)
        .arg("--out")
        .arg(out)
        .args(extra)
        .stdin(std::process::Stdio::null());
    match key {
        Some(k) => c.env(KEY_VAR, k),
        None => c.env_remove(KEY_VAR),
    };
    c.output().unwrap()
}

fn ok(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "exit {:?}: {err}", o.status.code());
    err
}

/// Every value of the input a report must not show: (what, value).
fn input_values(tenant: &Path) -> BTreeSet<(&'static str, String)> {
    let mut out = BTreeSet::new();
    let mut add = |what: &'static str, v: Option<&str>| {
        if let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) {
            out.insert((what, v.to_owned()));
        }
    };
    let doc = |name: &str| -> Vec<Value> {
        let text = std::fs::read_to_string(tenant.join(name)).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        v["value"].as_array().cloned().unwrap_or_default()
    };
    for u in doc("users.json") {
        add("user id", u["id"].as_str());
        add("upn", u["userPrincipalName"].as_str());
        add("name", u["displayName"].as_str());
    }
    for r in doc("userRegistrationDetails.json") {
        add("upn", r["userPrincipalName"].as_str());
        add("name", r["userDisplayName"].as_str());
    }
    for entry in std::fs::read_dir(tenant.join("signins")).unwrap() {
        let p = entry.unwrap().path();
        let bytes = std::fs::read(&p).unwrap();
        let text = if p.extension().is_some_and(|e| e == "gz") {
            let mut s = String::new();
            std::io::Read::read_to_string(
                &mut flate2::read::MultiGzDecoder::new(bytes.as_slice()),
                &mut s,
            )
            .unwrap();
            s
        } else {
            String::from_utf8(bytes).unwrap()
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let s: Value = serde_json::from_str(line).unwrap();
            add("user id", s["userId"].as_str());
            add("upn", s["userPrincipalName"].as_str());
            add("name", s["userDisplayName"].as_str());
            add("ip", s["ipAddress"].as_str());
            add("device id", s["deviceDetail"]["deviceId"].as_str());
            add("device name", s["deviceDetail"]["displayName"].as_str());
        }
    }
    // Unregistered devices log the zero GUID; it is nobody's.
    out.remove(&("device id", "00000000-0000-0000-0000-000000000000".into()));
    out
}

/// Distinct cells, one per line (a value never spans two cells).
fn lines(cells: BTreeSet<String>) -> String {
    cells.into_iter().map(|c| c + "\n").collect()
}

/// Each report file of `run` as a reader sees it (see [`decoded_files`]).
fn decoded(out: &Path) -> BTreeMap<&'static str, String> {
    decoded_files(out, &REPORTS)
}

/// Files of `dir` as a reader sees them: JSON strings, CSV cells, Markdown, HTML and XML with
/// their escapes undone, Parquet's text cells.
fn decoded_files(dir: &Path, names: &[&'static str]) -> BTreeMap<&'static str, String> {
    let mut files = BTreeMap::new();
    let char_ref = regex::Regex::new(r"&#(?:[xX]([0-9a-fA-F]+)|([0-9]+));").unwrap();
    for &name in names {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let text = match name.rsplit_once('.').unwrap().1 {
            "json" => {
                fn walk(v: &Value, all: &mut String) {
                    match v {
                        Value::String(s) => all.push_str(&format!("{s}\n")),
                        Value::Array(a) => a.iter().for_each(|x| walk(x, all)),
                        Value::Object(o) => o.iter().for_each(|(k, x)| {
                            all.push_str(&format!("{k}\n"));
                            walk(x, all)
                        }),
                        _ => {}
                    }
                }
                let mut all = String::new();
                walk(&serde_json::from_slice(&bytes).unwrap(), &mut all);
                all
            }
            "csv" => {
                let mut r = csv::ReaderBuilder::new()
                    .has_headers(false)
                    .from_reader(bytes.as_slice());
                let mut cells = BTreeSet::new();
                for rec in r.records() {
                    for cell in rec.unwrap().iter() {
                        cells.insert(cell.to_owned());
                    }
                }
                lines(cells)
            }
            "md" => {
                let t = String::from_utf8(bytes).unwrap();
                let mut all = String::new();
                let mut chars = t.chars().peekable();
                while let Some(c) = chars.next() {
                    if c == '\\' && chars.peek().is_some_and(|n| "\\`*_[]|#~!".contains(*n)) {
                        continue;
                    }
                    all.push(c);
                }
                all.replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&amp;", "&")
            }
            "html" | "xml" => {
                // Numeric character references (`&#x27;`, `&#39;`), then the named ones.
                let t = String::from_utf8(bytes).unwrap();
                let t = char_ref.replace_all(&t, |c: &regex::Captures| {
                    let n = match (c.get(1), c.get(2)) {
                        (Some(h), _) => u32::from_str_radix(h.as_str(), 16).unwrap(),
                        (_, Some(d)) => d.as_str().parse().unwrap(),
                        _ => unreachable!(),
                    };
                    char::from_u32(n).unwrap().to_string()
                });
                t.replace("&quot;", "\"")
                    .replace("&apos;", "'")
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&amp;", "&")
            }
            "parquet" => {
                use arrow_array::cast::AsArray;
                let reader =
                    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                        bytes::Bytes::from(bytes),
                    )
                    .unwrap()
                    .build()
                    .unwrap();
                let mut cells = BTreeSet::new();
                for batch in reader {
                    for col in batch.unwrap().columns() {
                        if col.data_type() == &arrow_schema::DataType::Utf8 {
                            for s in col.as_string::<i32>().iter().flatten() {
                                cells.insert(s.to_owned());
                            }
                        } else {
                            // Every column of details.parquet that can hold text is Utf8.
                            assert!(
                                !matches!(
                                    col.data_type(),
                                    arrow_schema::DataType::LargeUtf8
                                        | arrow_schema::DataType::Utf8View
                                        | arrow_schema::DataType::Dictionary(..)
                                ),
                                "details.parquet: a text column of type {} is not scanned",
                                col.data_type()
                            );
                        }
                    }
                }
                assert!(!cells.is_empty(), "details.parquet has no text");
                lines(cells)
            }
            _ => unreachable!(),
        };
        files.insert(name, text);
    }
    files
}

/// The input values found in the reports: (file, what, value), ignoring case (Unicode
/// lower-casing of both sides). An IP counts only where no digit (or `.digit`, or for IPv6 a
/// hex digit or `:`) touches it: `10.1.2.3` is not in `10.1.2.34`. Every other value counts
/// anywhere, even inside a longer word.
fn leaks(tenant: &Path, out: &Path) -> Vec<(String, &'static str, String)> {
    leaks_in(tenant, decoded(out))
}

/// [`leaks`] in decoded files.
fn leaks_in(
    tenant: &Path,
    files: BTreeMap<&'static str, String>,
) -> Vec<(String, &'static str, String)> {
    let values: Vec<(&'static str, String)> = input_values(tenant).into_iter().collect();
    let needles: Vec<String> = values.iter().map(|(_, v)| v.to_lowercase()).collect();
    let ac = aho_corasick::AhoCorasick::new(&needles).unwrap();
    let mut found = BTreeSet::new();
    for (name, text) in files {
        let hay = text.to_lowercase();
        for m in ac.find_overlapping_iter(&hay) {
            let (what, v) = &values[m.pattern().as_usize()];
            if *what == "ip" {
                let v6 = v.contains(':');
                let touches = |c: Option<char>| {
                    c.is_some_and(|c| {
                        c.is_ascii_digit() || v6 && (c.is_ascii_hexdigit() || c == ':')
                    })
                };
                let before = hay[..m.start()].chars().next_back();
                let mut after = hay[m.end()..].chars();
                let (a1, a2) = (after.next(), after.next());
                if touches(before) || touches(a1) || a1 == Some('.') && touches(a2) {
                    continue;
                }
            }
            found.insert((name.to_string(), *what, v.clone()));
        }
    }
    found.into_iter().collect()
}

/// A small generated tenant made hostile: users with apostrophes, `&`, `<`, unicode and a
/// formula prefix in their names, UPN case differences between the directory and the logs,
/// IPs that are prefixes of others (v4 and v6), devices with names, a guest UPN full of
/// Markdown characters, a break-glass entry in capitals and one that exists nowhere, a
/// registration record for an unknown UPN (a warning quotes it) and an unreadable sign-in
/// whose error quotes a UPN.
fn hostile_tenant() -> PathBuf {
    let root = scratch();
    generate::generate(
        &root,
        &Options {
            users: 40,
            days: 1,
            seed: 7,
            signins: Some(300),
            start: chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 11, 2, 0, 0, 0).unwrap(),
            gzip: false,
            format: generate::Format::Graph,
        },
    )
    .unwrap();
    let users_path = root.join("users.json");
    let mut users: Value =
        serde_json::from_str(&std::fs::read_to_string(&users_path).unwrap()).unwrap();
    let hostile = [
        (
            "Seán O'Brien & Sons <x>",
            "Sean.O'Brien@Contoso.com",
            "sean.o'brien@contoso.com",
        ),
        (
            "Zoë Ørsted",
            "ZOE.ORSTED@contoso.com",
            "zoe.orsted@CONTOSO.COM",
        ),
        (
            "Ann-Marie D'Arcy",
            "ann-marie.darcy@contoso.com",
            "Ann-Marie.DArcy@contoso.com",
        ),
        (
            "李 小龙",
            "li.xiaolong@contoso.com",
            "li.xiaolong@contoso.com",
        ),
        (
            "Ana_Wilber *guest* [x]",
            "ana_wilber_woodgrove.net#EXT#@contoso.onmicrosoft.com",
            "ana_wilber_woodgrove.net#EXT#@contoso.onmicrosoft.com",
        ),
        (
            "=1+1 Formula Name",
            "formula.name@contoso.com",
            "formula.name@contoso.com",
        ),
    ];
    let members: Vec<usize> = users["value"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .filter(|(_, u)| {
            u["userType"] == "Member" && !u["userPrincipalName"].as_str().unwrap().starts_with("bg")
        })
        .map(|(i, _)| i)
        .take(hostile.len())
        .collect();
    assert_eq!(members.len(), hostile.len());
    // The longer of each pair first: the first users' sign-ins are the likelier samples of
    // report.html, and a shown `10.1.2.34` must not be taken for `10.1.2.3`.
    let ips = [
        "10.1.2.34",
        "10.1.2.3",
        "2001:db8::71",
        "2001:db8::7",
        "198.51.100.12",
        "198.51.100.1",
    ];
    let mut lines = String::new();
    for (k, (&i, (name, dir_upn, log_upn))) in members.iter().zip(hostile).enumerate() {
        let u = &mut users["value"][i];
        u["displayName"] = json!(name);
        u["userPrincipalName"] = json!(dir_upn);
        let id = u["id"].clone();
        for (j, client) in ["IMAP4", "Browser"].iter().enumerate() {
            let s = json!({
                "id": format!("hostile-{k}-{j}"),
                "createdDateTime": format!("2026-11-02T00:00:{:02}Z", k * 2 + j),
                "userId": id, "userType": "member",
                "userPrincipalName": log_upn,
                "userDisplayName": name,
                "appId": "00000002-0000-0ff1-ce00-000000000000",
                "appDisplayName": "Office 365 Exchange Online",
                "resourceId": "00000002-0000-0ff1-ce00-000000000000",
                "clientAppUsed": client, "isInteractive": true,
                "ipAddress": ips[k],
                "location": {"countryOrRegion": "NL"},
                "deviceDetail": {
                    "deviceId": format!("d{k}d0000-0000-4000-8000-00000000000{k}"),
                    "displayName": format!("{name}'s PC-{k}"),
                    "operatingSystem": "Windows10", "browser": "Edge 130.0.0.0"
                },
                "status": {"errorCode": 0}
            });
            lines.push_str(&format!("{s}\n"));
        }
    }
    // An unreadable record: its error quotes the value, a UPN.
    lines.push_str(
        &json!({
            "id": "hostile-bad", "createdDateTime": "2026-11-02T00:01:00Z",
            "userId": "0b0b0b0b-0000-4000-8000-000000000bad",
            "userPrincipalName": "unreadable.person@contoso.com",
            "isInteractive": "unreadable.person@contoso.com"
        })
        .to_string(),
    );
    lines.push('\n');
    std::fs::write(root.join("signins/0-hostile.ndjson"), lines).unwrap();
    std::fs::write(&users_path, serde_json::to_string_pretty(&users).unwrap()).unwrap();

    // A registration record no user matches: a warning quotes its UPN.
    let reg_path = root.join("userRegistrationDetails.json");
    let mut reg: Value =
        serde_json::from_str(&std::fs::read_to_string(&reg_path).unwrap()).unwrap();
    reg["value"].as_array_mut().unwrap().push(json!({
        "userPrincipalName": "ghost.user@contoso.com", "isMfaRegistered": true
    }));
    std::fs::write(&reg_path, reg.to_string()).unwrap();

    let config = std::fs::read_to_string(root.join("ca-replay.toml")).unwrap();
    let config = config.replace(
        "users = [",
        "users = [\"SEAN.O'BRIEN@CONTOSO.COM\", \"missing.bg@contoso.com\", ",
    );
    assert!(config.contains("missing.bg@"), "{config}");
    std::fs::write(root.join("ca-replay.toml"), config).unwrap();
    root
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    REPORTS
        .iter()
        .map(|n| (n.to_string(), std::fs::read(dir.join(n)).unwrap()))
        .collect()
}

/// The `user-…`, `ip-…`, `device-…` and `name-…` pseudonyms a text holds.
fn pseudonyms(text: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"\b(?:user|ip|device|name)-[0-9a-f]{16}\b").unwrap();
    re.find_iter(text).map(|m| m.as_str().to_owned()).collect()
}

/// `summary.json` of the sample tenant as tests/it/reports.rs pins it (not pseudonymized).
fn pinned_sample_summary() -> Value {
    let snap = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/snapshots/it__reports__sample_summary_json.snap");
    let text = std::fs::read_to_string(snap).unwrap();
    // An insta snapshot: a `---` header block, then the value.
    let body = text.splitn(3, "---\n").nth(2).unwrap();
    serde_json::from_str(body).unwrap()
}

/// A JSON value with every string (object keys too) blanked: its numbers, flags and shape.
fn shape(v: &Value) -> Value {
    match v {
        Value::String(_) => json!(""),
        Value::Array(a) => Value::Array(a.iter().map(shape).collect()),
        Value::Object(o) => {
            let mut fields: Vec<(String, Value)> =
                o.iter().map(|(k, x)| (k.clone(), shape(x))).collect();
            // Keys that held a personal value are pseudonyms now: blank them, keep the order
            // of the rest (names of fields are kept).
            for (k, _) in &mut fields {
                if k.contains('@') || pseudonyms(k).len() == 1 {
                    k.clear();
                }
            }
            json!(fields)
        }
        other => other.clone(),
    }
}

#[test]
fn the_sample_tenant_pseudonymized_holds_no_input_value() {
    let tenant = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data/contoso");
    let out = scratch();
    let map = out.parent().unwrap().join("map.csv");
    let err = ok(&run(
        &tenant,
        &out,
        Some(KEY),
        &["--pseudonymize", "--pseudonym-map", map.to_str().unwrap()],
    ));
    assert!(!err.contains("warning: the pseudonym mapping"), "{err}");
    let found = leaks(&tenant, &out);
    assert!(
        found.is_empty(),
        "{} leaks, e.g. {:?}",
        found.len(),
        &found[..found.len().min(5)]
    );
    // It says what it is, and has the same numbers as without pseudonymization (the pinned
    // summary of tests/it/reports.rs): every number, flag and list length; keys too, less the
    // two it adds.
    let mut summary: Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["pseudonymized"], true);
    crate::schema::Validator::new().assert_valid("pseudonymized sample", &summary);
    let key_id = summary["pseudonym_key_id"].as_str().unwrap().to_owned();
    assert!(key_id.len() == 8 && !KEY.contains(&key_id), "{key_id}");
    let plain = pinned_sample_summary();
    assert_eq!(plain["inputs"]["signins"], summary["inputs"]["signins"]);
    assert!(plain["difference"]["users_newly_blocked"].as_u64().unwrap() > 0);
    let obj = summary.as_object_mut().unwrap();
    obj.remove("pseudonymized");
    obj.remove("pseudonym_key_id");
    assert_eq!(shape(&summary), shape(&plain));
    assert_eq!(
        summary["break_glass"]["accounts"].as_array().unwrap().len(),
        2
    );
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("Pseudonymized:"), "{md}");
    // Every pseudonym of the reports is in the mapping, whose rows lead back to the input.
    let rows = privacy::read_mapping(&std::fs::read(&map).unwrap()).unwrap();
    let mapped: BTreeSet<&str> = rows.iter().map(|(p, _, _)| p.as_str()).collect();
    for (name, text) in decoded(&out) {
        for p in pseudonyms(&text) {
            assert!(
                mapped.contains(p.as_str()),
                "{name}: {p} not in the mapping"
            );
        }
    }
    let bg1 = rows
        .iter()
        .find(|(_, f, o)| *f == Field::UserPrincipalName && o == "bg1@contoso.com")
        .unwrap();
    assert!(summary["break_glass"]["accounts"]
        .as_array()
        .unwrap()
        .contains(&json!(bg1.0)));
    cleanup(&out);
}

#[test]
fn a_hostile_tenant_pseudonymized_holds_no_input_value() {
    let tenant = hostile_tenant();
    let values = input_values(&tenant);
    for v in [
        "10.1.2.3",
        "10.1.2.34",
        "Seán O'Brien & Sons <x>",
        "zoe.orsted@CONTOSO.COM",
    ] {
        assert!(values.iter().any(|(_, x)| x == v), "{v} not an input value");
    }

    // Without pseudonymization the values are there (the scan can see them: the UPN with an
    // apostrophe is escaped in report.html). Display and device names are not printed by any
    // report today; they are scanned all the same.
    let plain = scratch();
    ok(&run(&tenant, &plain, None, &[]));
    let shown: BTreeSet<String> = leaks(&tenant, &plain)
        .into_iter()
        .map(|(_, _, v)| v)
        .collect();
    for v in [
        "Sean.O'Brien@Contoso.com",
        "zoe.orsted@CONTOSO.COM",
        "10.1.2.34",
        "2001:db8::71",
        "ghost.user@contoso.com",
        "ana_wilber_woodgrove.net#EXT#@contoso.onmicrosoft.com",
    ] {
        assert!(
            shown.contains(v),
            "{v} not shown without --pseudonymize: {shown:?}"
        );
    }
    // The scan itself does not take `10.1.2.34` for `10.1.2.3` (neither prefix is logged by
    // a sign-in the plain reports show).
    for v in ["10.1.2.3", "2001:db8::7"] {
        assert!(!shown.contains(v), "{v} found inside a longer IP");
    }
    let plain_summary = std::fs::read_to_string(plain.join("summary.json")).unwrap();
    assert!(plain_summary.contains("unreadable.person@contoso.com"));
    assert!(!plain_summary.contains("\"pseudonymized\""));
    assert!(!std::fs::read_to_string(plain.join("report.html"))
        .unwrap()
        .contains("Pseudonymized"));

    let out = scratch();
    let map = out.parent().unwrap().join("map.csv");
    let err = ok(&run(
        &tenant,
        &out,
        Some(KEY),
        &["--pseudonymize", "--pseudonym-map", map.to_str().unwrap()],
    ));
    let found = leaks(&tenant, &out);
    assert!(found.is_empty(), "leaks: {found:?}");
    // No value was replaced inside a longer one (`10.1.2.3` in `10.1.2.34` would leave
    // `ip-…4`): no pseudonym touches a letter, digit or `.digit`.
    let glued =
        regex::Regex::new(r"\b(?:user|ip|device|name|value)-[0-9a-f]{16}(?:[\w@]|\.\d)").unwrap();
    for (name, text) in decoded(&out) {
        assert!(
            glued.find(&text).is_none(),
            "{name}: a pseudonym glued to the rest of a value: {:?}",
            glued.find(&text).map(|m| m.as_str())
        );
    }
    // What the run printed (skipped records, warnings) goes to CI logs too.
    let lower = err.to_lowercase();
    for (what, v) in &values {
        assert!(
            !lower.contains(&v.to_lowercase()),
            "stderr shows {what} `{v}`: {err}"
        );
    }
    // The unreadable record is still reported: where, which field, a pseudonym for the value.
    let summary: Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let skipped = &summary["inputs"]["skipped_first"][0];
    assert_eq!(skipped["field"], "isInteractive", "{skipped}");
    assert!(skipped["value"].as_str().unwrap().starts_with("value-"));
    assert!(
        skipped["why"].as_str().unwrap().contains("\"value-"),
        "{skipped}"
    );

    // One person, one pseudonym: the directory's and the log's UPN spellings read the same.
    let rows = privacy::read_mapping(&std::fs::read(&map).unwrap()).unwrap();
    let of = |v: &str| -> BTreeSet<&str> {
        rows.iter()
            .filter(|(_, _, o)| o == v)
            .map(|(p, _, _)| p.as_str())
            .collect()
    };
    assert_eq!(of("ZOE.ORSTED@contoso.com"), of("zoe.orsted@CONTOSO.COM"));
    assert_eq!(of("Zoë Ørsted"), of("ZOE.ORSTED@contoso.com"));
    assert_eq!(of("ZOE.ORSTED@contoso.com").len(), 1);
    // The IP that is a prefix of another has a pseudonym of its own.
    assert_ne!(of("10.1.2.3"), of("10.1.2.34"));
    // The break-glass entry in capitals is that user; the missing one is named by pseudonym.
    let accounts = summary["break_glass"]["accounts"].as_array().unwrap();
    let sean = of("Sean.O'Brien@Contoso.com");
    assert!(accounts.iter().any(|a| sean.contains(a.as_str().unwrap())));
    assert!(summary["break_glass"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| of("missing.bg@contoso.com").contains(f["account"].as_str().unwrap())));

    // The mapping holds every value of the input, and a directory user's UPN (in any case)
    // reads as its id.
    let originals: BTreeSet<String> = rows.iter().map(|(_, _, o)| o.to_lowercase()).collect();
    for (what, v) in &values {
        if v == "0b0b0b0b-0000-4000-8000-000000000bad" {
            continue; // the unreadable record's: never read, so in no report
        }
        assert!(
            originals.contains(&v.to_lowercase()),
            "{what} `{v}` not in the mapping"
        );
    }
    let dir: Value =
        serde_json::from_str(&std::fs::read_to_string(tenant.join("users.json")).unwrap()).unwrap();
    for u in dir["value"].as_array().unwrap() {
        let (id, upn) = (
            u["id"].as_str().unwrap(),
            u["userPrincipalName"].as_str().unwrap(),
        );
        assert_eq!(of(id).len(), 1, "{id}");
        assert_eq!(of(id), of(upn), "{upn}");
    }
    // The key is in no report and was not printed.
    assert!(!err.contains(KEY));
    for (name, bytes) in files(&out) {
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(KEY) && !text.contains(&KEY[..16]),
            "{name} holds the key"
        );
    }

    // The mapping round-trips: the same key gives each original its pseudonym again.
    let mut pz = Pseudonymizer::builder(Key::new(KEY.as_bytes().to_vec()).unwrap())
        .build()
        .unwrap();
    let mut checked = 0;
    for (p, field, original) in &rows {
        let again = match field {
            Field::UserId => pz.user_id(original).unwrap(),
            Field::IpAddress => pz.ip(original.parse().unwrap()).unwrap(),
            Field::DeviceId => pz.device_id(original).unwrap(),
            Field::Value => pz.value(original).unwrap(),
            _ => continue,
        };
        assert_eq!(&again, p, "{field:?} `{original}`");
        checked += 1;
    }
    assert!(checked > 100, "{checked}");

    // A crossed break-glass gate names the first error's account: on stderr, in the JUnit
    // file and in the job summary, by pseudonym only.
    let gated = scratch();
    let junit = gated.parent().unwrap().join("junit.xml");
    let step_summary = gated.parent().unwrap().join("step-summary.md");
    std::fs::create_dir_all(gated.parent().unwrap()).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_ca-replay"))
        .args(["run", "--pseudonymize", "--break-glass-gate", "--tenant"])
        .arg(&tenant)
        .arg("--out")
        .arg(&gated)
        .arg("--junit")
        .arg(&junit)
        .env(KEY_VAR, KEY)
        .env("GITHUB_STEP_SUMMARY", &step_summary)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let gate_err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{gate_err}");
    let line = gate_err
        .lines()
        .find(|l| l.starts_with("gate break_glass: CROSSED"))
        .unwrap_or_else(|| panic!("{gate_err}"));
    assert_eq!(pseudonyms(line).len(), 1, "{line}");
    let mut shared = decoded_files(gated.parent().unwrap(), &["junit.xml"]);
    shared.insert(
        "step summary",
        std::fs::read_to_string(&step_summary).unwrap(),
    );
    shared.insert("stderr", gate_err.clone());
    assert!(shared["junit.xml"].contains("break_glass"));
    let found = leaks_in(&tenant, shared);
    assert!(found.is_empty(), "leaks: {found:?}");

    // Same key, same bytes; another key, other pseudonyms.
    let again = scratch();
    ok(&run(&tenant, &again, Some(KEY), &["--pseudonymize"]));
    assert!(files(&out) == files(&again), "two runs with one key differ");
    let other = scratch();
    ok(&run(&tenant, &other, Some(OTHER_KEY), &["--pseudonymize"]));
    let users = |dir: &Path| pseudonyms(&std::fs::read_to_string(dir.join("users.csv")).unwrap());
    let (a, b) = (users(&out), users(&other));
    assert!(!a.is_empty() && a.len() == b.len());
    assert!(a.is_disjoint(&b), "another key gave the same pseudonyms");
    assert!(leaks(&tenant, &other).is_empty());

    for d in [&plain, &out, &again, &other, &gated, &tenant] {
        cleanup(d);
    }
}

#[test]
fn without_a_key_the_run_stops_with_exit_2_and_writes_nothing() {
    let tenant = hostile_tenant();
    let out = scratch();
    for key in [None, Some(""), Some("too-short-a-key")] {
        let o = run(&tenant, &out, key, &["--pseudonymize"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(KEY_VAR), "{err}");
        assert!(!out.exists());
        if let Some(k) = key.filter(|k| !k.is_empty()) {
            assert!(err.contains("15 bytes") && !err.contains(k), "{err}");
        }
    }
    // `[privacy] pseudonymize = true` in ca-replay.toml asks for it too.
    let config = tenant.join("ca-replay.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}\n[privacy]\npseudonymize = true\n")).unwrap();
    let o = run(&tenant, &out, None, &[]);
    assert_eq!(o.status.code(), Some(2));
    ok(&run(&tenant, &out, Some(KEY), &[]));
    let summary: Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["pseudonymized"], true);
    assert!(leaks(&tenant, &out).is_empty());
    cleanup(&out);
    cleanup(&tenant);
}

#[test]
fn the_mapping_is_written_only_on_request_and_never_over_a_report() {
    let tenant = hostile_tenant();
    let out = scratch();
    // Not asked for: nowhere (the reports' folder and its parent hold no CSV but the reports).
    ok(&run(&tenant, &out, Some(KEY), &["--pseudonymize"]));
    let around: Vec<PathBuf> = std::fs::read_dir(out.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(around, std::slice::from_ref(&out));
    // Without pseudonymization there is no mapping to write.
    let o = run(&tenant, &out, Some(KEY), &["--pseudonym-map", "x.csv"]);
    assert_eq!(o.status.code(), Some(2));
    // Inside the report folder only when asked for exactly that, with a warning; never over a
    // report file.
    let inside = out.join("mapping.csv");
    let err = ok(&run(
        &tenant,
        &out,
        Some(KEY),
        &[
            "--pseudonymize",
            "--pseudonym-map",
            inside.to_str().unwrap(),
        ],
    ));
    assert!(err.contains("warning: the pseudonym mapping"), "{err}");
    assert!(inside.is_file());
    let over = out.join("users.csv");
    let o = run(
        &tenant,
        &out,
        Some(KEY),
        &["--pseudonymize", "--pseudonym-map", over.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(std::fs::read_to_string(&over)
        .unwrap()
        .starts_with("user_id,"));
    cleanup(&out);
    cleanup(&tenant);
}

/// `ca-replay diff --tenant <tenant> --base <base> --out <out> <extra…>` through the binary.
fn diff(tenant: &Path, base: &Path, out: &Path, key: Option<&str>, extra: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ca-replay"));
    c.arg("diff")
        .arg("--quiet")
        .arg("--tenant")
        .arg(tenant)
        .arg("--base")
        .arg(base)
        .arg("--out")
        .arg(out)
        .args(extra)
        .env_remove("GITHUB_STEP_SUMMARY")
        .stdin(std::process::Stdio::null());
    match key {
        Some(k) => c.env(KEY_VAR, k),
        None => c.env_remove(KEY_VAR),
    };
    c.output().unwrap()
}

const DIFF_REPORTS: [&str; 3] = ["diff.html", "diff.json", "diff.md"];

/// `diff --pseudonymize` on the hostile tenant: the base is its policies, the head adds one
/// enabled policy that blocks browsers for everyone, break-glass accounts included, so
/// the hostile users are newly blocked and the break-glass accounts have new findings (both
/// name users). diff.md, diff.json, diff.html and the JUnit file hold no input value; the
/// plain diff shows them.
#[test]
fn a_pseudonymized_diff_holds_no_input_value() {
    let tenant = hostile_tenant();
    let work = tenant.parent().unwrap().to_path_buf();
    let base = work.join("base-policies");
    std::fs::create_dir_all(&base).unwrap();
    for e in std::fs::read_dir(tenant.join("policies")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, base.join(p.file_name().unwrap())).unwrap();
    }
    std::fs::write(
        tenant.join("policies/CA999.json"),
        json!({
            "id": "CA999", "displayName": "CA999: Block browsers (no exclusions)",
            "state": "enabled",
            "conditions": {
                "users": {"includeUsers": ["All"]},
                "applications": {"includeApplications": ["All"]},
                "clientAppTypes": ["browser"]
            },
            "grantControls": {"operator": "OR", "builtInControls": ["block"]}
        })
        .to_string(),
    )
    .unwrap();

    // Plain: the users and the break-glass accounts are named (the scan can see them).
    let plain = work.join("plain");
    let o = diff(&tenant, &base, &plain, None, &[]);
    ok(&o);
    let shown: BTreeSet<String> = leaks_in(&tenant, decoded_files(&plain, &DIFF_REPORTS))
        .into_iter()
        .map(|(_, _, v)| v)
        .collect();
    for v in [
        "Sean.O'Brien@Contoso.com",
        "zoe.orsted@CONTOSO.COM",
        "bg1@contoso.com",
        "ghost.user@contoso.com",
        "unreadable.person@contoso.com",
    ] {
        assert!(shown.contains(v), "{v} not in the plain diff: {shown:?}");
    }
    let p: Value =
        serde_json::from_slice(&std::fs::read(plain.join("diff.json")).unwrap()).unwrap();
    let users = p["users"].as_array().unwrap();
    assert!(!users.is_empty(), "the new policy changes nobody's outcome");
    for u in users {
        let label = u["user"].as_str().unwrap();
        assert!(
            shown.iter().any(|v| v.eq_ignore_ascii_case(label)),
            "{label} not seen by the scan"
        );
    }

    // Pseudonymized, with gates crossed (exit 1, the reports written all the same).
    let out = work.join("pseudo");
    let junit = work.join("junit.xml");
    let map = work.join("map.csv");
    let o = diff(
        &tenant,
        &base,
        &out,
        Some(KEY),
        &[
            "--pseudonymize",
            "--pseudonym-map",
            map.to_str().unwrap(),
            "--max-new-blocked-users",
            "0",
            "--break-glass-gate",
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{err}");
    let mut files = decoded_files(&out, &DIFF_REPORTS);
    files.extend(decoded_files(&work, &["junit.xml"]));
    files.insert("stderr", err.clone());
    let found = leaks_in(&tenant, files.clone());
    assert!(found.is_empty(), "leaks: {found:?}");
    assert!(!err.contains(KEY));
    // The same findings, by pseudonym: the users newly blocked, the break-glass errors (the
    // gate's message names the first one), all in the mapping.
    let d: Value = serde_json::from_slice(&std::fs::read(out.join("diff.json")).unwrap()).unwrap();
    assert_eq!(d["views"], p["views"]);
    assert_eq!(
        d["users"].as_array().unwrap().len(),
        p["users"].as_array().unwrap().len()
    );
    assert!(d["break_glass"]["new_errors_in_head"].as_u64().unwrap() > 0);
    // It says so, and the plain diff does not.
    assert_eq!(d["pseudonymized"], true);
    assert!(p.get("pseudonymized").is_none());
    assert!(files["diff.md"].contains("Pseudonymized:"));
    assert!(files["diff.html"].contains("Pseudonymized:"));
    let rows = privacy::read_mapping(&std::fs::read(&map).unwrap()).unwrap();
    let mapped: BTreeSet<&str> = rows.iter().map(|(p, _, _)| p.as_str()).collect();
    let mut named = BTreeSet::new();
    for (name, text) in &files {
        for p in pseudonyms(text) {
            assert!(
                mapped.contains(p.as_str()),
                "{name}: {p} not in the mapping"
            );
            named.insert(p);
        }
    }
    let sean: BTreeSet<&str> = rows
        .iter()
        .filter(|(_, _, o)| o == "Sean.O'Brien@Contoso.com")
        .map(|(p, _, _)| p.as_str())
        .collect();
    assert_eq!(sean.len(), 1);
    assert!(
        sean.iter().all(|s| named.contains(*s)),
        "Seán's pseudonym is in no report"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("break_glass") && !pseudonyms(&xml).is_empty(),
        "{xml}"
    );

    // Same key (and gates), same bytes.
    let again = work.join("again");
    let o = diff(
        &tenant,
        &base,
        &again,
        Some(KEY),
        &[
            "--pseudonymize",
            "--max-new-blocked-users",
            "0",
            "--break-glass-gate",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    for name in DIFF_REPORTS {
        assert!(
            std::fs::read(out.join(name)).unwrap() == std::fs::read(again.join(name)).unwrap(),
            "{name} differs between two runs with one key"
        );
    }
    // No key: exit 2, nothing written.
    let none = work.join("none");
    let o = diff(&tenant, &base, &none, None, &["--pseudonymize"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains(KEY_VAR));
    assert!(!none.exists());
    cleanup(&tenant);
}
