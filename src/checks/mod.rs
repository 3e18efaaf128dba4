//! Checks that protect the tenant (issue: break-glass, exclusions, CI gates). Each check reads
//! the tenant and the replay and returns findings the reports print.
//!
//! - `breakglass`: can a policy lock an emergency account out?
//! - `exclusions`: what each exclude entry of each policy did, and what is wrong with it.
//! - `coverage`: sign-ins and users no policy of the proposed set protects with MFA or block.
//! - `migration`: the legacy Identity Protection risk policies against their Conditional
//!   Access replacements.

pub mod breakglass;
pub mod coverage;
pub mod diff;
pub mod exclusions;
pub mod gates;
pub mod migration;

use crate::directory::UserIdx;
use crate::signin::SignIn;
use crate::tenant::Tenant;

/// A user for a report: the user principal name, else the object id.
pub(crate) fn user_label(tenant: &Tenant, u: UserIdx) -> String {
    let user = tenant.dir.user(u);
    if user.user_principal_name.is_empty() {
        user.id.clone()
    } else {
        user.user_principal_name.clone()
    }
}

/// A sign-in as the user would make it: interactive, internal, nothing else known. What the
/// static checks hand to `engine::users_check`.
pub(crate) fn probe(tenant: &Tenant, u: UserIdx) -> SignIn {
    let user = tenant.dir.user(u);
    SignIn {
        id: format!("probe-{}", user.id),
        user_id: user.id.clone(),
        user_principal_name: user.user_principal_name.clone(),
        user_type: user.user_type.clone(),
        is_interactive: true,
        ..SignIn::default()
    }
}

/// The users a static check looks at: those listed in `users.json`, or every user the tenant
/// knows of (from groups, role assignments, policies) when it has no `users.json`.
pub(crate) fn directory_users(tenant: &Tenant) -> impl Iterator<Item = UserIdx> + '_ {
    let all = !tenant.dir.provided.users;
    (0..tenant.dir.users.len() as UserIdx).filter(move |&u| all || tenant.dir.user(u).listed)
}

/// How much a finding matters, for CI gates: `error` (a protection is not in effect),
/// `warning` (likely a mistake), `info` (worth knowing). Sorted errors first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}
