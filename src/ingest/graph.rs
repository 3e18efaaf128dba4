//! Graph `signIn` JSON (v1.0 and beta; interactive and non-interactive; the portal's JSON
//! download; and the `properties` of a diagnostic-settings record) into the normalized `SignIn`.
//!
//! Field names and types: entra-semantics.md §6.1; `appliedConditionalAccessPolicies`: §3.
//! A record that lacks what every decision needs (`id`, a time, a subject) or carries a field of
//! the wrong type is a `FieldError`: the caller counts it and goes on.

use serde_json::Value;

use crate::domain::{ClientApp, Platform, RiskLevel, TransferMethod};
use crate::signin::{conditions, AppliedPolicy, Device, EventType, SignIn};
use crate::source::parse_timestamp;

/// Why one record could not be read: the field, its value and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub value: String,
    pub why: String,
}

fn err(field: &str, value: &Value, why: &str) -> FieldError {
    let mut text = value.to_string();
    if text.chars().count() > 80 {
        text = format!("{}…", text.chars().take(80).collect::<String>());
    }
    FieldError {
        field: field.to_owned(),
        value: text,
        why: why.to_owned(),
    }
}

fn get<'a>(v: &'a Value, k: &str) -> Option<&'a Value> {
    v.get(k).filter(|x| !x.is_null())
}

/// A string field; numbers are accepted as text (`autonomousSystemNumber` comes both ways).
fn text(v: &Value, k: &str) -> Result<String, FieldError> {
    match get(v, k) {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.trim().to_owned()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(Value::Bool(b)) => Ok(b.to_string()),
        Some(other) => Err(err(k, other, "expected a string")),
    }
}

fn opt_bool(v: &Value, k: &str) -> Result<Option<bool>, FieldError> {
    match get(v, k) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(other) => Err(err(k, other, "expected true or false")),
    }
}

fn risk(v: &Value, k: &str) -> Result<Option<RiskLevel>, FieldError> {
    match get(v, k) {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("unknownFutureValue") => Ok(None),
        Some(x @ Value::String(s)) => RiskLevel::parse(s)
            .map(Some)
            .ok_or_else(|| err(k, x, "not a risk level (none, low, medium, high, hidden)")),
        Some(other) => Err(err(k, other, "expected a risk level string")),
    }
}

/// Nested objects may arrive as JSON text (Log Analytics); parse them in place.
fn object<'a>(
    v: &'a Value,
    k: &str,
    buf: &'a mut Option<Value>,
) -> Result<Option<&'a Value>, FieldError> {
    match get(v, k) {
        None => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(x @ Value::String(s)) => {
            let parsed: Value = serde_json::from_str(s)
                .map_err(|_| err(k, x, "expected an object or JSON text of one"))?;
            *buf = Some(parsed);
            Ok(buf.as_ref())
        }
        Some(o) => Ok(Some(o)),
    }
}

/// An authentication step or status detail that says MFA was done: "MFA requirement satisfied by
/// claim in the token", "MFA completed in Azure AD", "MFA successfully completed". "First factor
/// requirement satisfied by claim in the token" is not MFA.
fn shows_mfa(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    d.contains("mfa requirement satisfied")
        || d.contains("mfa completed")
        || d.contains("mfa successfully completed")
}

/// Reads one Graph sign-in. `category` is the diagnostic-settings category when the record came
/// in an envelope (it says interactive or not where the record itself may not).
pub fn parse_signin(v: &Value, category: Option<&str>) -> Result<SignIn, FieldError> {
    if !v.is_object() {
        return Err(err("(record)", v, "expected a JSON object"));
    }
    let id = text(v, "id")?;
    if id.is_empty() {
        return Err(err(
            "id",
            get(v, "id").unwrap_or(&Value::Null),
            "missing: every sign-in needs an id",
        ));
    }
    let created_raw =
        get(v, "createdDateTime").ok_or_else(|| err("createdDateTime", &Value::Null, "missing"))?;
    let created_at = created_raw
        .as_str()
        .and_then(parse_timestamp)
        .ok_or_else(|| err("createdDateTime", created_raw, "not an ISO-8601 timestamp"))?;

    let mut s = SignIn {
        id,
        created_at,
        user_id: text(v, "userId")?,
        user_principal_name: text(v, "userPrincipalName")?,
        user_display_name: text(v, "userDisplayName")?,
        user_type: text(v, "userType")?.to_ascii_lowercase(),
        home_tenant_id: text(v, "homeTenantId")?.to_ascii_lowercase(),
        resource_tenant_id: text(v, "resourceTenantId")?.to_ascii_lowercase(),
        cross_tenant_access_type: text(v, "crossTenantAccessType")?,
        app_id: text(v, "appId")?.to_ascii_lowercase(),
        app_display_name: text(v, "appDisplayName")?,
        resource_id: text(v, "resourceId")?.to_ascii_lowercase(),
        resource_display_name: text(v, "resourceDisplayName")?,
        client_app_used: text(v, "clientAppUsed")?,
        user_agent: text(v, "userAgent")?,
        service_principal_id: text(v, "servicePrincipalId")?,
        sign_in_risk: risk(v, "riskLevelDuringSignIn")?,
        risk_level_aggregated: risk(v, "riskLevelAggregated")?,
        authentication_requirement: text(v, "authenticationRequirement")?,
        through_global_secure_access: opt_bool(v, "isThroughGlobalSecureAccess")?,
        session_id: text(v, "sessionId")?,
        correlation_id: text(v, "correlationId")?,
        ..SignIn::default()
    };

    let ip = text(v, "ipAddress")?;
    if !ip.is_empty() {
        s.ip_address = Some(
            ip.parse()
                .map_err(|_| err("ipAddress", &Value::String(ip.clone()), "not an IP address"))?,
        );
    }

    let mut buf = None;
    if let Some(loc) = object(v, "location", &mut buf)? {
        s.country = text(loc, "countryOrRegion")?.to_ascii_uppercase();
    }
    let mut buf = None;
    if let Some(d) = object(v, "deviceDetail", &mut buf)? {
        s.device = Device {
            device_id: text(d, "deviceId")?,
            display_name: text(d, "displayName")?,
            operating_system: text(d, "operatingSystem")?,
            browser: text(d, "browser")?,
            is_compliant: opt_bool(d, "isCompliant")?,
            is_managed: opt_bool(d, "isManaged")?,
            trust_type: text(d, "trustType")?,
        };
    }
    let mut status_mfa = false;
    let mut buf = None;
    if let Some(st) = object(v, "status", &mut buf)? {
        s.error_code = match get(st, "errorCode") {
            None => 0,
            Some(Value::Number(n)) => n.as_i64().ok_or_else(|| {
                err(
                    "status.errorCode",
                    &Value::Number(n.clone()),
                    "not an integer",
                )
            })?,
            Some(x @ Value::String(t)) => t
                .trim()
                .parse()
                .map_err(|_| err("status.errorCode", x, "not an integer"))?,
            Some(other) => return Err(err("status.errorCode", other, "expected an integer")),
        };
        s.failure_reason = text(st, "failureReason")?;
        // The portal's "Multifactor authentication result" column: the same words as the steps.
        status_mfa = shows_mfa(&text(st, "additionalDetails")?);
    }

    // Interactivity: the record's own flag, else its event types, else the envelope category.
    let types: Vec<String> = match get(v, "signInEventTypes") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_ascii_lowercase)
            .collect(),
        Some(Value::String(t)) => vec![t.to_ascii_lowercase()],
        _ => Vec::new(),
    };
    let category = category.unwrap_or("").to_ascii_lowercase();
    s.event_type = if types.iter().any(|t| t == "serviceprincipal")
        || category == "serviceprincipalsigninlogs"
    {
        EventType::ServicePrincipal
    } else if types.iter().any(|t| t == "managedidentity")
        || category == "managedidentitysigninlogs"
    {
        EventType::ManagedIdentity
    } else {
        match opt_bool(v, "isInteractive")? {
            Some(true) => EventType::InteractiveUser,
            Some(false) => EventType::NonInteractiveUser,
            None if types.iter().any(|t| t == "noninteractiveuser")
                || category == "noninteractiveusersigninlogs" =>
            {
                EventType::NonInteractiveUser
            }
            None => EventType::InteractiveUser,
        }
    };
    s.is_interactive = s.event_type == EventType::InteractiveUser;
    if s.user_id.is_empty() && !s.event_type.is_workload() {
        return Err(err(
            "userId",
            get(v, "userId").unwrap_or(&Value::Null),
            "missing: a user sign-in needs a userId",
        ));
    }

    let mut buf = None;
    let audiences = match get(v, "conditionalAccessAudiences") {
        Some(Value::String(t)) if t.trim_start().starts_with(['[', '{']) => {
            object(v, "conditionalAccessAudiences", &mut buf)?
        }
        other => other,
    };
    if let Some(a) = audiences {
        let items: Vec<&Value> = match a {
            Value::Array(items) => items.iter().collect(),
            Value::String(t) if t.trim().is_empty() => Vec::new(),
            other => vec![other],
        };
        for item in items {
            let id = match item {
                Value::String(t) => t.clone(),
                Value::Object(_) => text(item, "applicationId")?,
                other => {
                    return Err(err(
                        "conditionalAccessAudiences",
                        other,
                        "expected ids or {applicationId}",
                    ))
                }
            };
            if !id.is_empty() {
                s.audiences.push(id.to_ascii_lowercase());
            }
        }
    }

    // MFA evidence (design.md "MFA already satisfied").
    let success = s.error_code == 0;
    let mut mfa = status_mfa
        || success
            && s.authentication_requirement
                .eq_ignore_ascii_case("multiFactorAuthentication");
    let mut buf = None;
    let details = match get(v, "authenticationDetails") {
        Some(Value::String(_)) => object(v, "authenticationDetails", &mut buf)?,
        other => other,
    };
    if let Some(Value::Array(steps)) = details {
        for step in steps {
            let detail = text(step, "authenticationStepResultDetail")?;
            let method = text(step, "authenticationMethod")?;
            let ok = opt_bool(step, "succeeded")?.unwrap_or(false);
            if shows_mfa(&detail) {
                mfa = true;
            }
            if ok {
                if !method.is_empty() && !s.authentication_methods.contains(&method) {
                    s.authentication_methods.push(method.clone());
                }
                let m = method.to_ascii_lowercase();
                let first_factor_only = m.is_empty()
                    || m == "password"
                    || m.contains("previously satisfied")
                    || m.contains("seamless sso")
                    || m.contains("password hash")
                    || m.contains("pass-through");
                if !first_factor_only {
                    mfa = true;
                }
            }
        }
    }
    s.mfa_satisfied = mfa;

    let transfer = text(v, "originalTransferMethod")?;
    let protocol = text(v, "authenticationProtocol")?;
    s.transfer_method = TransferMethod::parse(&transfer).or_else(|| {
        if protocol.eq_ignore_ascii_case("deviceCode") {
            Some(TransferMethod::DeviceCodeFlow)
        } else {
            None
        }
    });

    let mut buf = None;
    let refs = match get(v, "authenticationContextClassReferences") {
        Some(Value::String(_)) => object(v, "authenticationContextClassReferences", &mut buf)?,
        other => other,
    };
    match refs {
        None | Some(Value::Array(_)) => {}
        Some(other) => {
            return Err(err(
                "authenticationContextClassReferences",
                other,
                "expected an array",
            ))
        }
    }
    if let Some(Value::Array(refs)) = refs {
        for r in refs {
            let id = match r {
                Value::String(t) => t.clone(),
                _ => text(r, "id")?,
            };
            if !id.is_empty() {
                s.auth_context.push(id.to_ascii_lowercase());
            }
        }
    }

    let mut buf = None;
    let applied = match get(v, "appliedConditionalAccessPolicies") {
        Some(Value::String(_)) => object(v, "appliedConditionalAccessPolicies", &mut buf)?,
        other => other,
    };
    if let Some(list) = applied {
        let Value::Array(items) = list else {
            return Err(err(
                "appliedConditionalAccessPolicies",
                list,
                "expected an array",
            ));
        };
        for p in items {
            let bits = |k: &str| -> Result<Option<u32>, FieldError> {
                match get(p, k) {
                    None => Ok(None),
                    Some(x) => conditions::parse(x)
                        .map(Some)
                        .ok_or_else(|| err(k, x, "not a conditionalAccessConditions value")),
                }
            };
            let grants = match get(p, "enforcedGrantControls") {
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                _ => Vec::new(),
            };
            s.applied_policies.push(AppliedPolicy {
                id: text(p, "id")?.to_ascii_lowercase(),
                display_name: text(p, "displayName")?,
                result: text(p, "result")?,
                enforced_grant_controls: grants,
                conditions_satisfied: bits("conditionsSatisfied")?,
                conditions_not_satisfied: bits("conditionsNotSatisfied")?,
            });
        }
    }

    s.client_app = ClientApp::from_client_app_used(&s.client_app_used);
    s.platform = Platform::detect(&s.device.operating_system, &s.user_agent);
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({"id": "s1", "createdDateTime": "2026-10-01T10:00:00Z", "userId": "U1",
               "clientAppUsed": "Browser", "isInteractive": true, "status": {"errorCode": 0}})
    }

    #[test]
    fn reads_the_essentials() {
        let s = parse_signin(&base(), None).unwrap();
        assert_eq!(s.id, "s1");
        assert!(s.is_interactive);
        assert_eq!(s.client_app, ClientApp::Browser);
        assert!(!s.mfa_satisfied);
    }

    #[test]
    fn mfa_from_token_claim_and_from_requirement() {
        let mut v = base();
        v["authenticationDetails"] = json!([{"authenticationStepResultDetail": "MFA requirement satisfied by claim in the token", "succeeded": false}]);
        assert!(parse_signin(&v, None).unwrap().mfa_satisfied);
        let mut v = base();
        v["authenticationRequirement"] = json!("multiFactorAuthentication");
        assert!(parse_signin(&v, None).unwrap().mfa_satisfied);
        v["status"] = json!({"errorCode": 50074});
        assert!(!parse_signin(&v, None).unwrap().mfa_satisfied);
    }

    #[test]
    fn a_first_factor_claim_is_not_mfa_but_the_status_detail_is() {
        let mut v = base();
        v["authenticationDetails"] = json!([{"authenticationMethod": "Previously satisfied", "succeeded": true,
            "authenticationStepResultDetail": "First factor requirement satisfied by claim in the token"}]);
        assert!(!parse_signin(&v, None).unwrap().mfa_satisfied);
        let mut v = base();
        v["status"] = json!({"errorCode": 0, "additionalDetails": "MFA completed in Azure AD"});
        assert!(parse_signin(&v, None).unwrap().mfa_satisfied);
    }

    #[test]
    fn audiences_and_auth_contexts_as_json_text() {
        let mut v = base();
        v["conditionalAccessAudiences"] = json!("[{\"applicationId\":\"A1\"}]");
        v["authenticationContextClassReferences"] =
            json!("[{\"id\":\"C1\",\"detail\":\"required\"}]");
        let s = parse_signin(&v, None).unwrap();
        assert_eq!(
            (s.audiences, s.auth_context),
            (vec!["a1".to_owned()], vec!["c1".to_owned()])
        );
        v["authenticationContextClassReferences"] = json!(7);
        assert_eq!(
            parse_signin(&v, None).unwrap_err().field,
            "authenticationContextClassReferences"
        );
    }

    #[test]
    fn nested_columns_as_json_text() {
        let mut v = base();
        v["deviceDetail"] = json!("{\"operatingSystem\":\"Ios 18\",\"isCompliant\":true}");
        let s = parse_signin(&v, None).unwrap();
        assert_eq!(s.platform, Platform::Ios);
        assert_eq!(s.device.is_compliant, Some(true));
    }

    #[test]
    fn bad_fields_name_field_value_and_reason() {
        let mut v = base();
        v["isInteractive"] = json!("maybe");
        let e = parse_signin(&v, None).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.value.as_str()),
            ("isInteractive", "\"maybe\"")
        );
        let mut v = base();
        v["createdDateTime"] = json!("yesterday");
        assert_eq!(parse_signin(&v, None).unwrap_err().field, "createdDateTime");
        let mut v = base();
        v["ipAddress"] = json!("999.1.1.1");
        assert_eq!(parse_signin(&v, None).unwrap_err().why, "not an IP address");
    }

    #[test]
    fn applied_policies_with_integer_conditions() {
        let mut v = base();
        v["appliedConditionalAccessPolicies"] = json!([{"id": "P", "result": "success", "conditionsSatisfied": 3, "conditionsNotSatisfied": "clientType"}]);
        let s = parse_signin(&v, None).unwrap();
        assert_eq!(s.applied_policies[0].conditions_satisfied, Some(3));
        assert_eq!(s.applied_policies[0].conditions_not_satisfied, Some(16));
    }
}
