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
    let paths = super::run::signin_paths(&tenant, &a.signins)?;
    let (signins, _) = ingest::read_signins(&paths, IngestOptions::default())?;
    let s = explain::find(&signins, &a.signin)?;
    print!("{}", explain::text(&tenant, &signins, s));
    Ok(ExitCode::Ok)
}
