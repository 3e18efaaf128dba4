//! Graph `signIn` JSON for generated sign-ins: the fields ca-replay reads (entra-semantics.md
//! §6.1), in Graph's names and shapes, written without building a JSON tree (10M records must
//! take seconds). `ingest::graph::parse_signin` reads them back to the same `SignIn` (tested).

use crate::signin::{EventType, SignIn};

fn key(out: &mut Vec<u8>, first: &mut bool, k: &str) {
    if !*first {
        out.push(b',');
    }
    *first = false;
    out.push(b'"');
    out.extend_from_slice(k.as_bytes());
    out.extend_from_slice(b"\":");
}

/// A JSON string with escapes. Runs of plain bytes are copied whole (most values have none).
fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    // Branch-free test first (it vectorizes): most values need no escape at all.
    let needs_escape = bytes.iter().fold(false, |acc, &b| {
        acc | (b == b'"') | (b == b'\\') | (b < 0x20)
    });
    if !needs_escape {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut plain = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[plain..i]);
        if escape.is_empty() {
            out.extend_from_slice(format!("\\u{b:04x}").as_bytes());
        } else {
            out.extend_from_slice(escape);
        }
        plain = i + 1;
    }
    out.extend_from_slice(&bytes[plain..]);
    out.push(b'"');
}

struct Obj<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Obj<'a> {
    fn new(out: &'a mut Vec<u8>) -> Obj<'a> {
        out.push(b'{');
        Obj { out, first: true }
    }
    fn str(&mut self, k: &str, v: &str) -> &mut Self {
        key(self.out, &mut self.first, k);
        string(self.out, v);
        self
    }
    fn bool(&mut self, k: &str, v: bool) -> &mut Self {
        key(self.out, &mut self.first, k);
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        self
    }
    fn opt_bool(&mut self, k: &str, v: Option<bool>) -> &mut Self {
        match v {
            Some(b) => self.bool(k, b),
            None => {
                key(self.out, &mut self.first, k);
                self.out.extend_from_slice(b"null");
                self
            }
        }
    }
    fn int(&mut self, k: &str, v: i64) -> &mut Self {
        use std::io::Write;
        key(self.out, &mut self.first, k);
        // Writing into a Vec cannot fail.
        let _ = write!(self.out, "{v}");
        self
    }
    fn raw(&mut self, k: &str, f: impl FnOnce(&mut Vec<u8>)) -> &mut Self {
        key(self.out, &mut self.first, k);
        f(self.out);
        self
    }
    fn end(&mut self) {
        self.out.push(b'}');
    }
}

fn array<T>(out: &mut Vec<u8>, items: &[T], mut f: impl FnMut(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        f(out, x);
    }
    out.push(b']');
}

/// Appends one sign-in as a Graph `signIn` object (no trailing newline).
pub fn signin_json(s: &SignIn, out: &mut Vec<u8>) {
    signin_body(s, out, false);
}

/// Appends one sign-in as a diagnostic-settings record (entra-semantics.md §6.5): the envelope
/// fields, and the sign-in in `properties`, where `userType` is capitalized as those exports do.
pub fn diagnostic_json(s: &SignIn, out: &mut Vec<u8>) {
    let category = match s.event_type {
        EventType::InteractiveUser => "SignInLogs",
        EventType::NonInteractiveUser => "NonInteractiveUserSignInLogs",
        EventType::ServicePrincipal => "ServicePrincipalSignInLogs",
        EventType::ManagedIdentity => "ManagedIdentitySignInLogs",
    };
    let mut o = Obj::new(out);
    o.str(
        "time",
        &s.created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
    .str(
        "resourceId",
        &format!(
            "/tenants/{}/providers/Microsoft.aadiam",
            s.resource_tenant_id
        ),
    )
    .str("operationName", "Sign-in activity")
    .str("operationVersion", "1.0")
    .str("category", category)
    .str("tenantId", &s.resource_tenant_id)
    .str("resultType", &s.error_code.to_string())
    .str("resultSignature", "None")
    .str("resultDescription", &s.failure_reason)
    .int("durationMs", 0)
    .str(
        "callerIpAddress",
        &s.ip_address.map(|ip| ip.to_string()).unwrap_or_default(),
    )
    .str("correlationId", &s.correlation_id)
    .str("identity", &s.user_display_name)
    .int("Level", 4)
    .raw("properties", |b| signin_body(s, b, true))
    .end();
}

/// Appends one sign-in as a Log Analytics row of its table (`SigninLogs`,
/// `AADNonInteractiveUserSignInLogs`, …) as a query export writes it: PascalCase columns, the
/// dynamic ones as JSON text (see `ingest::log_analytics::row_from_graph`).
pub fn log_analytics_json(s: &SignIn, out: &mut Vec<u8>) {
    let table = match s.event_type {
        EventType::InteractiveUser => "SigninLogs",
        EventType::NonInteractiveUser => "AADNonInteractiveUserSignInLogs",
        EventType::ServicePrincipal => "AADServicePrincipalSignInLogs",
        EventType::ManagedIdentity => "AADManagedIdentitySignInLogs",
    };
    let mut graph = Vec::with_capacity(4096);
    signin_body(s, &mut graph, false);
    let graph: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&graph).expect("signin_body writes a JSON object");
    let row = crate::ingest::log_analytics::row_from_graph(&graph, table);
    serde_json::to_writer(&mut *out, &row).expect("writing JSON to a Vec cannot fail");
}

/// The header line of a portal CSV download with `headers`: UTF-8 with a BOM, CRLF, as the
/// portal writes it.
pub fn portal_csv_header(headers: &[&str]) -> Vec<u8> {
    let mut out = b"\xEF\xBB\xBF".to_vec();
    csv_line(headers.iter().copied(), &mut out);
    out
}

/// Appends one sign-in as a row of a portal CSV download with `headers` (see
/// `ingest::portal_csv::row_from_graph`).
pub fn portal_csv_row(s: &SignIn, headers: &[&str], out: &mut Vec<u8>) {
    let mut graph = Vec::with_capacity(4096);
    signin_body(s, &mut graph, false);
    let graph: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&graph).expect("signin_body writes a JSON object");
    let row = crate::ingest::portal_csv::row_from_graph(&graph, headers);
    csv_line(row.iter().map(String::as_str), out);
}

/// One CSV record, quoted where needed, ended by CRLF.
fn csv_line<'a>(cells: impl Iterator<Item = &'a str>, out: &mut Vec<u8>) {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(&mut *out);
    w.write_record(cells)
        .expect("writing CSV to a Vec cannot fail");
    w.flush().expect("writing CSV to a Vec cannot fail");
}

fn capitalized(word: &str) -> String {
    let mut c = word.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn signin_body(s: &SignIn, out: &mut Vec<u8>, diagnostic: bool) {
    let user_type = if diagnostic {
        capitalized(&s.user_type)
    } else {
        s.user_type.clone()
    };
    let mut o = Obj::new(out);
    o.str("id", &s.id)
        .str(
            "createdDateTime",
            &s.created_at
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        )
        .str("userDisplayName", &s.user_display_name)
        .str("userPrincipalName", &s.user_principal_name)
        .str("userId", &s.user_id)
        .str("userType", &user_type)
        .str("homeTenantId", &s.home_tenant_id)
        .str("resourceTenantId", &s.resource_tenant_id)
        .str("crossTenantAccessType", &s.cross_tenant_access_type)
        .str("appId", &s.app_id)
        .str("appDisplayName", &s.app_display_name)
        .str("resourceId", &s.resource_id)
        .str("resourceDisplayName", &s.resource_display_name)
        .str("clientAppUsed", &s.client_app_used)
        .str("userAgent", &s.user_agent)
        .str("correlationId", &s.correlation_id)
        .bool("isInteractive", s.is_interactive)
        .raw("signInEventTypes", |b| {
            array(b, &[s.event_type], |b, t: &EventType| string(b, t.as_str()))
        });
    if !s.service_principal_id.is_empty() {
        o.str("servicePrincipalId", &s.service_principal_id);
    }
    if !s.session_id.is_empty() {
        o.str("sessionId", &s.session_id);
    }
    if let Some(g) = s.through_global_secure_access {
        o.bool("isThroughGlobalSecureAccess", g);
    }
    if let Some(t) = s.transfer_method {
        o.str("originalTransferMethod", t.as_str());
    }
    if !s.audiences.is_empty() {
        o.raw("conditionalAccessAudiences", |b| {
            array(b, &s.audiences, |b, a: &String| {
                Obj::new(b).str("applicationId", a).end();
            })
        });
    }
    match s.ip_address {
        Some(ip) => o.str("ipAddress", &ip.to_string()),
        None => o.str("ipAddress", ""),
    };
    o.raw("location", |b| {
        Obj::new(b).str("countryOrRegion", &s.country).end();
    });
    let d = &s.device;
    o.raw("deviceDetail", |b| {
        Obj::new(b)
            .str("deviceId", &d.device_id)
            .str("displayName", &d.display_name)
            .str("operatingSystem", &d.operating_system)
            .str("browser", &d.browser)
            .opt_bool("isCompliant", d.is_compliant)
            .opt_bool("isManaged", d.is_managed)
            .str("trustType", &d.trust_type)
            .end();
    });
    if let Some(r) = s.sign_in_risk {
        o.str("riskLevelDuringSignIn", r.as_str());
    }
    if let Some(r) = s.risk_level_aggregated {
        o.str("riskLevelAggregated", r.as_str());
    }
    // Steps: the successful methods, each with the detail that says what it proved; MFA that
    // no step or requirement shows (the portal's "MFA completed in Azure AD") goes in the
    // status, as the reader expects (`ingest::graph`).
    let first_factor = crate::ingest::graph::is_first_factor_method;
    let shown = s
        .authentication_methods
        .iter()
        .any(|m| !first_factor(m) || (s.mfa_satisfied && m == "Previously satisfied"))
        || (s.error_code == 0
            && s.authentication_requirement
                .eq_ignore_ascii_case("multiFactorAuthentication"));
    o.raw("status", |b| {
        let mut st = Obj::new(b);
        st.int("errorCode", s.error_code)
            .str("failureReason", &s.failure_reason);
        if s.mfa_satisfied && !shown {
            st.str("additionalDetails", "MFA completed in Azure AD");
        }
        st.end();
    })
    .str("authenticationRequirement", &s.authentication_requirement);
    o.raw("authenticationDetails", |b| {
        array(b, &s.authentication_methods, |b, m: &String| {
            let detail = if m == "Previously satisfied" {
                if s.mfa_satisfied {
                    "MFA requirement satisfied by claim in the token"
                } else {
                    "First factor requirement satisfied by claim in the token"
                }
            } else if first_factor(m) {
                "Correct password"
            } else {
                "MFA successfully completed"
            };
            Obj::new(b)
                .str("authenticationMethod", m)
                .bool("succeeded", true)
                .str("authenticationStepResultDetail", detail)
                .end();
        })
    });
    if !s.auth_context.is_empty() {
        o.raw("authenticationContextClassReferences", |b| {
            array(b, &s.auth_context, |b, c: &String| {
                Obj::new(b).str("id", c).str("detail", "required").end();
            })
        });
    }
    let status = if s.applied_policies.is_empty() {
        "notApplied"
    } else if s.applied_policies.iter().any(|p| p.result == "failure") {
        "failure"
    } else if s.applied_policies.iter().any(|p| p.result == "success") {
        "success"
    } else {
        "notApplied"
    };
    o.str("conditionalAccessStatus", status);
    o.raw("appliedConditionalAccessPolicies", |b| {
        array(b, &s.applied_policies, |b, p| {
            let mut o = Obj::new(b);
            o.str("id", &p.id)
                .str("displayName", &p.display_name)
                .str("result", &p.result)
                .raw("enforcedGrantControls", |b| {
                    array(b, &p.enforced_grant_controls, |b, g: &String| string(b, g))
                })
                .raw("enforcedSessionControls", |b| b.extend_from_slice(b"[]"));
            if let Some(c) = p.conditions_satisfied {
                o.int("conditionsSatisfied", i64::from(c));
            }
            if let Some(c) = p.conditions_not_satisfied {
                o.int("conditionsNotSatisfied", i64::from(c));
            }
            o.end();
        })
    });
    o.end();
}

#[cfg(test)]
mod tests {
    #[test]
    fn strings_are_escaped_as_json() {
        for s in [
            "plain",
            "quote \" and \\ back",
            "tab\tnew\nline\r",
            "\u{1}\u{1f}",
            "é ✓ 𝄞",
            "",
        ] {
            let mut out = Vec::new();
            super::string(&mut out, s);
            let back: String = serde_json::from_slice(&out).unwrap();
            assert_eq!(back, s);
        }
    }
}
