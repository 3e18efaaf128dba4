//! `ca-replay explain`: the full trace of one sign-in against every policy.

use super::{ExitCode, ExplainArgs};
use crate::ingest::{self, IngestOptions};
use crate::policy::BuildOptions;
use crate::report::explain;
use crate::tenant::Tenant;

pub fn explain(a: &ExplainArgs) -> anyhow::Result<ExitCode> {
    let options = BuildOptions {
        allow_unsupported: a.allow_unsupported,
    };
    let tenant = Tenant::load(&a.tenant, options)?;
    let mut paths = Vec::new();
    if tenant.signins_dir().exists() {
        paths.push(tenant.signins_dir());
    }
    paths.extend(a.signins.iter().cloned());
    let (signins, _) = ingest::read_signins(&paths, IngestOptions::default())?;
    let s = explain::find(&signins, &a.signin)?;
    print!("{}", explain::text(&tenant, &signins, s));
    Ok(ExitCode::Ok)
}
