//! The Graph `conditionalAccessPolicy` as exported (v1.0 and beta), field for field.
//!
//! In: one JSON object whose keys were normalized by `source::normalize_keys`. Out: a typed tree
//! that keeps Graph's names and raw string values; `compile` turns the strings into enums and
//! reports what it does not know. Every level keeps the keys it does not model in `other`, so
//! nothing in an export goes unseen (entra-semantics.md §1).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A string list that also accepts `null` (unset) and a bare string (PowerShell unwraps
/// one-element arrays when it serializes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StrList(pub Vec<String>);

impl<'de> Deserialize<'de> for StrList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<Option<String>>),
        }
        Ok(match Option::<Raw>::deserialize(d)? {
            None => StrList(Vec::new()),
            Some(Raw::One(s)) => StrList(vec![s]),
            Some(Raw::Many(v)) => StrList(v.into_iter().flatten().collect()),
        })
    }
}

impl StrList {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn iter(&self) -> std::slice::Iter<'_, String> {
        self.0.iter()
    }
}

/// A scalar that exports write as a string, a number or a bool (`"True"`, `true`, `4`, `"4"`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scalar(pub Option<Value>);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Scalar(Option::<Value>::deserialize(d)?))
    }
}

impl Scalar {
    pub fn as_str(&self) -> Option<String> {
        match &self.0 {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(Value::Bool(b)) => Some(b.to_string()),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match &self.0 {
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }
    pub fn as_i64(&self) -> Option<i64> {
        match &self.0 {
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

pub type Other = BTreeMap<String, Value>;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Policy {
    pub id: Scalar,
    pub display_name: Scalar,
    pub state: Scalar,
    pub created_date_time: Scalar,
    pub modified_date_time: Scalar,
    pub deleted_date_time: Scalar,
    pub template_id: Scalar,
    pub description: Scalar,
    pub partial_enablement_strategy: Option<Value>,
    pub conditions: Option<Conditions>,
    pub grant_controls: Option<GrantControls>,
    pub session_controls: Option<SessionControls>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Conditions {
    pub users: Option<Users>,
    pub client_applications: Option<ClientApplications>,
    pub applications: Option<Applications>,
    pub client_app_types: StrList,
    pub platforms: Option<Platforms>,
    pub locations: Option<Locations>,
    pub devices: Option<Devices>,
    pub sign_in_risk_levels: StrList,
    pub user_risk_levels: StrList,
    pub service_principal_risk_levels: StrList,
    /// Flags enum serialized as one comma-separated string.
    pub insider_risk_levels: StrList,
    pub authentication_flows: Option<AuthenticationFlows>,
    /// Beta, deprecated; not evaluated (reported as unsupported when set).
    pub times: Option<Value>,
    /// Beta, deprecated; not evaluated (reported as unsupported when set).
    pub device_states: Option<Value>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Users {
    pub include_users: StrList,
    pub exclude_users: StrList,
    pub include_groups: StrList,
    pub exclude_groups: StrList,
    pub include_roles: StrList,
    pub exclude_roles: StrList,
    pub include_guests_or_external_users: Option<GuestsOrExternalUsers>,
    pub exclude_guests_or_external_users: Option<GuestsOrExternalUsers>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GuestsOrExternalUsers {
    /// Flags enum serialized as one comma-separated string.
    pub guest_or_external_user_types: StrList,
    pub external_tenants: Option<ExternalTenants>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExternalTenants {
    pub membership_kind: Scalar,
    pub members: StrList,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClientApplications {
    pub include_service_principals: StrList,
    pub exclude_service_principals: StrList,
    pub service_principal_filter: Option<Filter>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Applications {
    pub include_applications: StrList,
    pub exclude_applications: StrList,
    pub include_user_actions: StrList,
    pub include_authentication_context_class_references: StrList,
    pub application_filter: Option<Filter>,
    pub network_access: Option<Value>,
    pub global_secure_access: Option<Value>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Filter {
    pub mode: Scalar,
    pub rule: Scalar,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Platforms {
    pub include_platforms: StrList,
    pub exclude_platforms: StrList,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Locations {
    pub include_locations: StrList,
    pub exclude_locations: StrList,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Devices {
    pub device_filter: Option<Filter>,
    /// Older SDK model fields (deprecated device states and lists); unsupported when set.
    pub include_devices: StrList,
    pub exclude_devices: StrList,
    pub include_device_states: StrList,
    pub exclude_device_states: StrList,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AuthenticationFlows {
    /// Flags enum serialized as one comma-separated string.
    pub transfer_methods: StrList,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GrantControls {
    pub operator: Scalar,
    pub built_in_controls: StrList,
    pub custom_authentication_factors: StrList,
    pub terms_of_use: StrList,
    pub authentication_strength: Option<AuthenticationStrength>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AuthenticationStrength {
    pub id: Scalar,
    pub display_name: Scalar,
    pub policy_type: Scalar,
    pub allowed_combinations: StrList,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SessionControls {
    pub sign_in_frequency: Option<SignInFrequency>,
    pub persistent_browser: Option<Value>,
    pub cloud_app_security: Option<Value>,
    pub application_enforced_restrictions: Option<Value>,
    pub disable_resilience_defaults: Option<Value>,
    pub continuous_access_evaluation: Option<Value>,
    pub secure_sign_in_session: Option<Value>,
    pub network_access_security: Option<Value>,
    pub global_secure_access_filtering_profile: Option<Value>,
    pub block_sensitive_actions: Option<Value>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SignInFrequency {
    pub is_enabled: Scalar,
    #[serde(rename = "type")]
    pub kind: Scalar,
    pub value: Scalar,
    pub authentication_type: Scalar,
    pub frequency_interval: Scalar,
    #[serde(flatten)]
    pub other: Other,
}
