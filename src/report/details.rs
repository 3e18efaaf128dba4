//! `details.csv` and `details.parquet`, written as the replay goes: one row per (sign-in,
//! policy) the replay kept (`replay::Details`), in sign-in order, then policy order. The
//! Parquet file holds the same rows typed (the time as a UTC timestamp), for tools that load
//! details at scale (DuckDB, polars, Spark) without parsing CSV.
//!
//! In: each batch of sign-ins with its detail rows (`replay::BatchOut`). Out: the two files'
//! bytes, into any `Write` (files in a staging folder for a run, memory when the bytes must be
//! checked before they are written, as `--pseudonymize` does). Deterministic for identical
//! inputs. The CSV's cells are guarded against spreadsheet formulas (`csv_cell`); the typed
//! file's values are written as they are. Parquet: Snappy, 64k rows per row group.

use std::io::Write;
use std::sync::Arc;

use arrow_array::builder::{StringBuilder, TimestampNanosecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::{csv_cell, DETAIL_COLUMNS};
use crate::privacy::Pseudonymizer;
use crate::replay::DetailRow;
use crate::signin::SignIn;
use crate::tenant::Tenant;

#[derive(Debug, thiserror::Error)]
pub enum DetailsError {
    #[error("writing details.csv: {0}")]
    Csv(String),
    #[error("writing details.parquet: {0}")]
    Parquet(String),
    #[error(transparent)]
    Privacy(#[from] crate::privacy::PrivacyError),
}

/// Writes both detail files as batches come.
pub struct DetailsWriter<W: Write + Send> {
    csv: csv::Writer<W>,
    parquet: ArrowWriter<W>,
    schema: SchemaRef,
    rows: u64,
    /// The Parquet rows not written yet: handed to the writer [`GROUP`] at a time, so that the
    /// file's bytes do not depend on how the rows came in batches.
    time: TimestampNanosecondBuilder,
    text: Vec<StringBuilder>,
    pending: usize,
}

/// Rows per Parquet row group (and per write).
const GROUP: usize = 65_536;

/// One detail row's values, in `DETAIL_COLUMNS` order but the time.
struct Values<'a> {
    signin_id: &'a str,
    created_at: chrono::DateTime<chrono::Utc>,
    user_id: &'a str,
    user_principal_name: &'a str,
    resource_id: &'a str,
}

fn schema() -> SchemaRef {
    let fields: Vec<Field> = DETAIL_COLUMNS
        .iter()
        .map(|c| match *c {
            "created_at" => Field::new(
                *c,
                DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
                false,
            ),
            _ => Field::new(*c, DataType::Utf8, false),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

impl<W: Write + Send> DetailsWriter<W> {
    /// Starts both files (the CSV's header row).
    pub fn new(csv_out: W, parquet_out: W) -> Result<DetailsWriter<W>, DetailsError> {
        let mut csv = csv::Writer::from_writer(csv_out);
        csv.write_record(DETAIL_COLUMNS)
            .map_err(|e| DetailsError::Csv(e.to_string()))?;
        let schema = schema();
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(GROUP))
            .set_created_by(format!("ca-replay {}", env!("CARGO_PKG_VERSION")))
            .build();
        let parquet = ArrowWriter::try_new(parquet_out, schema.clone(), Some(props))
            .map_err(|e| DetailsError::Parquet(e.to_string()))?;
        Ok(DetailsWriter {
            csv,
            parquet,
            schema,
            rows: 0,
            time: TimestampNanosecondBuilder::new().with_timezone("UTC"),
            text: (0..DETAIL_COLUMNS.len() - 1)
                .map(|_| StringBuilder::new())
                .collect(),
            pending: 0,
        })
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Adds a batch's rows (`rows[i].signin` indexes `batch`). With a pseudonymizer (the
    /// batch is then already pseudonymized), the reasons go through it, and the policies' names
    /// are `policy_names` (pseudonymized too); without, the policies' own names.
    pub fn add(
        &mut self,
        tenant: &Tenant,
        policy_names: Option<&[String]>,
        batch: &[SignIn],
        rows: &[DetailRow],
        mut pz: Option<&mut Pseudonymizer>,
    ) -> Result<(), DetailsError> {
        for r in rows {
            let (Some(s), Some(p)) = (batch.get(r.signin), tenant.set.policies.get(r.policy))
            else {
                continue;
            };
            let reason = match pz.as_deref_mut() {
                Some(pz) => pz.text(&r.reason)?,
                None => std::borrow::Cow::Borrowed(r.reason.as_str()),
            };
            let v = Values {
                signin_id: &s.id,
                created_at: s.created_at,
                user_id: &s.user_id,
                user_principal_name: &s.user_principal_name,
                resource_id: &s.resource_id,
            };
            let name = policy_names
                .and_then(|n| n.get(r.policy))
                .map_or(p.display_name.as_str(), String::as_str);
            let created = v
                .created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let record = [
                csv_cell(v.signin_id),
                created.as_str().into(),
                csv_cell(v.user_id),
                csv_cell(v.user_principal_name),
                csv_cell(v.resource_id),
                csv_cell(&p.id),
                csv_cell(name),
                p.state.as_str().into(),
                r.impact.as_str().into(),
                r.impact.result_word().into(),
                csv_cell(&reason),
            ];
            self.csv
                .write_record(record.iter().map(|c| c.as_ref()))
                .map_err(|e| DetailsError::Csv(e.to_string()))?;
            let nanos = v.created_at.timestamp_nanos_opt().ok_or_else(|| {
                DetailsError::Parquet(format!(
                    "sign-in {}: time {} out of range",
                    v.signin_id, v.created_at
                ))
            })?;
            self.time.append_value(nanos);
            let values = [
                v.signin_id,
                v.user_id,
                v.user_principal_name,
                v.resource_id,
                p.id.as_str(),
                name,
                p.state.as_str(),
                r.impact.as_str(),
                r.impact.result_word(),
                &reason,
            ];
            for (b, v) in self.text.iter_mut().zip(values) {
                b.append_value(v);
            }
            self.rows += 1;
            self.pending += 1;
            if self.pending == GROUP {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Writes the pending Parquet rows.
    fn flush(&mut self) -> Result<(), DetailsError> {
        if self.pending == 0 {
            return Ok(());
        }
        self.pending = 0;
        // Column order of DETAIL_COLUMNS: signin_id, created_at, then the rest.
        let mut text = self
            .text
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef);
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(DETAIL_COLUMNS.len());
        columns.extend(text.next());
        columns.push(Arc::new(self.time.finish()));
        columns.extend(text);
        let batch = RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| DetailsError::Parquet(e.to_string()))?;
        self.parquet
            .write(&batch)
            .map_err(|e| DetailsError::Parquet(e.to_string()))
    }

    /// Finishes both files; returns their outputs (CSV, Parquet), flushed.
    pub fn finish(mut self) -> Result<(W, W), DetailsError> {
        self.flush()?;
        let csv = self
            .csv
            .into_inner()
            .map_err(|e| DetailsError::Csv(e.to_string()))?;
        let parquet = self
            .parquet
            .into_inner()
            .map_err(|e| DetailsError::Parquet(e.to_string()))?;
        Ok((csv, parquet))
    }
}
