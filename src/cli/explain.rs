//! `ca-replay explain`: the full trace of one sign-in against every policy. The sign-ins
//! stream by as in `run` (memory stays bounded, whatever the size of the log).

use std::collections::HashMap;

use super::{ExitCode, ExplainArgs};
use crate::ingest::{self, IngestOptions};
use crate::policy::BuildOptions;
use crate::replay;
use crate::report::explain;
use crate::tenant::Tenant;

pub fn explain(a: &ExplainArgs) -> anyhow::Result<ExitCode> {
    let options = BuildOptions {
        allow_unsupported: a.allow_unsupported,
    };
    let tenant = Tenant::load(&a.tenant, options)?;
    let paths = super::run::signin_paths(&tenant, &a.signins)?;
    // The sign-ins stream by: kept are the candidates and the MFA registration clocks.
    let files = ingest::signin_files(&paths)?;
    let (mut candidates, mut clocks, mut read) = (Vec::new(), HashMap::new(), 0);
    ingest::stream(&files, IngestOptions::default(), &|_, _| {}, &mut |batch| {
        read += batch.len();
        clocks = replay::merge_clocks(
            std::mem::take(&mut clocks),
            replay::registration_clocks(&tenant, &batch),
        );
        candidates.extend(
            batch
                .into_iter()
                .filter(|s| explain::candidate(s, &a.signin)),
        );
        Ok(())
    })?;
    let s = explain::find_among(&candidates, &a.signin, read)?;
    print!("{}", explain::text_with_clocks(&tenant, &clocks, s));
    Ok(ExitCode::Ok)
}
