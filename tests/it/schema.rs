//! `docs/summary.schema.json` documents `summary.json`: the schema is valid JSON Schema 2020-12
//! that names and describes every key, and the summaries `run` writes match it: the sample
//! tenant's, and small tenants' that fill the parts only some inputs have (a time window, a trend,
//! skipped records and warnings, gates, a disabled policy, no break-glass accounts, no sign-ins).
//! Every fixed-key object is closed, so a key added to the code without documenting it fails
//! here; the negative checks prove that the test can fail.

use std::path::{Path, PathBuf};

use ca_replay::domain::Impact;
use ca_replay::generate::{self, Options};
use serde_json::{json, Value};

use crate::reports::{cleanup, cli_run, cli_run_on, scratch};

const META_SCHEMA: &str = "https://json-schema.org/draft/2020-12/schema";

fn schema_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/summary.schema.json")
}

fn schema() -> Value {
    serde_json::from_str(&std::fs::read_to_string(schema_path()).unwrap()).unwrap()
}

/// The compiled schema, with `format` asserted (`date-time`, `date`).
pub(crate) struct Validator {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

impl Validator {
    pub(crate) fn new() -> Validator {
        let mut schemas = boon::Schemas::new();
        let mut compiler = boon::Compiler::new();
        compiler.enable_format_assertions();
        let index = compiler
            .compile(schema_path().to_str().unwrap(), &mut schemas)
            .unwrap_or_else(|e| panic!("docs/summary.schema.json does not compile: {e:#}"));
        Validator { schemas, index }
    }

    /// The validation errors, one per line with the instance location; `None` when valid.
    fn errors(&self, summary: &Value) -> Option<String> {
        self.schemas
            .validate(summary, self.index)
            .err()
            .map(|e| e.to_string())
    }

    pub(crate) fn assert_valid(&self, what: &str, summary: &Value) {
        if let Some(e) = self.errors(summary) {
            panic!("{what}: summary.json does not match docs/summary.schema.json:\n{e}");
        }
    }

    /// `summary` changed by `edit` must be rejected with an error that says `expect` (e.g.
    /// `at '/inputs/window'`, the instance location).
    fn assert_rejected(
        &self,
        summary: &Value,
        what: &str,
        expect: &str,
        edit: impl FnOnce(&mut Value),
    ) {
        let mut v = summary.clone();
        edit(&mut v);
        let e = self
            .errors(&v)
            .unwrap_or_else(|| panic!("accepted a summary with {what}"));
        assert!(
            e.contains(expect),
            "{what}: no `{expect}` in the error:\n{e}"
        );
    }
}

fn read_summary(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

/// Every keyword the schema uses; a misspelt one would be ignored by validators.
const KEYWORDS: [&str; 26] = [
    "$schema",
    "$ref",
    "$defs",
    "title",
    "description",
    "type",
    "properties",
    "required",
    "additionalProperties",
    "propertyNames",
    "dependentRequired",
    "items",
    "prefixItems",
    "minItems",
    "maxItems",
    "enum",
    "const",
    "oneOf",
    "allOf",
    "if",
    "then",
    "else",
    "minimum",
    "maximum",
    "format",
    "$comment",
];

/// Walks every subschema: known keywords only; every object with fixed keys is closed
/// (`additionalProperties: false`) and describes each key.
fn check_subschema(s: &Value, at: &str, problems: &mut Vec<String>) {
    let Value::Object(m) = s else {
        if !s.is_boolean() {
            problems.push(format!("{at}: not a schema"));
        }
        return;
    };
    for k in m.keys() {
        if !KEYWORDS.contains(&k.as_str()) {
            problems.push(format!("{at}: unknown keyword `{k}`"));
        }
    }
    if m.get("type") == Some(&json!("object")) {
        if let Some(Value::Object(props)) = m.get("properties") {
            if m.get("additionalProperties") != Some(&json!(false)) {
                problems.push(format!(
                    "{at}: fixed keys without additionalProperties: false"
                ));
            }
            for (k, p) in props {
                if p.get("description")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    problems.push(format!("{at}/properties/{k}: no description"));
                }
            }
        }
    }
    for key in ["properties", "$defs"] {
        if let Some(Value::Object(children)) = m.get(key) {
            for (k, c) in children {
                check_subschema(c, &format!("{at}/{key}/{k}"), problems);
            }
        }
    }
    for key in ["prefixItems", "oneOf", "allOf"] {
        if let Some(Value::Array(children)) = m.get(key) {
            for (i, c) in children.iter().enumerate() {
                check_subschema(c, &format!("{at}/{key}/{i}"), problems);
            }
        }
    }
    for key in [
        "items",
        "additionalProperties",
        "propertyNames",
        "if",
        "then",
        "else",
    ] {
        if let Some(c) = m.get(key) {
            check_subschema(c, &format!("{at}/{key}"), problems);
        }
    }
}

#[test]
fn the_schema_is_valid_2020_12_and_describes_every_key() {
    let schema = schema();
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    let meta = compiler.compile(META_SCHEMA, &mut schemas).unwrap();
    if let Err(e) = schemas.validate(&schema, meta) {
        panic!("docs/summary.schema.json is not a valid 2020-12 schema:\n{e}");
    }
    assert_eq!(schema["$schema"], META_SCHEMA);
    // Tied to the code: the version it writes, the impact words it uses.
    assert_eq!(
        schema["properties"]["schema_version"]["const"],
        json!(ca_replay::report::SCHEMA_VERSION)
    );
    let impacts: Vec<&str> = Impact::ALL.iter().map(|i| i.as_str()).collect();
    assert_eq!(schema["$defs"]["impact"]["enum"], json!(impacts));
    let mut problems = Vec::new();
    check_subschema(&schema, "#", &mut problems);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The walk itself can fail.
    let mut open = schema.clone();
    open["properties"]["inputs"]
        .as_object_mut()
        .unwrap()
        .remove("additionalProperties");
    open["properties"]["gates"]["items"]["properties"]["gate"]
        .as_object_mut()
        .unwrap()
        .remove("description");
    open["properties"]["trend"]["desciption"] = json!("typo");
    let mut problems = Vec::new();
    check_subschema(&open, "#", &mut problems);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    // Compiling checks the schema against the meta-schema too.
    Validator::new();
}

/// The sample tenant's `summary.json` matches, and edits that the code does not make (an
/// undocumented key at the top and deeper down, a wrong type, a missing key, a word outside a
/// closed vocabulary) are rejected where they are.
#[test]
fn the_sample_summary_matches_and_undocumented_changes_do_not() {
    let v = Validator::new();
    let out = scratch();
    cli_run(&["--out", out.to_str().unwrap(), "--quiet"]).unwrap();
    let summary = read_summary(&out);
    cleanup(out);
    v.assert_valid("sample tenant", &summary);

    v.assert_rejected(
        &summary,
        "an undocumented top-level key",
        "'generated_at'",
        |s| {
            s["generated_at"] = json!("2026-11-23T03:15:00Z");
        },
    );
    v.assert_rejected(
        &summary,
        "an undocumented key in inputs.window",
        "at '/inputs/window'",
        |s| {
            s["inputs"]["window"]["timezone"] = json!("UTC");
        },
    );
    v.assert_rejected(
        &summary,
        "an undocumented impact in a policy's tally",
        "at '/policies/0/signins'",
        |s| s["policies"][0]["signins"]["mfa_skipped"] = json!(0),
    );
    v.assert_rejected(
        &summary,
        "an undocumented key in a coverage row",
        "at '/coverage/by_app/0'",
        |s| s["coverage"]["by_app"][0]["share"] = json!(0.5),
    );
    v.assert_rejected(
        &summary,
        "a count as a string",
        "at '/inputs/records'",
        |s| {
            s["inputs"]["records"] = json!("41040");
        },
    );
    v.assert_rejected(
        &summary,
        "the agreement as a percentage string",
        "at '/self_validation/agreement'",
        |s| s["self_validation"]["agreement"] = json!("100%"),
    );
    v.assert_rejected(
        &summary,
        "a negative count",
        "at '/sets/current/users/blocked'",
        |s| {
            s["sets"]["current"]["users"]["blocked"] = json!(-1);
        },
    );
    v.assert_rejected(&summary, "no gates", "missing properties 'gates'", |s| {
        s.as_object_mut().unwrap().remove("gates");
    });
    v.assert_rejected(
        &summary,
        "an impact that is not one",
        "invalid property 'mfa'",
        |s| s["difference"]["signins_newly"]["mfa"] = json!(1),
    );
    v.assert_rejected(
        &summary,
        "a time that is not one",
        "at '/inputs/from'",
        |s| {
            s["inputs"]["from"] = json!("2 November 2026");
        },
    );
    v.assert_rejected(
        &summary,
        "another schema version",
        "at '/schema_version'",
        |s| {
            s["schema_version"] = json!(2);
        },
    );
    v.assert_rejected(
        &summary,
        "a replayed policy's tally without its breakdown",
        "at '/policies/0'",
        |s| {
            s["policies"][0].as_object_mut().unwrap().remove("affected");
        },
    );
    // `pseudonymized` (--pseudonymize) is optional, and a boolean.
    let mut with = summary.clone();
    with["pseudonymized"] = json!(true);
    v.assert_valid("pseudonymized", &with);
    v.assert_rejected(
        &summary,
        "pseudonymized as text",
        "at '/pseudonymized'",
        |s| {
            s["pseudonymized"] = json!("yes");
        },
    );
}

/// A generated tenant, edited to need what the sample does not: a disabled policy, one with a
/// field the engine does not evaluate (accepted with --allow-unsupported) and exclusions of a
/// missing user and an empty group, a bad record and an empty file, no break-glass accounts,
/// and every gate.
fn edited_tenant(root: &Path) {
    generate::generate(
        root,
        &Options {
            users: 40,
            days: 2,
            seed: 7,
            signins: Some(300),
            start: chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 11, 2, 0, 0, 0).unwrap(),
            gzip: false,
            format: generate::Format::Graph,
        },
    )
    .unwrap();
    let policy = |name: &str| -> Value {
        let path = root.join("policies").join(name);
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let write = |name: &str, v: &Value| {
        std::fs::write(root.join(name), serde_json::to_string_pretty(v).unwrap()).unwrap();
    };
    let mut disabled = policy("CA004.json");
    disabled["id"] = json!("0e0e0e0e-0000-4000-8000-0000000000d1");
    disabled["displayName"] = json!("CA901: Switched off");
    disabled["state"] = json!("disabled");
    write("policies/CA901.json", &disabled);

    let empty_group = "0e0e0e0e-0000-4000-8000-0000000000e1";
    let mut groups: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("groups.json")).unwrap()).unwrap();
    groups["value"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": empty_group, "displayName": "Left empty", "members": []}));
    write("groups.json", &groups);
    let mut odd = policy("CA004.json");
    odd["id"] = json!("0e0e0e0e-0000-4000-8000-0000000000d2");
    odd["displayName"] = json!("CA902: Odd exclusions");
    odd["state"] = json!("enabledForReportingButNotEnforced");
    odd["conditions"]["users"]["excludeUsers"] = json!(["0e0e0e0e-0000-4000-8000-00000000dead"]);
    odd["conditions"]["users"]["excludeGroups"] = json!([empty_group]);
    odd["conditions"]["futureCondition"] = json!({"includeSomething": ["All"]});
    write("policies/CA902.json", &odd);

    let day = root.join("signins/signins-2026-11-03.ndjson");
    let mut text = std::fs::read_to_string(&day).unwrap();
    text.push_str("{\"id\": \"bad-1\", \"createdDateTime\": \"yesterday\"}\n");
    std::fs::write(&day, text).unwrap();
    std::fs::write(root.join("signins/empty.json"), "").unwrap();

    std::fs::write(
        root.join("ca-replay.toml"),
        "[gates]\nmax_new_blocked_users = 0\nmax_new_prompted_users = 1000\n\
         max_new_registering_users = 1000\nbreak_glass = true\nmin_agreement = 0.5\n",
    )
    .unwrap();
}

/// Two nightly runs of the edited tenant under one folder (the first over one day, so the second
/// has a trend), then one over a window with no sign-ins and only the legacy sign-in risk policy
/// (no replacement, nothing to compare): all match, and each optional part is really there.
#[test]
fn summaries_with_the_optional_parts_match() {
    let v = Validator::new();
    let tenant = scratch();
    edited_tenant(&tenant);
    let reports = scratch();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "--reports-dir",
            reports.to_str().unwrap(),
            "--allow-unsupported",
            "--quiet",
        ];
        args.extend_from_slice(extra);
        cli_run_on(&tenant, &args).unwrap();
    };
    run(&[
        "--run-name",
        "first",
        "--from",
        "2026-11-02",
        "--to",
        "2026-11-03",
    ]);
    run(&["--run-name", "second"]);
    run(&[
        "--run-name",
        "empty",
        "--from",
        "2030-01-01",
        "--policy",
        "idp-signin-risk",
    ]);
    let first = read_summary(&reports.join("first"));
    let second = read_summary(&reports.join("second"));
    let empty = read_summary(&reports.join("empty"));
    cleanup(tenant);
    cleanup(reports);

    v.assert_valid("a run over a window", &first);
    assert!(first["inputs"]["window"]["from"].is_string());
    assert!(
        first["inputs"]["window"]["signins_outside"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(first["trend"].is_null());

    v.assert_valid("a run with a trend, skipped records and gates", &second);
    assert_eq!(second["trend"]["previous_run"], "first");
    assert!(second["inputs"]["skipped"].as_u64().unwrap() >= 2);
    // Each skipped record names its file as signin_files does.
    let files: Vec<&Value> = second["inputs"]["signin_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["path"])
        .collect();
    let skipped = second["inputs"]["skipped_first"].as_array().unwrap();
    assert!(!skipped.is_empty());
    for s in skipped {
        assert!(files.contains(&&s["file"]), "{s} is not in {files:?}");
    }
    assert!(!second["warnings"].as_array().unwrap().is_empty());
    assert_eq!(second["gates"].as_array().unwrap().len(), 5);
    let policies = second["policies"].as_array().unwrap();
    let by_id = |id: &str| policies.iter().find(|p| p["id"] == id).unwrap();
    assert!(by_id("0e0e0e0e-0000-4000-8000-0000000000d1")
        .get("signins")
        .is_none());
    assert!(by_id("0e0e0e0e-0000-4000-8000-0000000000d2")["unsupported_accepted"].is_array());
    assert_eq!(second["break_glass"]["configured"], false);
    assert!(!second["break_glass"]["candidates"]
        .as_array()
        .unwrap()
        .is_empty());
    let statuses: Vec<&str> = second["exclusions"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["status"].as_str())
        .collect();
    assert!(
        statuses.contains(&"missing") && statuses.contains(&"empty"),
        "{statuses:?}"
    );

    v.assert_valid("a run without sign-ins", &empty);
    assert_eq!(empty["inputs"]["signins"], 0);
    assert!(empty["inputs"]["from"].is_null());
    assert!(empty["self_validation"]["agreement"].is_null());
    assert_eq!(
        empty["legacy_migration"]["policies"][0]["status"],
        "no_replacement"
    );
    assert!(empty["legacy_migration"]["policies"][0]["signins"].is_null());
}
