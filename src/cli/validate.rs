//! `ca-replay validate`: every policy finding of a tenant, one per line.

use super::{ExitCode, ValidateArgs};
use crate::policy::BuildOptions;
use crate::tenant::Tenant;

pub fn validate(a: &ValidateArgs) -> anyhow::Result<ExitCode> {
    let options = BuildOptions {
        allow_unsupported: a.allow_unsupported,
    };
    let tenant = Tenant::load_unchecked(&a.tenant, options)?;
    for f in &tenant.set.findings {
        println!("{f}");
    }
    for p in &tenant.dir.problems {
        println!("warning: {p}");
    }
    let blocking = tenant.set.blocking_findings(options).len();
    eprintln!(
        "{} policies, {} findings ({} blocking)",
        tenant.set.policies.len(),
        tenant.set.findings.len(),
        blocking
    );
    Ok(if blocking > 0 {
        ExitCode::Gate
    } else {
        ExitCode::Ok
    })
}
