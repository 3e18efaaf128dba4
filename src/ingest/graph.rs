//! Graph `signIn` JSON (v1.0 and beta; interactive and non-interactive; the portal's JSON
//! download; and the `properties` of a diagnostic-settings record) into the normalized `SignIn`.
//!
//! Field names and types: entra-semantics.md §6.1; `appliedConditionalAccessPolicies`: §3.
//! A record that lacks what every decision needs (`id`, a time, a subject) or carries a field of
//! the wrong type is a `FieldError`: the caller counts it and goes on.
//!
//! One typed model ([`Raw`]) reads every shape, with lenient field types for what real exports
//! do (numbers as text, `"true"` as a flag, nested columns as JSON text from Log Analytics).
//! [`parse_signin_text`] deserializes it straight from the record's text, which is the fast path
//! for Graph's own camelCase exports; records in another key case (the PowerShell SDK's
//! PascalCase) or with an error take the general path, [`parse_signin`] on a key-normalized
//! `Value`, which names the failing field by its path and quotes its value.

use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use crate::domain::{RiskLevel, TransferMethod};
use crate::signin::{conditions, lower_sym, syms, AppliedPolicy, Device, EventType, SignIn, Ustr};
use crate::source::{normalize_keys, parse_timestamp};

/// Why one record could not be read: the field, its value and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub value: String,
    pub why: String,
}

fn short(mut text: String) -> String {
    if text.chars().count() > 80 {
        text = format!("{}…", text.chars().take(80).collect::<String>());
    }
    text
}

fn err(field: &str, value: &Value, why: &str) -> FieldError {
    FieldError {
        field: field.to_owned(),
        value: short(value.to_string()),
        why: why.to_owned(),
    }
}

fn err_text(field: &str, value: &str, why: &str) -> FieldError {
    err(field, &Value::String(value.to_owned()), why)
}

// ---------------------------------------------------------------------------------------------
// Lenient field types.

/// A text field, trimmed; numbers and booleans are accepted as text (`autonomousSystemNumber`
/// comes both ways); null is empty.
#[derive(Debug, Default)]
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.trim().to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text, E> {
                if v.trim().len() == v.len() {
                    Ok(Text(v))
                } else {
                    self.visit_str(&v)
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Text, E> {
                Ok(Text::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// A flag: `true`/`false`, or the same words as text (CSV-born exports); null or "" is unknown.
#[derive(Debug, Default)]
struct Flag(Option<bool>);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Flag, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Flag;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("true or false")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Flag, E> {
                Ok(Flag(Some(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Flag, E> {
                let t = v.trim();
                if t.eq_ignore_ascii_case("true") {
                    Ok(Flag(Some(true)))
                } else if t.eq_ignore_ascii_case("false") {
                    Ok(Flag(Some(false)))
                } else if t.is_empty() {
                    Ok(Flag(None))
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }
            fn visit_unit<E: de::Error>(self) -> Result<Flag, E> {
                Ok(Flag(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// An integer, or its digits as text (`status.errorCode` in CSV-born exports); null is 0.
#[derive(Debug, Default)]
struct Int(i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Int, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int, E> {
                Ok(Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int, E> {
                i64::try_from(v)
                    .map(Int)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Int, E> {
                v.trim()
                    .parse()
                    .map(Int)
                    .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Int, E> {
                Ok(Int(0))
            }
        }
        d.deserialize_any(V)
    }
}

/// A nested object (`LIST = false`) or list (`LIST = true`), or the same as JSON text (Log
/// Analytics); null or "" is absent. The other shape is an error (serde would otherwise read a
/// list into a struct by position).
#[derive(Debug)]
struct Nested<T, const LIST: bool>(Option<T>);

type Obj<T> = Nested<T, false>;
type List<T> = Nested<Vec<T>, true>;

impl<T, const LIST: bool> Default for Nested<T, LIST> {
    fn default() -> Self {
        Nested(None)
    }
}

impl<'de, T: DeserializeOwned, const LIST: bool> Deserialize<'de> for Nested<T, LIST> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Nested<T, LIST>, D::Error> {
        struct V<T, const LIST: bool>(std::marker::PhantomData<T>);
        impl<'de, T: DeserializeOwned, const LIST: bool> Visitor<'de> for V<T, LIST> {
            type Value = Nested<T, LIST>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(if LIST {
                    "a list, or JSON text of one"
                } else {
                    "an object, or JSON text of one"
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                if LIST {
                    return Err(de::Error::invalid_type(de::Unexpected::Map, &self));
                }
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|t| Nested(Some(t)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                if !LIST {
                    return Err(de::Error::invalid_type(de::Unexpected::Seq, &self));
                }
                T::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(|t| Nested(Some(t)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                let t = v.trim();
                if t.is_empty() {
                    return Ok(Nested(None));
                }
                if !t.starts_with(if LIST { '[' } else { '{' }) {
                    return Err(E::invalid_value(de::Unexpected::Str(v), &self));
                }
                serde_json::from_str(t)
                    .map(|t| Nested(Some(t)))
                    .map_err(|e| E::custom(format!("JSON text that does not read ({e})")))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Nested(None))
            }
        }
        d.deserialize_any(V::<T, LIST>(std::marker::PhantomData))
    }
}

/// Names: a list of strings or one string (`signInEventTypes`, `enforcedGrantControls`).
#[derive(Debug, Default)]
struct Names(Vec<String>);

impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Names, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Names;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Names, A::Error> {
                let mut out = Vec::new();
                while let Some(Text(t)) = seq.next_element()? {
                    if !t.is_empty() {
                        out.push(t);
                    }
                }
                Ok(Names(out))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Names, E> {
                let t = v.trim();
                Ok(Names(if t.is_empty() {
                    Vec::new()
                } else {
                    vec![t.to_owned()]
                }))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Names, E> {
                Ok(Names::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// Ids: a list of ids or of objects carrying one (`{"applicationId": ..}` for
/// `conditionalAccessAudiences`, `{"id": .., "detail": ..}` for auth context references), one
/// id, or JSON text of the list. Lower-cased; empty entries dropped.
#[derive(Debug, Default)]
struct Ids(Vec<String>);

struct Id(String);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Id, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an id, or an object with `id` or `applicationId`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Id, E> {
                Ok(Id(v.trim().to_ascii_lowercase()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Id, A::Error> {
                let mut id = String::new();
                while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if k == "id" || k == "applicationId" {
                        id = map.next_value::<Text>()?.0.to_ascii_lowercase();
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Id(id))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Ids {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Ids, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ids;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of ids or of objects with an id")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ids, A::Error> {
                let mut out = Vec::new();
                while let Some(Id(id)) = seq.next_element()? {
                    if !id.is_empty() {
                        out.push(id);
                    }
                }
                Ok(Ids(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Ids, A::Error> {
                let Id(id) = Id::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Ids(if id.is_empty() { Vec::new() } else { vec![id] }))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Ids, E> {
                let t = v.trim();
                if t.starts_with(['[', '{']) {
                    return serde_json::from_str(t)
                        .map_err(|e| E::custom(format!("JSON text that does not read ({e})")));
                }
                Ok(Ids(if t.is_empty() {
                    Vec::new()
                } else {
                    vec![t.to_ascii_lowercase()]
                }))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Ids, E> {
                Ok(Ids::default())
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------------------------------
// The record as exports carry it.

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Raw {
    id: Text,
    created_date_time: Text,
    user_id: Text,
    user_principal_name: Text,
    user_display_name: Text,
    user_type: Text,
    home_tenant_id: Text,
    resource_tenant_id: Text,
    cross_tenant_access_type: Text,
    app_id: Text,
    app_display_name: Text,
    resource_id: Text,
    resource_display_name: Text,
    client_app_used: Text,
    user_agent: Text,
    service_principal_id: Text,
    risk_level_during_sign_in: Text,
    risk_level_aggregated: Text,
    authentication_requirement: Text,
    is_through_global_secure_access: Flag,
    session_id: Text,
    correlation_id: Text,
    ip_address: Text,
    location: Obj<Location>,
    device_detail: Obj<DeviceDetail>,
    status: Obj<Status>,
    sign_in_event_types: Names,
    is_interactive: Flag,
    conditional_access_audiences: Ids,
    authentication_details: List<Step>,
    original_transfer_method: Text,
    authentication_protocol: Text,
    authentication_context_class_references: Ids,
    applied_conditional_access_policies: List<Applied>,
    /// Diagnostic-settings envelope: the category, and the sign-in in `properties`.
    category: Text,
    properties: Option<Box<Raw>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Location {
    country_or_region: Text,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct DeviceDetail {
    device_id: Text,
    display_name: Text,
    operating_system: Text,
    browser: Text,
    is_compliant: Flag,
    is_managed: Flag,
    trust_type: Text,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Status {
    error_code: Int,
    failure_reason: Text,
    additional_details: Text,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Step {
    authentication_method: Text,
    succeeded: Flag,
    authentication_step_result_detail: Text,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Applied {
    id: Text,
    display_name: Text,
    result: Text,
    enforced_grant_controls: Names,
    conditions_satisfied: Option<Value>,
    conditions_not_satisfied: Option<Value>,
}

impl Raw {
    /// Whether the record is in Graph's own key case (else it takes the normalizing path).
    fn is_graph_shaped(&self) -> bool {
        !self.id.0.is_empty() || !self.created_date_time.0.is_empty() || self.properties.is_some()
    }
}

// ---------------------------------------------------------------------------------------------
// Entry points.

/// The fast path (see the module docs): the record read straight from its text when it is in
/// Graph's own key case and reads cleanly; `None` sends it to the general path.
pub fn parse_graph_text(text: &str, category: Option<&str>) -> Option<Result<SignIn, FieldError>> {
    match serde_json::from_str::<Raw>(text) {
        Ok(raw) => raw.is_graph_shaped().then(|| build(raw, category)),
        Err(_) => {
            // A diagnostic-settings envelope whose own fields clash with the sign-in's (its
            // `location` is the Azure region, a string): read the sign-in in `properties` alone.
            let e = serde_json::from_str::<Envelope>(text).ok()?;
            let inner = e.properties?;
            let category = if e.category.0.is_empty() {
                category
            } else {
                Some(e.category.0.as_str())
            };
            inner.is_graph_shaped().then(|| build(*inner, category))
        }
    }
}

/// Only what ca-replay reads of a diagnostic-settings envelope.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Envelope {
    category: Text,
    properties: Option<Box<Raw>>,
}

/// Reads one record from its JSON text: the fast path, else the general one.
pub fn parse_signin_text(text: &str, category: Option<&str>) -> Result<SignIn, FieldError> {
    if let Some(done) = parse_graph_text(text, category) {
        return done;
    }
    parse_signin(&parse_value(text)?, category)
}

/// A record's text as a key-normalized `Value`, or why it is not JSON.
pub fn parse_value(text: &str) -> Result<Value, FieldError> {
    let value: Value = serde_json::from_str(text).map_err(|e| FieldError {
        field: "(record)".into(),
        value: short(text.trim().to_owned()),
        why: format!("not valid JSON: {e}"),
    })?;
    Ok(normalize_keys(value))
}

/// Reads one Graph sign-in from a `Value` with camelCase keys (see `source::normalize_keys`).
/// `category` is the diagnostic-settings category when the record came in an envelope (it says
/// interactive or not where the record itself may not).
pub fn parse_signin(v: &Value, category: Option<&str>) -> Result<SignIn, FieldError> {
    if !v.is_object() {
        return Err(err("(record)", v, "expected a JSON object"));
    }
    // A diagnostic-settings envelope: the sign-in is in `properties`; the envelope's own fields
    // (its `location` is the Azure region) are not the sign-in's.
    if let Some(inner @ Value::Object(_)) = v.get("properties") {
        let own = v.get("category").and_then(Value::as_str);
        return parse_signin(inner, own.or(category));
    }
    let raw: Raw = serde_path_to_error::deserialize(v).map_err(|e| {
        let field = e.path().to_string();
        let value = e
            .path()
            .iter()
            .try_fold(v, |at, segment| match segment {
                serde_path_to_error::Segment::Map { key } => at.get(key),
                serde_path_to_error::Segment::Seq { index } => at.get(index),
                _ => None,
            })
            .map(|x| short(x.to_string()))
            .unwrap_or_default();
        FieldError {
            field,
            value,
            why: e.into_inner().to_string(),
        }
    })?;
    build(raw, category)
}

/// An authentication step or status detail that says MFA was done: "MFA requirement satisfied by
/// claim in the token", "MFA completed in Azure AD", "MFA successfully completed". "First factor
/// requirement satisfied by claim in the token" is not MFA.
pub fn shows_mfa(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    d.contains("mfa requirement satisfied")
        || d.contains("mfa completed")
        || d.contains("mfa successfully completed")
}

/// A succeeded step with this method shows only the first factor (a password, single sign-on,
/// or a claim carried in the token, whose detail says which factor).
pub fn is_first_factor_method(method: &str) -> bool {
    let m = method.to_ascii_lowercase();
    m.is_empty()
        || m == "password"
        || m.contains("previously satisfied")
        || m.contains("seamless sso")
        || m.contains("password hash")
        || m.contains("pass-through")
}

fn risk(field: &str, t: &Text) -> Result<Option<RiskLevel>, FieldError> {
    let s = t.0.as_str();
    if s.is_empty() || s.eq_ignore_ascii_case("unknownFutureValue") {
        return Ok(None);
    }
    RiskLevel::parse(s).map(Some).ok_or_else(|| {
        err_text(
            field,
            s,
            "not a risk level (none, low, medium, high, hidden)",
        )
    })
}

fn lower(t: Text) -> Ustr {
    lower_sym(&t.0)
}

/// The record into the normalized sign-in: the rules of design.md ("Sign-ins").
fn build(raw: Raw, category: Option<&str>) -> Result<SignIn, FieldError> {
    if let Some(inner) = raw.properties {
        let category = if raw.category.0.is_empty() {
            category
        } else {
            Some(raw.category.0.as_str())
        };
        return build(*inner, category);
    }
    if raw.id.0.is_empty() {
        return Err(err_text("id", "", "missing: every sign-in needs an id"));
    }
    if raw.created_date_time.0.is_empty() {
        return Err(err("createdDateTime", &Value::Null, "missing"));
    }
    let created_at = parse_timestamp(&raw.created_date_time.0).ok_or_else(|| {
        err_text(
            "createdDateTime",
            &raw.created_date_time.0,
            "not an ISO-8601 timestamp",
        )
    })?;
    let sign_in_risk = risk("riskLevelDuringSignIn", &raw.risk_level_during_sign_in)?;
    let risk_level_aggregated = risk("riskLevelAggregated", &raw.risk_level_aggregated)?;
    let ip_address = match raw.ip_address.0.as_str() {
        "" => None,
        ip => Some(
            ip.parse()
                .map_err(|_| err_text("ipAddress", ip, "not an IP address"))?,
        ),
    };
    let mut s = SignIn {
        id: raw.id.0,
        created_at,
        user_id: Ustr::from(raw.user_id.0.as_str()),
        user_principal_name: Ustr::from(raw.user_principal_name.0.as_str()),
        user_display_name: Ustr::from(raw.user_display_name.0.as_str()),
        user_type: lower(raw.user_type),
        home_tenant_id: lower(raw.home_tenant_id),
        resource_tenant_id: lower(raw.resource_tenant_id),
        cross_tenant_access_type: Ustr::from(raw.cross_tenant_access_type.0.as_str()),
        app_id: lower(raw.app_id),
        app_display_name: Ustr::from(raw.app_display_name.0.as_str()),
        resource_id: lower(raw.resource_id),
        resource_display_name: Ustr::from(raw.resource_display_name.0.as_str()),
        audiences: syms(&raw.conditional_access_audiences.0),
        ip_address,
        client_app_used: Ustr::from(raw.client_app_used.0.as_str()),
        user_agent: Ustr::from(raw.user_agent.0.as_str()),
        service_principal_id: Ustr::from(raw.service_principal_id.0.as_str()),
        sign_in_risk,
        risk_level_aggregated,
        authentication_requirement: Ustr::from(raw.authentication_requirement.0.as_str()),
        through_global_secure_access: raw.is_through_global_secure_access.0,
        session_id: raw.session_id.0,
        correlation_id: raw.correlation_id.0,
        auth_context: syms(&raw.authentication_context_class_references.0),
        ..SignIn::default()
    };
    if let Some(loc) = raw.location.0 {
        s.country = crate::signin::upper_sym(&loc.country_or_region.0);
    }
    if let Some(d) = raw.device_detail.0 {
        s.device = Device {
            device_id: Ustr::from(d.device_id.0.as_str()),
            display_name: Ustr::from(d.display_name.0.as_str()),
            operating_system: Ustr::from(d.operating_system.0.as_str()),
            browser: Ustr::from(d.browser.0.as_str()),
            is_compliant: d.is_compliant.0,
            is_managed: d.is_managed.0,
            trust_type: Ustr::from(d.trust_type.0.as_str()),
        };
    }
    let mut status_mfa = false;
    if let Some(st) = raw.status.0 {
        s.error_code = st.error_code.0;
        s.failure_reason = Ustr::from(st.failure_reason.0.as_str());
        // The portal's "Multifactor authentication result" column: the same words as the steps.
        status_mfa = shows_mfa(&st.additional_details.0);
    }

    // Interactivity: the record's own flag, else its event types, else the envelope category.
    let has_type = |t: &str| {
        raw.sign_in_event_types
            .0
            .iter()
            .any(|x| x.eq_ignore_ascii_case(t))
    };
    let category = category.unwrap_or("");
    let is_category = |c: &str| category.eq_ignore_ascii_case(c);
    s.event_type = if has_type("servicePrincipal") || is_category("ServicePrincipalSignInLogs") {
        EventType::ServicePrincipal
    } else if has_type("managedIdentity") || is_category("ManagedIdentitySignInLogs") {
        EventType::ManagedIdentity
    } else {
        match raw.is_interactive.0 {
            Some(true) => EventType::InteractiveUser,
            Some(false) => EventType::NonInteractiveUser,
            None if has_type("nonInteractiveUser")
                || is_category("NonInteractiveUserSignInLogs") =>
            {
                EventType::NonInteractiveUser
            }
            None => EventType::InteractiveUser,
        }
    };
    s.is_interactive = s.event_type == EventType::InteractiveUser;
    if s.user_id.is_empty() && !s.event_type.is_workload() {
        return Err(err_text(
            "userId",
            "",
            "missing: a user sign-in needs a userId",
        ));
    }

    // MFA evidence (design.md "MFA already satisfied").
    let success = s.error_code == 0;
    let mut mfa = status_mfa
        || success
            && s.authentication_requirement
                .eq_ignore_ascii_case("multiFactorAuthentication");
    for step in raw.authentication_details.0.unwrap_or_default() {
        let detail = step.authentication_step_result_detail.0;
        let method = step.authentication_method.0;
        if shows_mfa(&detail) {
            mfa = true;
        }
        if step.succeeded.0 == Some(true) {
            if !is_first_factor_method(&method) {
                mfa = true;
            }
            if !method.is_empty() && !s.authentication_methods.iter().any(|m| *m == method) {
                s.authentication_methods.push(Ustr::from(&method));
            }
        }
    }
    s.mfa_satisfied = mfa;

    s.transfer_method = TransferMethod::parse(&raw.original_transfer_method.0).or_else(|| {
        raw.authentication_protocol
            .0
            .eq_ignore_ascii_case("deviceCode")
            .then_some(TransferMethod::DeviceCodeFlow)
    });

    for (i, p) in raw
        .applied_conditional_access_policies
        .0
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let bits = |k: &str, x: Option<Value>| -> Result<Option<u32>, FieldError> {
            match x {
                None => Ok(None),
                Some(x) => conditions::parse(&x).map(Some).ok_or_else(|| {
                    err(
                        &format!("appliedConditionalAccessPolicies[{i}].{k}"),
                        &x,
                        "not a conditionalAccessConditions value",
                    )
                }),
            }
        };
        s.applied_policies.push(AppliedPolicy {
            conditions_satisfied: bits("conditionsSatisfied", p.conditions_satisfied)?,
            conditions_not_satisfied: bits("conditionsNotSatisfied", p.conditions_not_satisfied)?,
            id: lower(p.id),
            display_name: Ustr::from(&p.display_name.0),
            result: Ustr::from(&p.result.0),
            enforced_grant_controls: syms(&p.enforced_grant_controls.0),
        });
    }

    s.derive();
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ClientApp, Platform};
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
            (vec![Ustr::from("a1")], vec![Ustr::from("c1")])
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
