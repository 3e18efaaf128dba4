//! `ca-replay generate`.

use std::time::Instant;

use chrono::{TimeZone, Utc};

use super::{ExitCode, GenerateArgs};
use crate::generate::{self, Options};

pub fn generate(a: &GenerateArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let start = Utc.from_utc_datetime(&a.start.and_time(chrono::NaiveTime::MIN));
    let summary = generate::generate(
        &a.out,
        &Options {
            users: a.users,
            days: a.days,
            seed: a.seed,
            signins: a.signins,
            start,
            gzip: a.gzip,
            format: match a.format {
                super::SigninFormatArg::Graph => generate::Format::Graph,
                super::SigninFormatArg::Diagnostic => generate::Format::Diagnostic,
                super::SigninFormatArg::Parquet => generate::Format::Parquet,
                super::SigninFormatArg::Arrow => generate::Format::Arrow,
                super::SigninFormatArg::LogAnalytics => generate::Format::LogAnalytics,
                super::SigninFormatArg::PortalCsv => generate::Format::PortalCsv,
            },
        },
    )?;
    eprintln!(
        "wrote a tenant of {} users and {} sign-ins over {} days to {} ({} files, {:.1} MB) in {:.2}s",
        summary.users,
        summary.signins,
        a.days,
        a.out.display(),
        summary.files,
        summary.bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::Ok)
}
