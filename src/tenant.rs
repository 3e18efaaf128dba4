//! A tenant folder (design.md "Inputs"): the directory, the policies (Conditional Access and
//! legacy Identity Protection), `ca-replay.toml`, and where its sign-ins are.

use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError};
use crate::directory::{Directory, IpTable};
use crate::engine::AppTables;
use crate::policy::{self, identity_protection, BuildOptions, Finding, PolicySet};
use crate::source::SourceError;

pub struct Tenant {
    pub root: PathBuf,
    pub dir: Directory,
    pub set: PolicySet,
    pub config: Config,
    pub apps: AppTables,
}

#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error("`{0}` has no `policies/` folder\nhint: a tenant folder holds policies/, signins/ and optional directory files (see README)")]
    NoPolicies(PathBuf),
    #[error("the policies folder `{0}` does not exist")]
    PoliciesMissing(PathBuf),
    #[error("`{0}` is not a folder")]
    NotAFolder(PathBuf),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{count} policy finding(s) stop the run:\n{list}\nhint: fix the policies; `--allow-unsupported` accepts unsupported fields as warnings")]
    Findings { count: usize, list: String },
}

impl Tenant {
    /// What the engine reads besides the sign-in: this tenant's directory, policy set and app
    /// tables, with the MFA registration clocks of the run.
    pub fn env<'a>(
        &'a self,
        registration_clocks: &'a std::collections::HashMap<String, i64>,
    ) -> crate::engine::Env<'a> {
        crate::engine::Env {
            dir: &self.dir,
            set: &self.set,
            apps: &self.apps,
            registration_clocks,
        }
    }

    /// Loads a tenant folder. Blocking findings (errors, and unsupported fields unless allowed)
    /// are an error listing every one of them.
    pub fn load(root: &Path, options: BuildOptions) -> Result<Tenant, TenantError> {
        Tenant::checked(Tenant::load_unchecked(root, options)?, options)
    }

    /// Loads a tenant folder with the Conditional Access policies of another folder (or file)
    /// instead of its own `policies/`: the directory, `identityProtection.json` and
    /// `ca-replay.toml` still come from `root`. `diff` loads base and head this way.
    pub fn load_with_policies(
        root: &Path,
        policies: &Path,
        options: BuildOptions,
    ) -> Result<Tenant, TenantError> {
        if !policies.exists() {
            return Err(TenantError::PoliciesMissing(policies.to_path_buf()));
        }
        Tenant::checked(Tenant::load_parts(root, policies, options)?, options)
    }

    fn checked(t: Tenant, options: BuildOptions) -> Result<Tenant, TenantError> {
        let blocking = t.set.blocking_findings(options);
        if !blocking.is_empty() {
            let list: Vec<String> = blocking.iter().map(|f| format!("  {f}")).collect();
            return Err(TenantError::Findings {
                count: blocking.len(),
                list: list.join("\n"),
            });
        }
        Ok(t)
    }

    /// Loads without stopping at findings (for `validate`).
    pub fn load_unchecked(root: &Path, options: BuildOptions) -> Result<Tenant, TenantError> {
        let policies = root.join("policies");
        if root.is_dir() && !policies.exists() {
            return Err(TenantError::NoPolicies(root.to_path_buf()));
        }
        Tenant::load_parts(root, &policies, options)
    }

    fn load_parts(
        root: &Path,
        policies: &Path,
        options: BuildOptions,
    ) -> Result<Tenant, TenantError> {
        if !root.is_dir() {
            return Err(TenantError::NotAFolder(root.to_path_buf()));
        }
        let config_path = root.join("ca-replay.toml");
        let config = if config_path.is_file() {
            Config::load(&config_path)?
        } else {
            Config::default()
        };
        let mut dir = Directory::load_tenant(root)?;
        dir.mfa_trusted_ips =
            IpTable::from_cidrs(config.locations.mfa_trusted_ips.iter().map(String::as_str))
                .map_err(|m| ConfigError::Invalid {
                    path: config_path.clone(),
                    message: format!("[locations] mfa_trusted_ips: {m}"),
                })?;
        if !dir.mfa_trusted_ips.v6.is_empty() {
            return Err(ConfigError::Invalid {
                path: config_path,
                message: "[locations] mfa_trusted_ips: the legacy MFA service's trusted IPs are IPv4 only (entra-semantics.md §2.2)".into(),
            }
            .into());
        }
        let (loaded, mut findings) = policy::load_policies(policies)?;
        let mut legacy = Vec::new();
        for name in ["identityProtection.json", "identityProtection.json.gz"] {
            let p = root.join(name);
            if p.is_file() {
                let (l, f) = identity_protection::load(&p)?;
                legacy.extend(l);
                findings.extend(f);
            }
        }
        let mut set = PolicySet::build(&loaded, legacy, &mut dir, options);
        set.findings.extend(findings);
        set.findings.sort();
        let mut apps = AppTables::default();
        for (bundle, ids) in &config.app_bundles {
            let table = if bundle == "Office365" {
                &mut apps.office365
            } else {
                &mut apps.admin_portals
            };
            table.extend(ids.iter().map(|i| i.trim().to_ascii_lowercase()));
        }
        Ok(Tenant {
            root: root.to_path_buf(),
            dir,
            set,
            config,
            apps,
        })
    }

    /// Non-blocking findings, for reports.
    pub fn warnings(&self, options: BuildOptions) -> Vec<&Finding> {
        let blocking = self.set.blocking_findings(options);
        self.set
            .findings
            .iter()
            .filter(|f| !blocking.contains(f))
            .collect()
    }

    pub fn signins_dir(&self) -> PathBuf {
        self.root.join("signins")
    }
}
