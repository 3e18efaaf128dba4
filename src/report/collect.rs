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
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender};
use std::thread::JoinHandle;

use serde_json::{json, Value};

use super::affected::{Affected, AffectedAcc, AggregateError};
use super::details::{CsvWhen, DetailsError, DetailsWriter, DetailsWritten, PolicyTexts};
use super::{html, Prepared, WriteError};
use crate::checks::coverage::CoverageAcc;
use crate::checks::migration::MigrationAcc;
use crate::checks::{breakglass, exclusions, migration};
use crate::directory::UserIdx;
use crate::privacy::Pseudonymizer;
use crate::replay::{BatchOut, DetailRow, Replay};
use crate::signin::SignIn;
use crate::tenant::Tenant;

/// A batch's sign-ins (pseudonymized when the run is) and detail rows, for the detail files
/// and the affected users.
type Job = (Vec<SignIn>, Vec<DetailRow>);

/// What the detail rows make: the detail files and the affected users.
struct Rows<W: Write + Send> {
    writer: DetailsWriter<W>,
    affected: AffectedAcc,
}

impl<W: Write + Send> Rows<W> {
    fn add(
        &mut self,
        policies: &PolicyTexts,
        batch: &[SignIn],
        rows: &[DetailRow],
        pz: Option<&mut Pseudonymizer>,
    ) -> Result<(), DetailsError> {
        // The aggregation and the writing take about as long as each other: side by side, on
        // a thread each, they keep pace with the replay.
        let (affected, writer) = (&mut self.affected, &mut self.writer);
        std::thread::scope(|scope| {
            let aggregated = std::thread::Builder::new()
                .name("ca-replay-affected".into())
                .spawn_scoped(scope, || affected.add(batch, rows));
            let written = writer.add(policies, batch, rows, pz);
            aggregated
                .map_err(|e| DetailsError::Aggregate(AggregateError::Thread(e.to_string())))?
                .join()
                .map_err(|_| {
                    DetailsError::Aggregate(AggregateError::Thread("it panicked".into()))
                })??;
            written
        })
    }
}

type Staged = Rows<BufWriter<File>>;

/// Where the detail rows go while the run goes.
enum Sink {
    /// Into files in a staging folder (moved into the report folder at the end), by a thread
    /// of their own, so that the replay goes on with the next batch meanwhile. A batch is
    /// handed over when the thread is done with the one before (so at most two are held).
    Thread {
        rows: RowsThread,
        csv: PathBuf,
        parquet: PathBuf,
    },
    /// Into memory, here: a pseudonymized run checks the bytes before it writes them.
    Memory {
        rows: Box<Rows<Vec<u8>>>,
        /// The policies as the files show them (made at the first batch, pseudonymized when
        /// the run is).
        policies: Option<PolicyTexts>,
    },
}

/// The detail files, finished (`csv`: `None` when it was not written; see `CsvWhen`).
pub enum DetailFiles {
    Staged {
        csv: Option<PathBuf>,
        parquet: PathBuf,
    },
    Memory {
        csv: Option<Vec<u8>>,
        parquet: Vec<u8>,
    },
}

pub struct Collector<'t> {
    tenant: &'t Tenant,
    sink: Sink,
    coverage: CoverageAcc,
    signed_in: HashSet<UserIdx>,
    any_signins: bool,
    break_glass: BTreeSet<UserIdx>,
    break_glass_signins: Vec<SignIn>,
    migration: MigrationAcc,
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

/// The detail rows' thread, and the way to it. Dropped unfinished (a run that replays again,
/// or stops at an error), it waits for the thread, so that nothing writes to the staged files
/// after (a second pass writes the same ones).
struct RowsThread {
    jobs: Option<SyncSender<Job>>,
    thread: Option<JoinHandle<Result<Staged, DetailsError>>>,
}

impl RowsThread {
    /// Hands a batch over, once the thread is done with the one before.
    fn send(&mut self, job: Job) -> Result<(), WriteError> {
        if self.jobs.as_ref().is_some_and(|j| j.send(job).is_ok()) {
            return Ok(());
        }
        // The thread stopped: at an error, which joining it gives.
        Err(self.finish().err().unwrap_or_else(|| {
            WriteError::Io(std::io::Error::other("the detail files' writer stopped"))
        }))
    }

    /// Waits for the thread to write what it was handed; its files and affected users.
    fn finish(&mut self) -> Result<Staged, WriteError> {
        self.jobs.take();
        joined(self.thread.take())
    }
}

impl Drop for RowsThread {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            // Its result is not wanted: only that it has stopped writing.
            let _ = thread.join();
        }
    }
}

/// The detail rows' thread: adds each batch as it comes; stops at the first error.
fn write_rows(
    mut rows: Staged,
    policies: PolicyTexts,
    jobs: Receiver<Job>,
) -> Result<Staged, DetailsError> {
    for (batch, details) in jobs {
        rows.add(&policies, &batch, &details, None)?;
    }
    Ok(rows)
}

impl<'t> Collector<'t> {
    /// Detail files written into `staging` (a folder on the same file system as the report
    /// folder) as batches come, by a thread of their own; `details.csv` as `when` says.
    pub fn to_files(
        tenant: &'t Tenant,
        staging: &Path,
        when: CsvWhen,
    ) -> Result<Collector<'t>, WriteError> {
        std::fs::create_dir_all(staging)?;
        let (csv, csv_out) = staged(staging, "details.csv")?;
        let (parquet, parquet_out) = staged(staging, "details.parquet")?;
        let rows = Rows {
            writer: DetailsWriter::new(csv_out, parquet_out, when).map_err(details_error)?,
            affected: AffectedAcc::new(tenant.set.policies.len()),
        };
        let policies = PolicyTexts::new(tenant, None);
        let (jobs, received) = std::sync::mpsc::sync_channel(0);
        let thread = std::thread::Builder::new()
            .name("ca-replay-details".into())
            .spawn(move || write_rows(rows, policies, received))?;
        Ok(Collector::with(
            tenant,
            Sink::Thread {
                rows: RowsThread {
                    jobs: Some(jobs),
                    thread: Some(thread),
                },
                csv,
                parquet,
            },
        ))
    }

    /// Detail files kept in memory; `details.csv` as `csv` says.
    pub fn in_memory(tenant: &'t Tenant, csv: CsvWhen) -> Result<Collector<'t>, WriteError> {
        let rows = Rows {
            writer: DetailsWriter::new(Vec::new(), Vec::new(), csv).map_err(details_error)?,
            affected: AffectedAcc::new(tenant.set.policies.len()),
        };
        Ok(Collector::with(
            tenant,
            Sink::Memory {
                rows: Box::new(rows),
                policies: None,
            },
        ))
    }

    fn with(tenant: &'t Tenant, sink: Sink) -> Collector<'t> {
        Collector {
            tenant,
            sink,
            coverage: CoverageAcc::default(),
            signed_in: HashSet::new(),
            any_signins: false,
            break_glass: breakglass::configured_accounts(tenant),
            break_glass_signins: Vec::new(),
            migration: MigrationAcc::new(tenant),
        }
    }

    /// Adds a batch the replay has been through (`out` aligned with `batch`); `clocks`: the
    /// MFA registration clocks the replay used for it. With a pseudonymizer (in memory only),
    /// the detail files and affected users are made from pseudonymized copies.
    pub fn add(
        &mut self,
        batch: Vec<SignIn>,
        out: BatchOut,
        clocks: &HashMap<String, i64>,
        pz: Option<&mut Pseudonymizer>,
    ) -> Result<(), WriteError> {
        let tenant = self.tenant;
        self.any_signins |= !batch.is_empty();
        self.coverage
            .add(tenant, &batch, &out.protection, &out.dir_users);
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
        self.migration.add(tenant, clocks, &batch);
        match (&mut self.sink, pz) {
            (Sink::Memory { rows, policies }, None) => {
                let policies = policies.get_or_insert_with(|| PolicyTexts::new(tenant, None));
                rows.add(policies, &batch, &out.details, None)
                    .map_err(details_error)
            }
            (Sink::Memory { rows, policies }, Some(pz)) => {
                let policies = match policies {
                    Some(p) => p,
                    None => {
                        let names = tenant
                            .set
                            .policies
                            .iter()
                            .map(|p| pz.text(&p.display_name).map(|t| t.into_owned()))
                            .collect::<Result<Vec<_>, _>>()?;
                        policies.insert(PolicyTexts::new(tenant, Some(&names)))
                    }
                };
                let mut shown = batch;
                for s in &mut shown {
                    pz.signin(s)?;
                }
                rows.add(policies, &shown, &out.details, Some(pz))
                    .map_err(details_error)
            }
            (Sink::Thread { .. }, Some(_)) => Err(WriteError::Io(std::io::Error::other(
                "a pseudonymized run keeps its detail files in memory",
            ))),
            (Sink::Thread { rows, .. }, None) => rows.send((batch, out.details)),
        }
    }

    /// Finishes the detail files and the checks, for the replay the batches went through.
    pub fn finish(self, replay: &Replay) -> Result<Collected, WriteError> {
        let tenant = self.tenant;
        let (details, affected, written) = match self.sink {
            Sink::Thread {
                mut rows,
                csv,
                parquet,
            } => {
                let rows = rows.finish()?;
                let (a, b, written) = rows.writer.finish().map_err(details_error)?;
                for w in [a, b] {
                    let f = w.into_inner().map_err(|e| WriteError::Io(e.into_error()))?;
                    f.sync_all()?;
                }
                let csv = match written.csv {
                    Ok(()) => Some(csv),
                    Err(_) => {
                        std::fs::remove_file(&csv)?;
                        None
                    }
                };
                (DetailFiles::Staged { csv, parquet }, rows.affected, written)
            }
            Sink::Memory { rows, .. } => {
                let (csv, parquet, written) = rows.writer.finish().map_err(details_error)?;
                let csv = written.csv.is_ok().then_some(csv);
                (DetailFiles::Memory { csv, parquet }, rows.affected, written)
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
            affected: affected.finish().map_err(|e| details_error(e.into()))?,
            details,
            written,
        })
    }
}

/// The detail rows' thread's result, once it has stopped.
fn joined(thread: Option<JoinHandle<Result<Staged, DetailsError>>>) -> Result<Staged, WriteError> {
    let thread = thread
        .ok_or_else(|| WriteError::Io(std::io::Error::other("the detail files' writer stopped")))?;
    match thread.join() {
        Ok(done) => done.map_err(details_error),
        Err(_) => Err(WriteError::Io(std::io::Error::other(
            "the detail files' writer panicked",
        ))),
    }
}

/// What [`Collector::finish`] gives the writers.
pub struct Collected {
    pub prepared: Prepared,
    pub affected: Affected,
    pub details: DetailFiles,
    pub written: DetailsWritten,
}
