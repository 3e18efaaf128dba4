//! What the report writers need of the sign-ins, gathered batch by batch as the replay goes,
//! so that a run never holds its whole log: the detail files (written as they come), the
//! affected users, the coverage, exclusion and legacy-migration checks, and the break-glass
//! accounts' own sign-ins (few by nature; the break-glass check reads them at the end).
//!
//! In: each batch of sign-ins with the replay's `BatchOut` and the registration clocks so far.
//! Out: [`Collected`], which `report::write` renders. With a pseudonymizer, the detail files
//! and affected users are made from pseudonymized copies of each batch, and the detail files
//! are kept in memory for the leak check; the checks see the original sign-ins (they look users
//! up in the directory), and their output is pseudonymized with the summary.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::affected::{Affected, AffectedAcc};
use super::details::{DetailsError, DetailsWriter};
use super::{html, Prepared, WriteError};
use crate::checks::coverage::CoverageAcc;
use crate::checks::migration::MigrationAcc;
use crate::checks::{breakglass, exclusions, migration};
use crate::directory::UserIdx;
use crate::privacy::Pseudonymizer;
use crate::replay::{BatchOut, Replay};
use crate::signin::SignIn;
use crate::tenant::Tenant;

/// Where the detail files go while the run goes.
enum Details {
    /// Files in a staging folder, moved into the report folder at the end.
    Files {
        writer: DetailsWriter<BufWriter<File>>,
        csv: PathBuf,
        parquet: PathBuf,
    },
    Memory(DetailsWriter<Vec<u8>>),
}

/// The detail files, finished.
pub enum DetailFiles {
    Staged { csv: PathBuf, parquet: PathBuf },
    Memory { csv: Vec<u8>, parquet: Vec<u8> },
}

pub struct Collector<'t> {
    tenant: &'t Tenant,
    details: Details,
    affected: AffectedAcc,
    coverage: CoverageAcc,
    signed_in: HashSet<UserIdx>,
    any_signins: bool,
    break_glass: BTreeSet<UserIdx>,
    break_glass_signins: Vec<SignIn>,
    migration: MigrationAcc,
    /// With a pseudonymizer: the policies' names, pseudonymized.
    policy_names: Option<Vec<String>>,
}

fn details_error(e: DetailsError) -> WriteError {
    match e {
        DetailsError::Privacy(p) => WriteError::Privacy(p),
        other => WriteError::Io(std::io::Error::other(other.to_string())),
    }
}

/// A detail file in the staging folder.
fn staged(staging: &Path, name: &str) -> std::io::Result<(PathBuf, BufWriter<File>)> {
    let path = staging.join(format!(".{name}.tmp-{}", std::process::id()));
    let f = File::create(&path)?;
    Ok((path, BufWriter::with_capacity(1 << 20, f)))
}

impl<'t> Collector<'t> {
    /// Detail files written into `staging` (a folder on the same file system as the report
    /// folder) as batches come.
    pub fn to_files(tenant: &'t Tenant, staging: &Path) -> Result<Collector<'t>, WriteError> {
        std::fs::create_dir_all(staging)?;
        let (csv, csv_out) = staged(staging, "details.csv")?;
        let (parquet, parquet_out) = staged(staging, "details.parquet")?;
        let writer = DetailsWriter::new(csv_out, parquet_out).map_err(details_error)?;
        Ok(Collector::with(
            tenant,
            Details::Files {
                writer,
                csv,
                parquet,
            },
        ))
    }

    /// Detail files kept in memory.
    pub fn in_memory(tenant: &'t Tenant) -> Result<Collector<'t>, WriteError> {
        let writer = DetailsWriter::new(Vec::new(), Vec::new()).map_err(details_error)?;
        Ok(Collector::with(tenant, Details::Memory(writer)))
    }

    fn with(tenant: &'t Tenant, details: Details) -> Collector<'t> {
        Collector {
            tenant,
            details,
            affected: AffectedAcc::new(tenant.set.policies.len()),
            coverage: CoverageAcc::default(),
            signed_in: HashSet::new(),
            any_signins: false,
            break_glass: breakglass::configured_accounts(tenant),
            break_glass_signins: Vec::new(),
            migration: MigrationAcc::new(tenant),
            policy_names: None,
        }
    }

    /// Adds a batch the replay has been through (`out` aligned with `batch`); `clocks`: the
    /// MFA registration clocks the replay used for it.
    pub fn add(
        &mut self,
        batch: &[SignIn],
        out: &BatchOut,
        clocks: &HashMap<String, i64>,
        mut pz: Option<&mut Pseudonymizer>,
    ) -> Result<(), WriteError> {
        let tenant = self.tenant;
        self.any_signins |= !batch.is_empty();
        self.coverage
            .add(tenant, batch, &out.protection, &out.dir_users);
        self.signed_in.extend(out.dir_users.iter().flatten());
        if !self.break_glass.is_empty() {
            let accounts = &self.break_glass;
            self.break_glass_signins.extend(
                batch
                    .iter()
                    .zip(&out.dir_users)
                    .filter(|(_, u)| u.is_some_and(|u| accounts.contains(&u)))
                    .map(|(s, _)| s.clone()),
            );
        }
        self.migration.add(tenant, clocks, batch);
        let shown: std::borrow::Cow<[SignIn]> = match pz.as_deref_mut() {
            None => batch.into(),
            Some(pz) => {
                if self.policy_names.is_none() {
                    let names = tenant
                        .set
                        .policies
                        .iter()
                        .map(|p| pz.text(&p.display_name).map(|t| t.into_owned()))
                        .collect::<Result<Vec<_>, _>>()?;
                    self.policy_names = Some(names);
                }
                let mut copy = batch.to_vec();
                for s in &mut copy {
                    pz.signin(s)?;
                }
                copy.into()
            }
        };
        self.affected.add(&shown, &out.details);
        let names = self.policy_names.as_deref();
        let writer = match &mut self.details {
            Details::Files { writer, .. } => writer.add(tenant, names, &shown, &out.details, pz),
            Details::Memory(writer) => writer.add(tenant, names, &shown, &out.details, pz),
        };
        writer.map_err(details_error)
    }

    /// Detail rows written so far.
    pub fn detail_rows(&self) -> u64 {
        match &self.details {
            Details::Files { writer, .. } => writer.rows(),
            Details::Memory(writer) => writer.rows(),
        }
    }

    /// Finishes the detail files and the checks, for the replay the batches went through.
    pub fn finish(self, replay: &Replay) -> Result<Collected, WriteError> {
        let tenant = self.tenant;
        let details = match self.details {
            Details::Files {
                writer,
                csv,
                parquet,
            } => {
                let (a, b) = writer.finish().map_err(details_error)?;
                for w in [a, b] {
                    let f = w.into_inner().map_err(|e| WriteError::Io(e.into_error()))?;
                    f.sync_all()?;
                }
                DetailFiles::Staged { csv, parquet }
            }
            Details::Memory(writer) => {
                let (csv, parquet) = writer.finish().map_err(details_error)?;
                DetailFiles::Memory { csv, parquet }
            }
        };
        let value = |v: Result<Value, serde_json::Error>| v.unwrap_or(Value::Null);
        let mut checks = json!({});
        checks["exclusions"] = value(serde_json::to_value(exclusions::check_with(
            tenant,
            &self.signed_in,
            self.any_signins,
            replay,
        )));
        checks["coverage"] = value(serde_json::to_value(self.coverage.finish(tenant)));
        checks["legacy_migration"] = value(serde_json::to_value(migration::check_with(
            tenant,
            &replay.registration_clocks,
            self.migration,
        )));
        let prepared = Prepared {
            break_glass: breakglass::check(
                tenant,
                &self.break_glass_signins,
                &replay.registration_clocks,
            ),
            checks,
            samples: html::samples(tenant, replay),
        };
        Ok(Collected {
            prepared,
            affected: self.affected.finish(),
            details,
        })
    }
}

/// What [`Collector::finish`] gives the writers.
pub struct Collected {
    pub prepared: Prepared,
    pub affected: Affected,
    pub details: DetailFiles,
}
