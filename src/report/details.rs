//! `details.csv` and `details.parquet`, written as the replay goes: one row per (sign-in,
//! policy) the replay kept (`replay::Details`), in sign-in order, then policy order. The
//! Parquet file holds the same rows typed (the time as a UTC timestamp), for tools that load
//! details at scale (DuckDB, polars, Spark) without parsing CSV.
//!
//! In: each batch of sign-ins with its detail rows (`replay::BatchOut`). Out: the two files'
//! bytes, into any `Write` (files in a staging folder for a run, memory when the bytes must be
//! checked before they are written, as `--pseudonymize` does). Deterministic for identical
//! inputs. The CSV's cells are guarded against spreadsheet formulas (`csv_cell`) and quoted as
//! the `csv` crate quotes ([`push_cell`]); the typed file's values are written as they are.
//! Parquet: Snappy, 64k rows per row group, statistics for the time only.
//!
//! A run writes tens of millions of rows, so the CSV is assembled from pieces formatted once:
//! a sign-in's five cells once for all its rows, a policy's three cells once for the run.

use std::io::Write;
use std::sync::Arc;

use arrow_array::builder::{StringBuilder, TimestampNanosecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

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
    #[error(transparent)]
    Aggregate(#[from] super::affected::AggregateError),
}

/// When `details.csv` is written (`run --details-csv`). `details.parquet` always is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CsvWhen {
    /// While the rows fit in a spreadsheet ([`SPREADSHEET_ROWS`]); past that, not at all.
    #[default]
    Auto,
    Always,
    Never,
}

/// The rows a spreadsheet opens below a header row (Excel and LibreOffice Calc open
/// 1,048,576 rows). A CSV longer than that is read by tools that read Parquet too.
pub const SPREADSHEET_ROWS: u64 = 1_048_575;

/// What became of the detail files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetailsWritten {
    pub rows: u64,
    /// Whether `details.csv` was written; when not, why.
    pub csv: Result<(), CsvSkipped>,
}

/// Why `details.csv` was not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvSkipped {
    /// `--details-csv never`.
    Asked,
    /// `--details-csv auto`, and more rows than [`SPREADSHEET_ROWS`].
    TooLong,
}

impl DetailsWritten {
    /// Why `details.csv` is not in the report folder, in a sentence; `None` when it is.
    pub fn csv_note(&self) -> Option<String> {
        let rows = super::markdown::thousands(self.rows);
        match self.csv {
            Ok(()) => None,
            Err(CsvSkipped::Asked) => Some(format!(
                "details.csv not written (--details-csv never); details.parquet holds the {rows} detail rows"
            )),
            Err(CsvSkipped::TooLong) => Some(format!(
                "details.csv not written: its {rows} rows are more than a spreadsheet opens ({}); details.parquet holds every row (DuckDB, polars, pandas read it); `run --details-csv always` writes the CSV anyway",
                super::markdown::thousands(SPREADSHEET_ROWS)
            )),
        }
    }
}

/// Writes both detail files as batches come.
pub struct DetailsWriter<W: Write + Send> {
    csv: W,
    when: CsvWhen,
    /// Whether CSV rows are still written (see [`CsvWhen`]).
    csv_on: bool,
    /// The most rows `CsvWhen::Auto` writes ([`SPREADSHEET_ROWS`]).
    csv_limit: u64,
    /// CSV bytes not handed to `csv` yet.
    buf: Vec<u8>,
    parquet: ArrowWriter<W>,
    schema: SchemaRef,
    rows: u64,
    /// The Parquet rows not written yet: handed to the writer [`GROUP`] at a time, so that the
    /// file's bytes do not depend on how the rows came in batches.
    time: TimestampNanosecondBuilder,
    text: Vec<StringBuilder>,
    pending: usize,
}

/// The policies as the detail files show them.
pub struct PolicyTexts(Vec<PolicyText>);

struct PolicyText {
    id: String,
    name: String,
    state: &'static str,
    /// `policy_id,policy_name,policy_state,` as CSV.
    cells: Vec<u8>,
}

impl PolicyTexts {
    /// The tenant's policies, named by `names` (aligned with the policy set; pseudonymized
    /// names) or by their own display names.
    pub fn new(tenant: &Tenant, names: Option<&[String]>) -> PolicyTexts {
        let texts = tenant.set.policies.iter().enumerate().map(|(i, p)| {
            let name = names
                .and_then(|n| n.get(i))
                .map_or(p.display_name.as_str(), String::as_str);
            let mut cells = Vec::new();
            for c in [p.id.as_str(), name, p.state.as_str()] {
                push_cell(&mut cells, c);
                cells.push(b',');
            }
            PolicyText {
                id: p.id.clone(),
                name: name.to_owned(),
                state: p.state.as_str(),
                cells,
            }
        });
        PolicyTexts(texts.collect())
    }
}

/// Rows per Parquet row group (and per write).
const GROUP: usize = 65_536;

/// CSV bytes gathered before a write.
const FLUSH_AT: usize = 1 << 20;

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

/// Appends `s` as one CSV cell: guarded against formulas ([`csv_cell`]), then quoted exactly
/// as the `csv` crate's writer quotes by default (when the cell holds a comma, a double quote,
/// CR or LF; double quotes doubled). Rows of more than one cell only: the crate writes a lone
/// empty cell as `""`.
pub(crate) fn push_cell(out: &mut Vec<u8>, s: &str) {
    let s = csv_cell(s);
    let b = s.as_bytes();
    if b.iter().any(|&c| matches!(c, b',' | b'"' | b'\r' | b'\n')) {
        out.reserve(b.len() + 2);
        out.push(b'"');
        for &c in b {
            if c == b'"' {
                out.push(b'"');
            }
            out.push(c);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(b);
    }
}

/// The sign-in's time as the CSV shows it (RFC 3339, milliseconds, `Z`).
fn csv_time(s: &SignIn) -> String {
    s.created_at
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn text_builders(capacity: &[usize]) -> Vec<StringBuilder> {
    capacity
        .iter()
        .map(|&bytes| StringBuilder::with_capacity(GROUP, bytes))
        .collect()
}

impl<W: Write + Send> DetailsWriter<W> {
    /// Starts both files (the CSV's header row, unless `when` is `Never`).
    pub fn new(
        csv_out: W,
        parquet_out: W,
        when: CsvWhen,
    ) -> Result<DetailsWriter<W>, DetailsError> {
        let csv_on = when != CsvWhen::Never;
        let mut buf = Vec::with_capacity(FLUSH_AT + (64 << 10));
        if csv_on {
            for (i, c) in DETAIL_COLUMNS.iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                push_cell(&mut buf, c);
            }
            buf.push(b'\n');
        }
        let schema = schema();
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(GROUP))
            // Rows come in time order: only the time's statistics let a reader skip row
            // groups; every group holds every policy and impact, and ids are random.
            .set_statistics_enabled(EnabledStatistics::None)
            .set_column_statistics_enabled(ColumnPath::from("created_at"), EnabledStatistics::Page)
            .set_created_by(format!("ca-replay {}", env!("CARGO_PKG_VERSION")))
            .build();
        let parquet = ArrowWriter::try_new(parquet_out, schema.clone(), Some(props))
            .map_err(|e| DetailsError::Parquet(e.to_string()))?;
        Ok(DetailsWriter {
            csv: csv_out,
            when,
            csv_on,
            csv_limit: SPREADSHEET_ROWS,
            buf,
            parquet,
            schema,
            rows: 0,
            time: TimestampNanosecondBuilder::with_capacity(GROUP).with_timezone("UTC"),
            text: text_builders(&[0; DETAIL_COLUMNS.len() - 1]),
            pending: 0,
        })
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Adds a batch's rows (`rows[i].signin` indexes `batch`), its policies shown as
    /// `policies` says. With a pseudonymizer (the batch and the names are then already
    /// pseudonymized), the reasons go through it.
    pub fn add(
        &mut self,
        policies: &PolicyTexts,
        batch: &[SignIn],
        rows: &[DetailRow],
        mut pz: Option<&mut Pseudonymizer>,
    ) -> Result<(), DetailsError> {
        // The current sign-in's index, its five CSV cells and its Parquet time.
        let mut current: Option<(usize, Vec<u8>, i64)> = None;
        for r in rows {
            let (Some(s), Some(p)) = (batch.get(r.signin), policies.0.get(r.policy)) else {
                continue;
            };
            if self.csv_on && self.when == CsvWhen::Auto && self.rows >= self.csv_limit {
                // Too long for a spreadsheet: no CSV at all (the collector removes what was
                // written), rather than a CSV that stops part way.
                self.csv_on = false;
                self.buf = Vec::new();
            }
            let (prefix, nanos) = match &mut current {
                Some((at, prefix, nanos)) if *at == r.signin => (&*prefix, *nanos),
                _ => {
                    let nanos = s.created_at.timestamp_nanos_opt().ok_or_else(|| {
                        DetailsError::Parquet(format!(
                            "sign-in {}: time {} out of range",
                            s.id, s.created_at
                        ))
                    })?;
                    // (Not made once the CSV is no longer written.)
                    let mut prefix = Vec::new();
                    if self.csv_on {
                        let time = csv_time(s);
                        for c in [
                            s.id.as_str(),
                            time.as_str(),
                            s.user_id.as_str(),
                            s.user_principal_name.as_str(),
                            s.resource_id.as_str(),
                        ] {
                            push_cell(&mut prefix, c);
                            prefix.push(b',');
                        }
                    }
                    let (_, prefix, nanos) = current.insert((r.signin, prefix, nanos));
                    (&*prefix, *nanos)
                }
            };
            let reason = match pz.as_deref_mut() {
                Some(pz) => pz.text(&r.reason)?,
                None => std::borrow::Cow::Borrowed(&*r.reason),
            };
            if self.csv_on {
                let buf = &mut self.buf;
                buf.extend_from_slice(prefix);
                buf.extend_from_slice(&p.cells);
                buf.extend_from_slice(r.impact.as_str().as_bytes());
                buf.push(b',');
                buf.extend_from_slice(r.impact.result_word().as_bytes());
                buf.push(b',');
                push_cell(buf, &reason);
                buf.push(b'\n');
            }
            self.time.append_value(nanos);
            let values = [
                s.id.as_str(),
                s.user_id.as_str(),
                s.user_principal_name.as_str(),
                s.resource_id.as_str(),
                p.id.as_str(),
                p.name.as_str(),
                p.state,
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
            if self.buf.len() >= FLUSH_AT {
                self.write_csv()?;
            }
        }
        Ok(())
    }

    fn write_csv(&mut self) -> Result<(), DetailsError> {
        if !self.csv_on {
            return Ok(());
        }
        self.csv
            .write_all(&self.buf)
            .map_err(|e| DetailsError::Csv(e.to_string()))?;
        self.buf.clear();
        Ok(())
    }

    /// Writes the pending Parquet rows.
    fn flush(&mut self) -> Result<(), DetailsError> {
        if self.pending == 0 {
            return Ok(());
        }
        self.pending = 0;
        // The next group's builders sized as this one's were.
        let used: Vec<usize> = self.text.iter().map(|b| b.values_slice().len()).collect();
        let full = std::mem::replace(&mut self.text, text_builders(&used));
        // Column order of DETAIL_COLUMNS: signin_id, created_at, then the rest.
        let mut text = full
            .into_iter()
            .map(|mut b| Arc::new(b.finish()) as ArrayRef);
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

    /// Finishes both files; returns their outputs (CSV, Parquet), flushed, and what was
    /// written. When the CSV was not written, its output may hold a part of it, to be thrown
    /// away.
    pub fn finish(mut self) -> Result<(W, W, DetailsWritten), DetailsError> {
        self.flush()?;
        self.write_csv()?;
        let mut csv = self.csv;
        csv.flush().map_err(|e| DetailsError::Csv(e.to_string()))?;
        let parquet = self
            .parquet
            .into_inner()
            .map_err(|e| DetailsError::Parquet(e.to_string()))?;
        let written = DetailsWritten {
            rows: self.rows,
            csv: match (self.csv_on, self.when) {
                (true, _) => Ok(()),
                (false, CsvWhen::Never) => Err(CsvSkipped::Asked),
                (false, _) => Err(CsvSkipped::TooLong),
            },
        };
        Ok((csv, parquet, written))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Impact;
    use proptest::prelude::*;

    fn policies(n: usize) -> PolicyTexts {
        PolicyTexts(
            (0..n)
                .map(|i| {
                    let (id, name) = (format!("p{i}"), format!("Policy, {i}"));
                    let mut cells = Vec::new();
                    for c in [id.as_str(), name.as_str(), "enabled"] {
                        push_cell(&mut cells, c);
                        cells.push(b',');
                    }
                    PolicyText {
                        id,
                        name,
                        state: "enabled",
                        cells,
                    }
                })
                .collect(),
        )
    }

    /// `signins` sign-ins with one row per policy each, written as `when` says with a
    /// spreadsheet of `limit` rows; the CSV's lines (with the header), the Parquet bytes and what
    /// was written.
    fn write(signins: usize, when: CsvWhen, limit: u64) -> (usize, usize, DetailsWritten) {
        let batch: Vec<SignIn> = (0..signins)
            .map(|i| SignIn {
                id: format!("s{i}"),
                ..SignIn::default()
            })
            .collect();
        let rows: Vec<DetailRow> = (0..signins)
            .flat_map(|s| {
                (0..2).map(move |policy| DetailRow {
                    signin: s,
                    policy,
                    impact: Impact::MfaPrompt,
                    reason: "mfa: not satisfied".into(),
                })
            })
            .collect();
        let mut w = DetailsWriter::new(Vec::new(), Vec::new(), when).expect("in memory");
        w.csv_limit = limit;
        let texts = policies(2);
        // In two batches, the limit crossed in the second.
        let half = rows.len() / 2 + 1;
        w.add(&texts, &batch, &rows[..half], None)
            .expect("in memory");
        w.add(&texts, &batch, &rows[half..], None)
            .expect("in memory");
        let (csv, parquet, written) = w.finish().expect("in memory");
        (bytecount_lines(&csv), parquet.len(), written)
    }

    fn bytecount_lines(b: &[u8]) -> usize {
        b.iter().filter(|&&c| c == b'\n').count()
    }

    #[test]
    fn the_csv_is_written_only_while_it_fits_a_spreadsheet() {
        let (lines, parquet, w) = write(5, CsvWhen::Auto, 10);
        assert_eq!((lines, w.rows, w.csv), (11, 10, Ok(())));
        assert!(parquet > 0);
        let (_, parquet_past, w) = write(6, CsvWhen::Auto, 10);
        assert_eq!((w.rows, w.csv), (12, Err(CsvSkipped::TooLong)));
        assert!(parquet_past > parquet, "Parquet holds every row");
        let note = w.csv_note().expect("a note");
        assert!(
            note.contains("12 rows") && note.contains("--details-csv always"),
            "{note}"
        );
        let (lines, _, w) = write(6, CsvWhen::Always, 10);
        assert_eq!((lines, w.rows, w.csv), (13, 12, Ok(())));
        let (lines, _, w) = write(2, CsvWhen::Never, 10);
        assert_eq!((lines, w.rows, w.csv), (0, 4, Err(CsvSkipped::Asked)));
        assert!(w.csv_note().is_some_and(|n| n.contains("never")));
    }

    /// A record written cell by cell with [`push_cell`].
    fn ours(cells: &[String]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_cell(&mut out, c);
        }
        out.push(b'\n');
        out
    }

    /// The same record through the `csv` crate, after the formula guard.
    fn theirs(cells: &[String]) -> Vec<u8> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let guarded: Vec<String> = cells.iter().map(|c| csv_cell(c).into_owned()).collect();
        w.write_record(&guarded).expect("writing to memory");
        w.into_inner().expect("flushing to memory")
    }

    #[test]
    fn cells_are_quoted_as_the_csv_crate_quotes_them() {
        let cells: Vec<String> = [
            "plain",
            "",
            "a,b",
            "say \"hi\"",
            "two\nlines",
            "cr\rhere",
            "=SUM(A1)",
            "+1",
            "-1",
            "@x",
            "\tx",
            "\r\n",
            "=\"a,b\"",
            "ünïcode, too",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for c in &cells {
            let row = vec![c.clone(), c.clone()];
            assert_eq!(ours(&row), theirs(&row), "cell {c:?}");
        }
        assert_eq!(ours(&cells), theirs(&cells));
    }

    proptest! {
        #[test]
        fn any_cells_are_quoted_as_the_csv_crate_quotes_them(
            cells in proptest::collection::vec("[a-c,\"\r\n=+@\t -]{0,6}|\\PC{0,4}", 2..6)
        ) {
            prop_assert_eq!(ours(&cells), theirs(&cells));
        }
    }
}
