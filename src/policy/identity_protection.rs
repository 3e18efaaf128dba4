//! The legacy Identity Protection policies (sign-in risk, user risk, MFA registration), read from
//! `identityProtection.json` (design.md gives the schema; no Graph API exposes them) and compiled
//! into the same form as Conditional Access policies, so they can be candidates too.
//!
//! Thresholds are cumulative ("medium" = medium and above) where Conditional Access lists levels
//! (entra-semantics.md §4.1). Policy ids: `idp-signin-risk`, `idp-user-risk`, `idp-mfa-registration`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::compile::{compile_users, Validator};
use super::compiled::*;
use super::model::{self, Scalar, StrList};
use super::{Finding, Severity};
use crate::directory::Directory;
use crate::domain::{PolicyState, RiskLevel};
use crate::source::{self, SourceError};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LegacyRaw {
    pub state: Scalar,
    pub include_users: StrList,
    pub exclude_users: StrList,
    pub include_groups: StrList,
    pub exclude_groups: StrList,
    pub risk_level: Scalar,
    pub action: Scalar,
    pub start_date_time: Scalar,
    #[serde(flatten)]
    pub other: model::Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyKind {
    SignInRisk,
    UserRisk,
    MfaRegistration,
}

impl LegacyKind {
    pub fn id(self) -> &'static str {
        match self {
            LegacyKind::SignInRisk => "idp-signin-risk",
            LegacyKind::UserRisk => "idp-user-risk",
            LegacyKind::MfaRegistration => "idp-mfa-registration",
        }
    }
    fn key(self) -> &'static str {
        match self {
            LegacyKind::SignInRisk => "signInRiskPolicy",
            LegacyKind::UserRisk => "userRiskPolicy",
            LegacyKind::MfaRegistration => "mfaRegistrationPolicy",
        }
    }
    fn name(self) -> &'static str {
        match self {
            LegacyKind::SignInRisk => "Identity Protection: sign-in risk policy",
            LegacyKind::UserRisk => "Identity Protection: user risk policy",
            LegacyKind::MfaRegistration => "Identity Protection: MFA registration policy",
        }
    }
}

/// One legacy policy as read.
#[derive(Debug, Clone)]
pub struct LegacyPolicy {
    pub kind: LegacyKind,
    pub raw: LegacyRaw,
    pub users: model::Users,
    pub file: PathBuf,
}

/// Reads `identityProtection.json`. Unknown top-level keys are reported as findings.
pub fn load(path: &Path) -> Result<(Vec<LegacyPolicy>, Vec<Finding>), SourceError> {
    let records = source::read_json_records(path)?;
    let mut out = Vec::new();
    let mut findings = Vec::new();
    let finding = |pointer: &str, message: String| Finding {
        severity: Severity::Error,
        file: path.to_path_buf(),
        policy: "identityProtection".into(),
        pointer: pointer.to_owned(),
        message,
    };
    let Some(obj) = records.first().and_then(|r| r.value.as_object()) else {
        findings.push(finding("", "expected one JSON object".into()));
        return Ok((out, findings));
    };
    for k in obj.keys() {
        if ![
            LegacyKind::SignInRisk,
            LegacyKind::UserRisk,
            LegacyKind::MfaRegistration,
        ]
        .iter()
        .any(|l| l.key() == k)
        {
            findings.push(finding(
                &format!("/{k}"),
                format!("unknown key `{k}` (expected signInRiskPolicy, userRiskPolicy, mfaRegistrationPolicy)"),
            ));
        }
    }
    for kind in [
        LegacyKind::SignInRisk,
        LegacyKind::UserRisk,
        LegacyKind::MfaRegistration,
    ] {
        let Some(v) = obj.get(kind.key()).filter(|v| !v.is_null()) else {
            continue;
        };
        match serde_json::from_value::<LegacyRaw>(v.clone()) {
            Ok(raw) => {
                let users = model::Users {
                    include_users: raw.include_users.clone(),
                    exclude_users: raw.exclude_users.clone(),
                    include_groups: raw.include_groups.clone(),
                    exclude_groups: raw.exclude_groups.clone(),
                    ..model::Users::default()
                };
                out.push(LegacyPolicy {
                    kind,
                    raw,
                    users,
                    file: path.to_path_buf(),
                });
            }
            Err(e) => findings.push(finding(
                &format!("/{}", kind.key()),
                format!("wrong JSON type: {e}"),
            )),
        }
    }
    Ok((out, findings))
}

fn threshold(level: RiskLevel) -> Mask {
    let mut m = Mask::default();
    for l in [RiskLevel::Low, RiskLevel::Medium, RiskLevel::High] {
        if l >= level {
            m = m.with(l as usize);
        }
    }
    m
}

impl LegacyPolicy {
    pub fn compile(
        self,
        dir: &Directory,
        symbols: &mut Symbols,
    ) -> (Option<CompiledPolicy>, Vec<Finding>) {
        let pointer = format!("/{}", self.kind.key());
        let origin = Origin {
            file: self.file.clone(),
            pointer: pointer.clone(),
        };
        let name = self.kind.name();
        let mut v = Validator {
            policy: name,
            origin: &origin,
            findings: Vec::new(),
        };
        for (k, val) in &self.raw.other {
            if !source::is_empty(val) {
                v.findings.push(Finding {
                    severity: Severity::Error,
                    file: self.file.clone(),
                    policy: name.into(),
                    pointer: format!("{pointer}/{k}"),
                    message: format!("unknown field `{k}`"),
                });
            }
        }
        let mut err = |p: &str, m: String| {
            v.findings.push(Finding {
                severity: Severity::Error,
                file: self.file.clone(),
                policy: name.into(),
                pointer: format!("{pointer}{p}"),
                message: m,
            })
        };
        let state = match self.raw.state.as_str() {
            None => PolicyState::Disabled,
            Some(s) => PolicyState::parse(&s).unwrap_or_else(|| {
                err("/state", format!("unknown state `{s}`"));
                PolicyState::Disabled
            }),
        };
        let mut grant = Grant::default();
        let (mut sign_in_risk, mut user_risk, mut registration_start) = (None, None, None);
        let kind = match self.kind {
            LegacyKind::SignInRisk | LegacyKind::UserRisk => {
                let level = self.raw.risk_level.as_str().unwrap_or_default();
                let mask = match RiskLevel::parse(&level) {
                    Some(l @ (RiskLevel::Low | RiskLevel::Medium | RiskLevel::High)) => {
                        threshold(l)
                    }
                    _ => {
                        err(
                            "/riskLevel",
                            format!("`riskLevel` `{level}` is not low, medium or high"),
                        );
                        threshold(RiskLevel::High)
                    }
                };
                let action = self.raw.action.as_str().unwrap_or_default();
                match (self.kind, action.as_str()) {
                    (_, "block") => grant.block = true,
                    (LegacyKind::SignInRisk, "requireMfa") => grant.controls.push(Control::Mfa),
                    (LegacyKind::UserRisk, "requirePasswordChange") => {
                        grant.operator = Operator::And;
                        grant.controls = vec![Control::Mfa, Control::PasswordChange];
                    }
                    (_, other) => err(
                        "/action",
                        format!(
                            "`action` `{other}` is not valid here (sign-in risk: block, requireMfa; user risk: block, requirePasswordChange)"
                        ),
                    ),
                }
                if self.kind == LegacyKind::SignInRisk {
                    sign_in_risk = Some(mask);
                    PolicyKind::LegacySignInRisk
                } else {
                    user_risk = Some(mask);
                    PolicyKind::LegacyUserRisk
                }
            }
            LegacyKind::MfaRegistration => {
                let start = self.raw.start_date_time.as_str();
                registration_start = match start.as_deref().map(source::parse_timestamp) {
                    Some(Some(t)) => Some(t),
                    Some(None) => {
                        err(
                            "/startDateTime",
                            format!(
                                "`startDateTime` `{}` is not a timestamp",
                                start.unwrap_or_default()
                            ),
                        );
                        None
                    }
                    None => Some(chrono::DateTime::<chrono::Utc>::MIN_UTC),
                };
                PolicyKind::LegacyMfaRegistration
            }
        };
        let mut users_v = Validator {
            policy: name,
            origin: &Origin {
                file: self.file.clone(),
                pointer: String::new(),
            },
            findings: Vec::new(),
        };
        let mut users = compile_users(&self.users, dir, symbols, &mut users_v);
        // Re-point the user findings and entries from `/conditions/users/x` to `/<policy>/x`.
        for f in users_v.findings.iter_mut() {
            f.pointer = f.pointer.replace("/conditions/users", &pointer);
        }
        for e in users.include.iter_mut().chain(users.exclude.iter_mut()) {
            e.pointer = e.pointer.replace("/conditions/users", &pointer);
        }
        if users.include.is_empty() && !users.include_none {
            // Legacy policies default to all users.
            users.include.push(Entry {
                pointer: format!("{pointer}/includeUsers"),
                raw: "All".into(),
                target: UserRef::All,
            });
        }
        v.findings.extend(users_v.findings);
        let findings = v.findings;
        let policy = CompiledPolicy {
            id: self.kind.id().to_owned(),
            display_name: name.to_owned(),
            state,
            kind,
            origin,
            users: Some(users),
            workload: None,
            apps: AppsCondition {
                include: vec![Entry {
                    pointer: String::new(),
                    raw: "All".into(),
                    target: AppRef::All,
                }],
                ..AppsCondition::default()
            },
            client_app_types: None,
            platforms: None,
            locations: None,
            sign_in_risk,
            user_risk,
            service_principal_risk: None,
            insider_risk: None,
            device_filter: None,
            transfer_methods: None,
            grant,
            session: Session::default(),
            registration_start,
            accepted_unsupported: Vec::new(),
        };
        (Some(policy), findings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_cumulative() {
        let m = threshold(RiskLevel::Medium);
        assert!(!m.has(RiskLevel::Low as usize));
        assert!(m.has(RiskLevel::Medium as usize) && m.has(RiskLevel::High as usize));
        assert!(threshold(RiskLevel::Low).has(RiskLevel::Low as usize));
    }
}
