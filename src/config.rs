//! `ca-replay.toml`: break-glass accounts, legacy MFA trusted IPs, app-bundle additions, CI gates,
//! pseudonymization (design.md). Every key is optional; an unknown key is an error, so a typo is never ignored.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub break_glass: BreakGlass,
    pub locations: Locations,
    /// `Office365` / `MicrosoftAdminPortals`: app ids added to the built-in tables.
    pub app_bundles: BTreeMap<String, Vec<String>>,
    pub gates: Gates,
    pub privacy: Privacy,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BreakGlass {
    pub users: Vec<String>,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Locations {
    pub mfa_trusted_ips: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Gates {
    /// Users the change would newly block.
    pub max_new_blocked_users: Option<u64>,
    /// Users the change would newly prompt for MFA.
    pub max_new_prompted_users: Option<u64>,
    /// Users the change would newly send to register for MFA.
    pub max_new_registering_users: Option<u64>,
    /// Any break-glass error (an account could be locked out, or none is configured) fails.
    pub break_glass: Option<bool>,
    /// The least share (0 to 1) of (sign-in, policy) pairs on which ca-replay must agree with
    /// the verdicts Entra recorded (self-validation).
    pub min_agreement: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Privacy {
    /// Every `run` pseudonymizes its reports, as with `--pseudonymize` (see `crate::privacy`).
    pub pseudonymize: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    #[error("`{path}`: {message}")]
    Invalid {
        path: std::path::PathBuf,
        message: String,
    },
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = crate::source::read_text(path)?;
        let config: Config = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
            path: path.to_path_buf(),
            message: e.message().to_owned(),
        })?;
        for k in config.app_bundles.keys() {
            if k != "Office365" && k != "MicrosoftAdminPortals" {
                return Err(ConfigError::Invalid {
                    path: path.to_path_buf(),
                    message: format!(
                        "[app_bundles] `{k}` is not a bundle (Office365, MicrosoftAdminPortals)"
                    ),
                });
            }
        }
        if let Some(a) = config.gates.min_agreement {
            if !(0.0..=1.0).contains(&a) {
                return Err(ConfigError::Invalid {
                    path: path.to_path_buf(),
                    message: format!(
                        "[gates] min_agreement = {a}: a share between 0 and 1 (0.99 is 99%)"
                    ),
                });
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_design_example_and_rejects_typos() {
        let c: Config = toml::from_str(
            "[break_glass]\nusers = [\"bg1@contoso.onmicrosoft.com\"]\ngroups = []\n[locations]\nmfa_trusted_ips = [\"198.51.100.0/24\"]\n[app_bundles]\nOffice365 = [\"00000002-0000-0ff1-ce00-000000000000\"]\nMicrosoftAdminPortals = []\n[gates]\nmax_new_blocked_users = 0\nmax_new_prompted_users = 100\nbreak_glass = true\n",
        )
        .unwrap();
        assert_eq!(c.gates.max_new_prompted_users, Some(100));
        assert!(!c.privacy.pseudonymize);
        assert!(toml::from_str::<Config>("[gates]\nmax_new_blocked = 0\n").is_err());
        let p: Config = toml::from_str("[privacy]\npseudonymize = true\n").unwrap();
        assert!(p.privacy.pseudonymize);
        assert!(toml::from_str::<Config>("[privacy]\npseudonymise = true\n").is_err());
    }
}
