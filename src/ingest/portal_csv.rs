//! The Entra admin center's CSV download of sign-ins (interactive, non-interactive and
//! service-principal files) into the Graph shape, then `graph::parse_signin`.
//!
//! In: a CSV table whose header is the portal's (entra-semantics.md §6.6): display names such as
//! `Date (UTC)`, `Request ID`, `Sign-in error code`, with its quirks (trailing spaces in
//! `Application ID `, a double space in `Autonomous system  number`, `Incoming token type` twice,
//! header sets that vary by date, `Risk level (aggregate)` in older files), UTC times without a
//! zone, `Location` as one `City, State, CC` field, display words where Graph has enum values
//! (`Multifactor authentication`, `B2B collaboration`). Out: one `Parsed` per row.
//!
//! The CSV carries less than the JSON download: [`CSV_CANNOT_CARRY`] lists what is absent, so a
//! report can say which decisions it could not check. Nothing absent is invented: a field the
//! file lacks stays empty in the `SignIn`. Whether a file holds interactive or non-interactive
//! sign-ins is not a column: it is read from the portal's file name (`InteractiveSignIns_…`,
//! `NonInteractiveSignIns_…`).

use std::path::Path;

use serde_json::{Map, Value};

use super::graph::{self, FieldError};
use super::table::{self, normalize_header, Table};
use super::Parsed;

/// What the portal's CSV download lacks compared with its JSON download, one line each, for
/// the report to print beside results that came from CSV files.
pub const CSV_CANNOT_CARRY: &[&str] = &[
    "per-policy Conditional Access results (appliedConditionalAccessPolicies): only the overall \
     `Conditional Access` status; agreement with Entra's own verdicts cannot be checked",
    "authentication steps (authenticationDetails): MFA evidence comes only from the \
     `Multifactor authentication result` and `Authentication requirement` columns",
    "Conditional Access audiences (conditionalAccessAudiences): policies are matched on the \
     resource alone",
    "authentication contexts and user actions (authenticationContextClassReferences)",
    "the device's display name (deviceDetail.displayName), used by device filters",
    "sign-in risk (riskLevelDuringSignIn, riskLevelAggregated): only older files with \
     `Risk level (sign-in)` / `Risk level (aggregate)` columns carry it",
    "a column saying interactive or not: it is read from the file name \
     (`NonInteractiveSignIns_…`); a renamed file is read as interactive",
];

/// The notes a report prints for one portal CSV: what the format lacks, and the file itself
/// when its name does not say interactive or not.
pub fn notes(path: &Path) -> Vec<String> {
    let mut out: Vec<String> = CSV_CANNOT_CARRY
        .iter()
        .map(|l| format!("portal CSV input lacks {l}"))
        .collect();
    let name = file_name(path);
    if !name.contains("interactive")
        && !name.contains("serviceprincipal")
        && !name.contains("managedidentity")
    {
        out.push(format!(
            "`{}`: the file name does not say interactive or non-interactive; its sign-ins were read as interactive\nhint: keep the portal's names (`InteractiveSignIns_…`, `NonInteractiveSignIns_…`)",
            path.display()
        ));
    }
    out
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Where a portal column goes.
#[derive(Clone, Copy)]
enum Target {
    Text(&'static str),
    Time(&'static str),
    /// A display word of a Graph enum: `Multifactor authentication` → `multiFactorAuthentication`.
    Word(&'static str, &'static [&'static str]),
    Bool(&'static str),
    ErrorCode(&'static str),
    Location,
}

const RISK: &[&str] = &["none", "low", "medium", "high", "hidden"];

/// Normalized header (see [`normalize_header`]) → target. Columns not listed are not read.
const COLUMNS: &[(&str, Target)] = &[
    ("date (utc)", Target::Time("createdDateTime")),
    ("date", Target::Time("createdDateTime")),
    ("request id", Target::Text("id")),
    ("user agent", Target::Text("userAgent")),
    ("correlation id", Target::Text("correlationId")),
    ("user id", Target::Text("userId")),
    ("user", Target::Text("userDisplayName")),
    ("username", Target::Text("userPrincipalName")),
    ("user type", Target::Word("userType", &["member", "guest"])),
    (
        "cross tenant access type",
        Target::Word(
            "crossTenantAccessType",
            &[
                "none",
                "b2bCollaboration",
                "b2bDirectConnect",
                "microsoftSupport",
                "serviceProvider",
                "passthrough",
            ],
        ),
    ),
    ("incoming token type", Target::Text("incomingTokenType")),
    (
        "authentication protocol",
        Target::Word(
            "authenticationProtocol",
            &[
                "none",
                "oAuth2",
                "ropc",
                "wsFederation",
                "saml20",
                "deviceCode",
            ],
        ),
    ),
    (
        "unique token identifier",
        Target::Text("uniqueTokenIdentifier"),
    ),
    (
        "original transfer method",
        Target::Word(
            "originalTransferMethod",
            &["none", "deviceCodeFlow", "authenticationTransfer"],
        ),
    ),
    (
        "client credential type",
        Target::Text("clientCredentialType"),
    ),
    ("application", Target::Text("appDisplayName")),
    ("application id", Target::Text("appId")),
    ("resource", Target::Text("resourceDisplayName")),
    ("resource id", Target::Text("resourceId")),
    ("resource tenant id", Target::Text("resourceTenantId")),
    ("home tenant id", Target::Text("homeTenantId")),
    ("ip address", Target::Text("ipAddress")),
    ("location", Target::Location),
    ("sign-in error code", Target::ErrorCode("status.errorCode")),
    ("failure reason", Target::Text("status.failureReason")),
    ("client app", Target::Text("clientAppUsed")),
    ("device id", Target::Text("deviceDetail.deviceId")),
    ("browser", Target::Text("deviceDetail.browser")),
    (
        "operating system",
        Target::Text("deviceDetail.operatingSystem"),
    ),
    ("compliant", Target::Bool("deviceDetail.isCompliant")),
    ("managed", Target::Bool("deviceDetail.isManaged")),
    ("join type", Target::Text("deviceDetail.trustType")),
    (
        "multifactor authentication result",
        Target::Text("status.additionalDetails"),
    ),
    (
        "authentication requirement",
        Target::Word(
            "authenticationRequirement",
            &["singleFactorAuthentication", "multiFactorAuthentication"],
        ),
    ),
    ("session id", Target::Text("sessionId")),
    (
        "ip address (seen by resource)",
        Target::Text("ipAddressFromResourceProvider"),
    ),
    (
        "through global secure access",
        Target::Bool("isThroughGlobalSecureAccess"),
    ),
    (
        "global secure access ip address",
        Target::Text("globalSecureAccessIpAddress"),
    ),
    (
        "autonomous system number",
        Target::Text("autonomousSystemNumber"),
    ),
    ("token issuer type", Target::Text("tokenIssuerType")),
    ("token issuer name", Target::Text("tokenIssuerName")),
    (
        "conditional access",
        Target::Word(
            "conditionalAccessStatus",
            &["success", "failure", "notApplied"],
        ),
    ),
    (
        "risk level (aggregate)",
        Target::Word("riskLevelAggregated", RISK),
    ),
    (
        "risk level (sign-in)",
        Target::Word("riskLevelDuringSignIn", RISK),
    ),
    ("service principal id", Target::Text("servicePrincipalId")),
    (
        "service principal name",
        Target::Text("servicePrincipalName"),
    ),
];

/// The header of the portal's user sign-in downloads (`InteractiveSignIns_…`,
/// `NonInteractiveSignIns_…`), as it writes it: trailing spaces, a doubled `Incoming token
/// type`, and columns ca-replay does not read (left blank by the generator).
#[rustfmt::skip]
pub const USER_HEADERS: &[&str] = &[
    "Date (UTC)", "Request ID", "User agent", "Correlation ID", "User ID", "User", "Username",
    "User type", "Cross tenant access type", "Incoming token type", "Authentication Protocol",
    "Unique token identifier", "Original transfer method", "Client credential type",
    "Token Protection - Sign In Session", "Token Protection - Sign In Session StatusCode",
    "Application", "Application ID ", "App owner tenant ID", "Resource", "Resource ID ",
    "Resource tenant ID", "Resource owner tenant ID", "Home tenant ID", "Home tenant name",
    "IP address", "Location", "Status", "Sign-in error code", "Failure reason", "Client app",
    "Device ID", "Browser", "Operating System", "Compliant", "Managed", "Join Type",
    "Multifactor authentication result", "Multifactor authentication auth method",
    "Multifactor authentication auth detail", "Authentication requirement", "Sign-in identifier",
    "Session ID", "IP address (seen by resource)", "Through Global Secure Access",
    "Global Secure Access IP address", "Autonomous system  number", "Flagged for review",
    "Token issuer type", "Incoming token type", "Token issuer name", "Latency",
    "Conditional Access", "Managed Identity type", "Associated Resource Id", "Federated Token Id",
    "Federated Token Issuer",
];

/// The header of the service-principal and managed-identity downloads: no user columns.
#[rustfmt::skip]
pub const WORKLOAD_HEADERS: &[&str] = &[
    "Date (UTC)", "Request ID", "Correlation ID", "Service principal ID",
    "Service principal name", "Application", "Application ID ", "Resource", "Resource ID ",
    "Resource tenant ID", "Home tenant ID", "IP address", "Location", "Status",
    "Sign-in error code", "Failure reason", "Client credential type", "Credential key ID",
    "Credential thumbprint", "Managed Identity type", "Associated Resource Id",
    "Conditional Access", "Latency",
];

/// The inverse of reading: one row of a portal download with `headers`, from a Graph `signIn`
/// object, in the portal's words (`Multi factor authentication`, `Redmond, Washington, US`,
/// `True`, dates without a zone). Columns ca-replay does not read are blank.
pub fn row_from_graph(graph: &Map<String, Value>, headers: &[&str]) -> Vec<String> {
    let get = |path: &str| -> Option<&Value> {
        let mut parts = path.split('.');
        let mut v = graph.get(parts.next()?)?;
        for p in parts {
            v = v.get(p)?;
        }
        Some(v)
    };
    let text = |v: Option<&Value>| -> String {
        match v {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Bool(b)) => if *b { "True" } else { "False" }.into(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        }
    };
    let code = get("status.errorCode").and_then(Value::as_i64);
    headers
        .iter()
        .map(|h| {
            let key = normalize_header(h);
            if key == "multifactor authentication result"
                || key == "multifactor authentication auth method"
            {
                return mfa_columns(graph, key == "multifactor authentication auth method");
            }
            if key == "status" {
                return match code {
                    Some(0) => "Success".into(),
                    Some(_) => "Failure".into(),
                    None => String::new(),
                };
            }
            let Some(target) = COLUMNS.iter().find(|(k, _)| *k == key).map(|(_, t)| *t) else {
                return String::new();
            };
            match target {
                Target::Text(path) | Target::Bool(path) | Target::ErrorCode(path) => {
                    text(get(path))
                }
                Target::Time(path) => text(get(path)).trim_end_matches('Z').to_owned(),
                Target::Word(path, _) => display_word(&text(get(path))),
                Target::Location => {
                    let parts = [
                        "location.city",
                        "location.state",
                        "location.countryOrRegion",
                    ]
                    .map(|p| text(get(p)));
                    if parts.iter().all(String::is_empty) {
                        String::new()
                    } else {
                        parts.join(", ")
                    }
                }
            }
        })
        .collect()
}

/// The portal's MFA columns: the status detail, else the authentication step that did the
/// MFA (its result detail, or its method when `method`).
fn mfa_columns(graph: &Map<String, Value>, method: bool) -> String {
    let str_of = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    if !method {
        if let Some(d) = graph
            .get("status")
            .map(|st| str_of(st, "additionalDetails"))
        {
            if !d.is_empty() {
                return d;
            }
        }
    }
    let steps = graph.get("authenticationDetails").and_then(Value::as_array);
    let step = steps.into_iter().flatten().find(|st| {
        let m = str_of(st, "authenticationMethod");
        graph::shows_mfa(&str_of(st, "authenticationStepResultDetail"))
            || st.get("succeeded") == Some(&Value::Bool(true)) && !graph::is_first_factor_method(&m)
    });
    step.map(|st| {
        str_of(
            st,
            if method {
                "authenticationMethod"
            } else {
                "authenticationStepResultDetail"
            },
        )
    })
    .unwrap_or_default()
}

/// `multiFactorAuthentication` → `Multi factor authentication` (what [`enum_word`] reads back).
fn display_word(word: &str) -> String {
    let mut out = String::with_capacity(word.len() + 4);
    for (i, c) in word.chars().enumerate() {
        if i == 0 {
            out.extend(c.to_uppercase());
        } else if c.is_ascii_uppercase() {
            out.push(' ');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The portal's header: `Request ID` with a `Date (UTC)` (or older `Date`) column.
pub fn matches(headers: &[String]) -> bool {
    let keys: Vec<String> = headers.iter().map(|h| normalize_header(h)).collect();
    let has = |k: &str| keys.iter().any(|x| x == k);
    has("request id") && (has("date (utc)") || has("date"))
}

/// The portal's authentication-details download (`InteractiveSignIns_AuthDetails_…`): one row per
/// authentication step, keyed by `Request ID`, not sign-ins. Told by its step columns
/// (`Authentication method` with `Succeeded`; the exact header set is not documented) or its name.
pub fn is_auth_details(path: &Path, headers: &[String]) -> bool {
    let keys: Vec<String> = headers.iter().map(|h| normalize_header(h)).collect();
    let has = |k: &str| keys.iter().any(|x| x == k);
    has("request id")
        && (has("authentication method") && has("succeeded")
            || file_name(path).contains("authdetails"))
}

/// The note for an authentication-details file, which is passed over.
pub fn auth_details_note(path: &Path) -> String {
    format!(
        "`{}` is the portal's authentication-details download: its steps are not joined to the sign-ins, so MFA evidence comes from the sign-in files' `Multifactor authentication result` column\nhint: the JSON download carries the steps inside each sign-in",
        path.display()
    )
}

/// Reads every row of a portal CSV named `path`.
pub fn read(path: &Path, table: Table) -> Vec<Parsed> {
    let columns: Vec<Option<Target>> = table
        .headers
        .iter()
        .map(|h| {
            let key = normalize_header(h);
            COLUMNS.iter().find(|(k, _)| *k == key).map(|(_, t)| *t)
        })
        .collect();
    let kind = kind_of(path, &table.headers);
    let status = table
        .headers
        .iter()
        .position(|h| normalize_header(h) == "status");
    let headers = &table.headers;
    table
        .rows
        .into_iter()
        .map(|row| Parsed {
            record: row.record,
            line: Some(row.line),
            signin: row
                .fields
                .and_then(|fields| to_graph(headers, &columns, &fields, status, &kind))
                .and_then(|v| {
                    graph::parse_signin(&v, None).map_err(|e| rename(e, headers, &columns))
                }),
        })
        .collect()
}

/// What the file says about interactivity, as Graph keys to add to every row.
fn kind_of(path: &Path, headers: &[String]) -> Vec<(&'static str, Value)> {
    let keys: Vec<String> = headers.iter().map(|h| normalize_header(h)).collect();
    let name = file_name(path);
    // A managed-identity download has the service-principal columns: its name tells them apart.
    if name.contains("managedidentity") {
        vec![("signInEventTypes", Value::from(vec!["managedIdentity"]))]
    } else if keys.iter().any(|k| k == "service principal id")
        && !keys.iter().any(|k| k == "user id")
    {
        vec![("signInEventTypes", Value::from(vec!["servicePrincipal"]))]
    } else if name.contains("noninteractive") {
        vec![("isInteractive", Value::Bool(false))]
    } else if name.contains("interactive") {
        vec![("isInteractive", Value::Bool(true))]
    } else {
        Vec::new()
    }
}

fn to_graph(
    headers: &[String],
    columns: &[Option<Target>],
    fields: &[String],
    status: Option<usize>,
    kind: &[(&'static str, Value)],
) -> Result<Value, FieldError> {
    let mut out = Map::new();
    for ((header, target), raw) in headers.iter().zip(columns).zip(fields) {
        let Some(target) = target else { continue };
        if raw.is_empty() {
            continue;
        }
        for (path, value) in convert(header, *target, raw)? {
            // Doubled columns (`Incoming token type`): the first non-empty one wins.
            if !table::is_set(&out, path) {
                table::set_path(&mut out, path, value);
            }
        }
    }
    // The overall `Status` (Success, Failure, Interrupted) only guards the code: a failure
    // without one would otherwise read as errorCode 0.
    let status_word = status
        .and_then(|i| fields.get(i))
        .map(|w| w.to_ascii_lowercase())
        .unwrap_or_default();
    if !status_word.is_empty()
        && status_word != "success"
        && !table::is_set(&out, "status.errorCode")
    {
        return Err(FieldError {
            field: "Sign-in error code".into(),
            value: "\"\"".into(),
            why: format!(
                "blank on a sign-in whose status is `{status_word}`: it would read as a success"
            ),
        });
    }
    for (k, v) in kind {
        out.insert((*k).to_owned(), v.clone());
    }
    Ok(Value::Object(out))
}

fn convert(
    header: &str,
    target: Target,
    raw: &str,
) -> Result<Vec<(&'static str, Value)>, FieldError> {
    let bad = |why: &str| FieldError {
        field: header.to_owned(),
        value: table::quoted_prefix(raw),
        why: why.to_owned(),
    };
    Ok(match target {
        Target::Text(path) => vec![(path, Value::from(raw))],
        Target::Time(path) => vec![(path, table::time_value(header, raw)?)],
        Target::Word(path, known) => vec![(path, Value::from(enum_word(raw, known)))],
        Target::Bool(path) => {
            let b = match raw.to_ascii_lowercase().as_str() {
                "true" | "yes" => true,
                "false" | "no" => false,
                _ => return Err(bad("expected True/False or Yes/No")),
            };
            vec![(path, Value::Bool(b))]
        }
        Target::ErrorCode(path) => {
            let code: i64 = raw
                .parse()
                .map_err(|_| bad("not an integer error code (`0` is success)"))?;
            vec![(path, Value::from(code))]
        }
        Target::Location => location(raw)
            .ok_or_else(|| bad("expected `City, State, CC` ending in a two-letter country code"))?,
    })
}

/// `Redmond, Washington, US` → city, state and country; parts may be blank (`, , US`).
fn location(raw: &str) -> Option<Vec<(&'static str, Value)>> {
    let parts: Vec<&str> = raw.split(',').map(str::trim).collect();
    let country = *parts.last()?;
    if !(country.is_empty()
        || country.len() == 2 && country.chars().all(|c| c.is_ascii_alphabetic()))
    {
        return None;
    }
    let mut out = vec![("location.countryOrRegion", Value::from(country))];
    let names = ["location.city", "location.state"];
    for (name, part) in names.iter().zip(&parts[..parts.len() - 1]) {
        if !part.is_empty() {
            out.push((name, Value::from(*part)));
        }
    }
    Some(out)
}

/// The Graph enum member a display word stands for, compared without case, spaces or hyphens;
/// an unknown word is kept as written (graph.rs and the report show it).
fn enum_word(raw: &str, known: &[&str]) -> String {
    let squash = |s: &str| -> String {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let key = squash(raw);
    known
        .iter()
        .find(|k| squash(k) == key)
        .map_or_else(|| raw.to_owned(), |k| (*k).to_owned())
}

/// graph.rs names Graph fields; a portal user knows the column headings.
fn rename(mut e: FieldError, headers: &[String], columns: &[Option<Target>]) -> FieldError {
    let field = e.field.clone();
    let hit = headers.iter().zip(columns).find(|(_, t)| {
        let path = match t {
            Some(Target::Text(p) | Target::Time(p) | Target::Word(p, _))
            | Some(Target::Bool(p) | Target::ErrorCode(p)) => *p,
            Some(Target::Location) => "location.countryOrRegion",
            None => return false,
        };
        path == field || path.ends_with(&format!(".{field}"))
    });
    if let Some((header, _)) = hit {
        e.field = format!("{} ({field})", header.trim());
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(header: &str, row: &str) -> Result<crate::signin::SignIn, FieldError> {
        let t = table::parse(&format!("{header}\n{row}\n"));
        read(Path::new("InteractiveSignIns_x.csv"), t)
            .remove(0)
            .signin
    }

    const H: &str = "Date (UTC),Request ID,User ID,Status,Sign-in error code,Location,Authentication requirement,Compliant";

    #[test]
    fn display_words_locations_and_zoneless_dates() {
        let s = one(H, "2026-11-16T08:01:12,r1,u1,Success,0,\"Redmond, Washington, US\",Multifactor authentication,True").unwrap();
        assert_eq!(s.country, "US");
        assert_eq!(s.authentication_requirement, "multiFactorAuthentication");
        assert_eq!(s.device.is_compliant, Some(true));
        assert!(s.is_interactive);
        assert_eq!(s.created_at.to_rfc3339(), "2026-11-16T08:01:12+00:00");
    }

    #[test]
    fn errors_name_the_column() {
        let e = one(H, "2026-11-16T08:01:12,r1,u1,Failure,abc,,,").unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.value.as_str()),
            ("Sign-in error code", "\"abc\"")
        );
        let e = one(H, "2026-11-16T08:01:12,r1,u1,Failure,,,,").unwrap_err();
        assert!(e.why.contains("would read as a success"), "{e:?}");
        let e = one(H, "2026-11-16T08:01:12,r1,u1,Success,0,Nowhere,,").unwrap_err();
        assert_eq!(e.field, "Location");
        let e = one(H, "2026-11-16T08:01:12,r1,,Success,0,,,").unwrap_err();
        assert_eq!(e.field, "User ID (userId)");
    }

    #[test]
    fn enum_words() {
        assert_eq!(
            enum_word("B2B collaboration", &["none", "b2bCollaboration"]),
            "b2bCollaboration"
        );
        assert_eq!(
            enum_word(
                "Single-factor authentication",
                &["singleFactorAuthentication"]
            ),
            "singleFactorAuthentication"
        );
        assert_eq!(enum_word("Something new", &["none"]), "Something new");
    }
}
