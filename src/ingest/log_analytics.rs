//! Log Analytics / Sentinel exports of `SigninLogs` and `AADNonInteractiveUserSignInLogs` (also
//! the service-principal and managed-identity tables) into the Graph shape, then `graph::parse_signin`.
//!
//! In: JSON rows (arrays or NDJSON, PascalCase columns that source.rs turned into camelCase, nested
//! columns as objects or as JSON text) or the CSV export of a query (`TimeGenerated [UTC]` headers,
//! US-locale times, nested columns as JSON text). Out: one `Parsed` per row. Column names and
//! types: entra-semantics.md §6.4. Columns that differ from Graph are mapped by [`COLUMNS`];
//! errors name the Log Analytics column, not the Graph field.

use serde_json::{Map, Value};

use super::graph::{self, FieldError};
use super::table::{self, Table};
use super::Parsed;
use crate::signin::SignIn;
use crate::source::Record;

/// How a column's value becomes Graph's.
#[derive(Clone, Copy)]
enum Kind {
    /// Copied (strings, numbers and booleans as they are).
    Plain,
    /// A timestamp, rewritten as ISO-8601 UTC.
    Time,
    /// A dynamic column: an object/array, or JSON text of one.
    Nested,
    /// `ResultType`: the error code, `"0"` for success.
    ErrorCode,
}

/// Log Analytics column → Graph path. Where two columns feed one path, the first one present
/// wins (`CreatedDateTime` before `TimeGenerated`; the `LocationDetails` object before the bare
/// `Location` country; the `ConditionalAccessPolicies` dynamic before its string twin).
/// `ResourceId` is deliberately absent: in these tables it is the Azure resource path of the
/// tenant (`/tenants/…/providers/Microsoft.aadiam`), while the resource app is `ResourceIdentity`.
const COLUMNS: &[(&str, &str, Kind)] = &[
    ("Id", "id", Kind::Plain),
    ("CreatedDateTime", "createdDateTime", Kind::Time),
    ("TimeGenerated", "createdDateTime", Kind::Time),
    ("CorrelationId", "correlationId", Kind::Plain),
    ("OriginalRequestId", "originalRequestId", Kind::Plain),
    ("UserId", "userId", Kind::Plain),
    ("UserPrincipalName", "userPrincipalName", Kind::Plain),
    ("UserDisplayName", "userDisplayName", Kind::Plain),
    ("UserType", "userType", Kind::Plain),
    ("HomeTenantId", "homeTenantId", Kind::Plain),
    ("ResourceTenantId", "resourceTenantId", Kind::Plain),
    (
        "CrossTenantAccessType",
        "crossTenantAccessType",
        Kind::Plain,
    ),
    ("AppId", "appId", Kind::Plain),
    ("AppDisplayName", "appDisplayName", Kind::Plain),
    ("ResourceIdentity", "resourceId", Kind::Plain),
    ("ResourceDisplayName", "resourceDisplayName", Kind::Plain),
    (
        "ResourceServicePrincipalId",
        "resourceServicePrincipalId",
        Kind::Plain,
    ),
    (
        "ConditionalAccessAudiences",
        "conditionalAccessAudiences",
        Kind::Nested,
    ),
    ("IPAddress", "ipAddress", Kind::Plain),
    (
        "IPAddressFromResourceProvider",
        "ipAddressFromResourceProvider",
        Kind::Plain,
    ),
    (
        "AutonomousSystemNumber",
        "autonomousSystemNumber",
        Kind::Plain,
    ),
    ("LocationDetails", "location", Kind::Nested),
    ("Location", "location.countryOrRegion", Kind::Plain),
    (
        "NetworkLocationDetails",
        "networkLocationDetails",
        Kind::Nested,
    ),
    ("ClientAppUsed", "clientAppUsed", Kind::Plain),
    ("UserAgent", "userAgent", Kind::Plain),
    ("DeviceDetail", "deviceDetail", Kind::Nested),
    ("IsInteractive", "isInteractive", Kind::Plain),
    (
        "RiskLevelDuringSignIn",
        "riskLevelDuringSignIn",
        Kind::Plain,
    ),
    ("RiskLevelAggregated", "riskLevelAggregated", Kind::Plain),
    ("RiskState", "riskState", Kind::Plain),
    ("RiskDetail", "riskDetail", Kind::Plain),
    ("RiskEventTypes_V2", "riskEventTypes_v2", Kind::Nested),
    ("Status", "status", Kind::Nested),
    ("ResultType", "status.errorCode", Kind::ErrorCode),
    ("ResultDescription", "status.failureReason", Kind::Plain),
    (
        "ConditionalAccessStatus",
        "conditionalAccessStatus",
        Kind::Plain,
    ),
    (
        "ConditionalAccessPolicies",
        "appliedConditionalAccessPolicies",
        Kind::Nested,
    ),
    (
        "AppliedConditionalAccessPolicies",
        "appliedConditionalAccessPolicies",
        Kind::Nested,
    ),
    (
        "AuthenticationRequirement",
        "authenticationRequirement",
        Kind::Plain,
    ),
    (
        "AuthenticationRequirementPolicies",
        "authenticationRequirementPolicies",
        Kind::Nested,
    ),
    (
        "AuthenticationDetails",
        "authenticationDetails",
        Kind::Nested,
    ),
    (
        "AuthenticationMethodsUsed",
        "authenticationMethodsUsed",
        Kind::Plain,
    ),
    (
        "AuthenticationProtocol",
        "authenticationProtocol",
        Kind::Plain,
    ),
    (
        "OriginalTransferMethod",
        "originalTransferMethod",
        Kind::Plain,
    ),
    (
        "AuthenticationContextClassReferences",
        "authenticationContextClassReferences",
        Kind::Nested,
    ),
    (
        "SessionLifetimePolicies",
        "sessionLifetimePolicies",
        Kind::Nested,
    ),
    ("ServicePrincipalId", "servicePrincipalId", Kind::Plain),
    ("ServicePrincipalName", "servicePrincipalName", Kind::Plain),
    ("TokenIssuerType", "tokenIssuerType", Kind::Plain),
    ("IncomingTokenType", "incomingTokenType", Kind::Plain),
    ("SessionId", "sessionId", Kind::Plain),
    (
        "IsThroughGlobalSecureAccess",
        "isThroughGlobalSecureAccess",
        Kind::Plain,
    ),
];

/// Column name for matching: lower-case, no spaces, no unit suffix (`TimeGenerated [UTC]` →
/// `timegenerated`). JSON keys arrive camelCased by source.rs (`iPAddress`): the same key.
fn column_key(name: &str) -> String {
    let base = name.split(" [").next().unwrap_or(name);
    base.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// A JSON record is a sign-in row of Log Analytics when it has the table's own columns
/// (`TimeGenerated`, or `ResultType` without the `properties` of a diagnostic-settings envelope)
/// and a sign-in's: a sign-in table's `Type`/`Category`, `UserPrincipalName`, `AppId` or
/// `ServicePrincipalId`. (`AuditLogs` rows have the first, not the second.)
pub fn looks_like(v: &Value) -> bool {
    let Some(map) = v.as_object() else {
        return false;
    };
    let keys: Vec<String> = map.keys().map(|k| column_key(k)).collect();
    let sign_in_table = ["type", "category"].iter().any(|k| {
        map.iter()
            .find(|(key, _)| column_key(key) == *k)
            .and_then(|(_, v)| v.as_str())
            .is_some_and(|t| category_of(t).is_some())
    });
    !map.contains_key("properties") && is_sign_in_row(&keys, sign_in_table)
}

/// A CSV is a Log Analytics sign-in export when its header passes the same test.
pub fn matches_csv(headers: &[String]) -> bool {
    let keys: Vec<String> = headers.iter().map(|h| column_key(h)).collect();
    is_sign_in_row(&keys, false)
}

fn is_sign_in_row(keys: &[String], sign_in_table: bool) -> bool {
    let has = |k: &str| keys.iter().any(|x| x == k);
    (has("timegenerated") || has("resulttype"))
        && (sign_in_table || has("userprincipalname") || has("appid") || has("serviceprincipalid"))
}

/// Reads one JSON row (keys as source.rs normalized them).
pub fn read_json(value: Value) -> Result<SignIn, FieldError> {
    match value {
        Value::Object(map) => row_to_signin(map.into_iter().collect()),
        Value::String(why) => Err(FieldError {
            field: "(row)".into(),
            value: String::new(),
            why,
        }),
        other => Err(FieldError {
            field: "(record)".into(),
            value: short(&other),
            why: "expected a JSON object".into(),
        }),
    }
}

/// The rows of a Log Analytics query API result (`{"tables": [{"columns": [{"name", "type"}],
/// "rows": [[…]]}]}`, what `Invoke-AzOperationalInsightsQuery` and the REST API return) as one
/// JSON object per row. `None` when the value is not that shape. A row whose cell count is not
/// the column count is kept as a string saying so, for the reader to report.
pub fn query_result_rows(v: &Value) -> Option<Vec<Record>> {
    let tables = v.get("tables")?.as_array()?;
    let mut out = Vec::new();
    for t in tables {
        let names: Vec<&str> = t
            .get("columns")?
            .as_array()?
            .iter()
            .map(|c| c.get("name").and_then(Value::as_str))
            .collect::<Option<_>>()?;
        for row in t.get("rows")?.as_array()? {
            let cells = row.as_array()?;
            let value = if cells.len() == names.len() {
                let map: Map<String, Value> = names
                    .iter()
                    .map(|n| (*n).to_owned())
                    .zip(cells.iter().cloned())
                    .collect();
                Value::Object(map)
            } else {
                Value::String(format!(
                    "a row of {} cells under {} columns",
                    cells.len(),
                    names.len()
                ))
            };
            out.push(Record {
                index: out.len() + 1,
                value,
            });
        }
    }
    Some(out)
}

/// Reads the rows of a CSV export.
pub fn read_csv(table: Table) -> Vec<Parsed> {
    let headers = table.headers;
    table
        .rows
        .into_iter()
        .map(|row| Parsed {
            record: row.record,
            line: Some(row.line),
            signin: row.fields.and_then(|fields| {
                let cells = headers
                    .iter()
                    .cloned()
                    .zip(fields.into_iter().map(Value::String))
                    .collect();
                row_to_signin(cells)
            }),
        })
        .collect()
}

fn row_to_signin(cells: Vec<(String, Value)>) -> Result<SignIn, FieldError> {
    let (graph, category) = to_graph(cells)?;
    graph::parse_signin(&graph, category.as_deref()).map_err(rename_field)
}

/// Builds the Graph-shaped object of one row, and the diagnostic-settings category its
/// `Category` / `Type` column names (interactive or not, where `IsInteractive` is absent).
fn to_graph(cells: Vec<(String, Value)>) -> Result<(Value, Option<String>), FieldError> {
    let mut by_key: Map<String, Value> = Map::new();
    for (name, value) in cells {
        if !is_blank(&value) {
            by_key.entry(column_key(&name)).or_insert(value);
        }
    }
    let mut out = Map::new();
    for &(column, path, kind) in COLUMNS {
        let Some(raw) = by_key.get(&column_key(column)) else {
            continue;
        };
        // `ResultType` comes after `Status` and overrides its code: it is the column KQL filters on.
        if table::is_set(&out, path) && !matches!(kind, Kind::ErrorCode) {
            continue;
        }
        let value = convert(column, raw, kind)?;
        if !is_blank(&value) {
            table::set_path(&mut out, path, value);
        }
    }
    let category = ["category", "type"]
        .iter()
        .filter_map(|k| by_key.get(*k).and_then(Value::as_str))
        .find_map(category_of)
        .map(str::to_owned);
    Ok((Value::Object(out), category))
}

fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

fn convert(column: &str, raw: &Value, kind: Kind) -> Result<Value, FieldError> {
    let bad = |why: &str| FieldError {
        field: column.to_owned(),
        value: short(raw),
        why: why.to_owned(),
    };
    match kind {
        Kind::Plain => Ok(raw.clone()),
        Kind::Time => match raw {
            Value::String(s) => table::time_value(column, s),
            _ => Err(bad("expected a timestamp string")),
        },
        Kind::Nested => match raw {
            Value::String(s) if s.trim_start().starts_with(['{', '[']) => {
                serde_json::from_str(s).map_err(|e| bad(&format!("not valid JSON text: {e}")))
            }
            other => Ok(other.clone()),
        },
        Kind::ErrorCode => {
            let code = match raw {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            };
            code.map(Value::from)
                .ok_or_else(|| bad("not an integer error code (`0` is success)"))
        }
    }
}

fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 80 {
        format!("{}…", text.chars().take(80).collect::<String>())
    } else {
        text
    }
}

/// The inverse of reading: a Graph `signIn` object as a Log Analytics row of `table`
/// (`SigninLogs`, `AADNonInteractiveUserSignInLogs`, …), with the table's own columns
/// (`TimeGenerated`, `Category`, `Type`, `ResultType`, the tenant's `ResourceId`) and the
/// dynamic columns as JSON text, as a query export has them. The generator writes these, so the
/// reader and the benches see the shape admins export; reading one back gives the same sign-in.
pub fn row_from_graph(graph: &Map<String, Value>, table: &str) -> Map<String, Value> {
    let get = |path: &str| -> Option<&Value> {
        let mut parts = path.split('.');
        let mut v = graph.get(parts.next()?)?;
        for p in parts {
            v = v.get(p)?;
        }
        Some(v)
    };
    let tenant = get("resourceTenantId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut row = Map::new();
    row.insert("TenantId".into(), Value::from(tenant.clone()));
    row.insert("SourceSystem".into(), Value::from("Azure AD"));
    row.insert(
        "ResourceId".into(),
        Value::from(format!("/tenants/{tenant}/providers/Microsoft.aadiam")),
    );
    row.insert("OperationName".into(), Value::from("Sign-in activity"));
    row.insert(
        "Category".into(),
        Value::from(category_of(table).unwrap_or(table)),
    );
    row.insert("Type".into(), Value::from(table));
    for &(column, path, kind) in COLUMNS {
        // The string twin of the policies column is not written; Graph's own name is not a column.
        if column == "AppliedConditionalAccessPolicies" {
            continue;
        }
        let Some(v) = get(path) else { continue };
        let cell = match (kind, v) {
            (Kind::Nested, Value::Object(_) | Value::Array(_)) => Value::from(v.to_string()),
            (Kind::ErrorCode, Value::Number(n)) => Value::from(n.to_string()),
            _ => v.clone(),
        };
        row.insert(column.to_owned(), cell);
    }
    row
}

/// The diagnostic-settings category graph.rs understands, from `Category` or the table name.
fn category_of(name: &str) -> Option<&'static str> {
    match name.trim().to_ascii_lowercase().as_str() {
        "signinlogs" => Some("SignInLogs"),
        "noninteractiveusersigninlogs" | "aadnoninteractiveusersigninlogs" => {
            Some("NonInteractiveUserSignInLogs")
        }
        "serviceprincipalsigninlogs" | "aadserviceprincipalsigninlogs" => {
            Some("ServicePrincipalSignInLogs")
        }
        "managedidentitysigninlogs" | "aadmanagedidentitysigninlogs" => {
            Some("ManagedIdentitySignInLogs")
        }
        _ => None,
    }
}

/// graph.rs names Graph fields; a Log Analytics user knows the columns.
fn rename_field(mut e: FieldError) -> FieldError {
    let top = e.field.split('.').next().unwrap_or("");
    let column = COLUMNS
        .iter()
        .find(|(_, path, _)| *path == e.field)
        .or_else(|| COLUMNS.iter().find(|(_, path, _)| *path == top))
        .or_else(|| {
            // Fields inside a nested column (`isCompliant` of `DeviceDetail`).
            NESTED_FIELDS
                .iter()
                .find(|(f, _)| *f == e.field)
                .and_then(|(_, path)| COLUMNS.iter().find(|(_, p, _)| p == path))
        });
    if let Some((column, path, _)) = column {
        // graph.rs names nested fields by path (`deviceDetail.isCompliant`): inside a nested
        // column, the part after the column's own path is what the reader needs.
        let inner = e
            .field
            .strip_prefix(path)
            .and_then(|rest| rest.strip_prefix('.'))
            .unwrap_or(&e.field)
            .to_owned();
        e.field = format!("{column} ({inner})");
    }
    e
}

/// Fields graph.rs reports by their own name, and the nested column they live in.
const NESTED_FIELDS: &[(&str, &str)] = &[
    ("countryOrRegion", "location"),
    ("deviceId", "deviceDetail"),
    ("displayName", "deviceDetail"),
    ("operatingSystem", "deviceDetail"),
    ("browser", "deviceDetail"),
    ("isCompliant", "deviceDetail"),
    ("isManaged", "deviceDetail"),
    ("trustType", "deviceDetail"),
    ("failureReason", "status"),
    ("additionalDetails", "status"),
    ("applicationId", "conditionalAccessAudiences"),
    ("authenticationStepResultDetail", "authenticationDetails"),
    ("authenticationMethod", "authenticationDetails"),
    ("succeeded", "authenticationDetails"),
    ("conditionsSatisfied", "appliedConditionalAccessPolicies"),
    ("conditionsNotSatisfied", "appliedConditionalAccessPolicies"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(v: Value) -> Vec<(String, Value)> {
        v.as_object().unwrap().clone().into_iter().collect()
    }

    fn base() -> Value {
        json!({"TimeGenerated": "2026-11-16T08:01:12Z", "Id": "a", "UserId": "u",
               "ResultType": "0", "Type": "SigninLogs"})
    }

    #[test]
    fn maps_the_columns_that_differ_from_graph() {
        let mut v = base();
        v["ResourceIdentity"] = json!("00000003-0000-0000-c000-000000000000");
        v["ResourceId"] = json!("/tenants/t/providers/Microsoft.aadiam");
        v["IPAddress"] = json!("2001:db8::1");
        v["Location"] = json!("NL");
        v["ResultType"] = json!("50126");
        v["ResultDescription"] = json!("Invalid username or password");
        v["ConditionalAccessPolicies"] = json!("[{\"id\":\"P\",\"result\":\"success\"}]");
        let (g, cat) = to_graph(row(v)).unwrap();
        assert_eq!(g["resourceId"], "00000003-0000-0000-c000-000000000000");
        assert_eq!(g["location"]["countryOrRegion"], "NL");
        assert_eq!(
            g["status"],
            json!({"errorCode": 50126, "failureReason": "Invalid username or password"})
        );
        assert_eq!(g["appliedConditionalAccessPolicies"][0]["id"], "P");
        assert_eq!(cat.as_deref(), Some("SignInLogs"));
    }

    #[test]
    fn result_type_wins_over_status_and_must_be_an_integer() {
        let mut v = base();
        v["Status"] = json!({"errorCode": 0, "additionalDetails": "MFA completed in Azure AD"});
        v["ResultType"] = json!(50074);
        let (g, _) = to_graph(row(v.clone())).unwrap();
        assert_eq!(g["status"]["errorCode"], 50074);
        assert_eq!(
            g["status"]["additionalDetails"],
            "MFA completed in Azure AD"
        );
        v["ResultType"] = json!("abc");
        let e = to_graph(row(v)).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.value.as_str()),
            ("ResultType", "\"abc\"")
        );
    }

    #[test]
    fn errors_name_the_column() {
        let mut v = base();
        v["DeviceDetail"] = json!("{\"isCompliant\": \"maybe\"}");
        let e = row_to_signin(row(v)).unwrap_err();
        assert_eq!(e.field, "DeviceDetail (isCompliant)");
        let mut v = base();
        v["LocationDetails"] = json!("{not json");
        assert_eq!(row_to_signin(row(v)).unwrap_err().field, "LocationDetails");
    }

    /// Every top-level field graph.rs reads has a Log Analytics column (`signInEventTypes` has
    /// none: `Type`/`Category` stand in for it).
    #[test]
    fn every_field_graph_reads_has_a_column() {
        const GRAPH_READS: &[&str] = &[
            "id",
            "createdDateTime",
            "userId",
            "userPrincipalName",
            "userDisplayName",
            "userType",
            "homeTenantId",
            "resourceTenantId",
            "crossTenantAccessType",
            "appId",
            "appDisplayName",
            "resourceId",
            "resourceDisplayName",
            "clientAppUsed",
            "userAgent",
            "servicePrincipalId",
            "riskLevelDuringSignIn",
            "riskLevelAggregated",
            "authenticationRequirement",
            "isThroughGlobalSecureAccess",
            "sessionId",
            "correlationId",
            "ipAddress",
            "location",
            "deviceDetail",
            "status",
            "isInteractive",
            "conditionalAccessAudiences",
            "authenticationDetails",
            "originalTransferMethod",
            "authenticationProtocol",
            "authenticationContextClassReferences",
            "appliedConditionalAccessPolicies",
        ];
        for field in GRAPH_READS {
            assert!(
                COLUMNS
                    .iter()
                    .any(|(_, path, _)| path.split('.').next() == Some(field)),
                "no column for `{field}`"
            );
        }
    }

    #[test]
    fn query_api_results() {
        let v = json!({"tables": [{"name": "PrimaryResult",
            "columns": [{"name": "TimeGenerated", "type": "datetime"}, {"name": "Id", "type": "string"}],
            "rows": [["2026-11-16T08:01:12Z", "a"], ["2026-11-16T08:01:13Z"]]}]});
        let rows = query_result_rows(&v).unwrap();
        assert_eq!(
            rows[0].value,
            json!({"TimeGenerated": "2026-11-16T08:01:12Z", "Id": "a"})
        );
        assert_eq!(rows[1].value, json!("a row of 1 cells under 2 columns"));
        assert!(query_result_rows(&json!({"value": []})).is_none());
    }

    #[test]
    fn detection() {
        assert!(looks_like(
            &json!({"timeGenerated": "x", "type": "SigninLogs"})
        ));
        assert!(looks_like(
            &json!({"timeGenerated": "x", "userPrincipalName": "u"})
        ));
        assert!(!looks_like(
            &json!({"timeGenerated": "x", "category": "UserManagement"})
        ));
        assert!(!looks_like(
            &json!({"resultType": "0", "appId": "a", "properties": {}})
        ));
        let h = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        assert!(matches_csv(&h(&["TimeGenerated [UTC]", "AppId"])));
        assert!(!matches_csv(&h(&[
            "TimeGenerated [UTC]",
            "ActivityDisplayName"
        ])));
        assert!(!matches_csv(&[
            "Date (UTC)".to_owned(),
            "Request ID".to_owned()
        ]));
    }
}
