//! `details.parquet`: the rows of `details.csv` as Parquet, typed (the time as a UTC timestamp),
//! for tools that load details at scale (DuckDB, polars, Spark) without parsing CSV.
//!
//! In: the tenant, sign-ins and replay. Out: the file's bytes (Snappy, one row group per 64k
//! rows), deterministic for identical inputs. Values are written as they are: the spreadsheet
//! formula guard of the CSV does not apply to a typed file.

use std::sync::Arc;

use arrow_array::builder::{StringBuilder, TimestampNanosecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::DETAIL_COLUMNS;
use crate::replay::{DetailRow, Replay};
use crate::signin::SignIn;
use crate::tenant::Tenant;

pub fn bytes(tenant: &Tenant, signins: &[SignIn], replay: &Replay) -> Result<Vec<u8>, String> {
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
    let schema = Arc::new(Schema::new(fields));
    let mut rows: Vec<&DetailRow> = replay.details.iter().collect();
    rows.sort_by_key(|r| (r.signin, r.policy));

    let mut time = TimestampNanosecondBuilder::new().with_timezone("UTC");
    let mut text: Vec<StringBuilder> = (0..DETAIL_COLUMNS.len() - 1)
        .map(|_| StringBuilder::new())
        .collect();
    for r in rows {
        let (Some(s), Some(p)) = (signins.get(r.signin), tenant.set.policies.get(r.policy)) else {
            continue;
        };
        let nanos = s
            .created_at
            .timestamp_nanos_opt()
            .ok_or_else(|| format!("sign-in {}: time {} out of range", s.id, s.created_at))?;
        time.append_value(nanos);
        let values = [
            s.id.as_str(),
            s.user_id.as_str(),
            s.user_principal_name.as_str(),
            s.resource_id.as_str(),
            p.id.as_str(),
            p.display_name.as_str(),
            p.state.as_str(),
            r.impact.as_str(),
            r.impact.result_word(),
            r.reason.as_str(),
        ];
        for (b, v) in text.iter_mut().zip(values) {
            b.append_value(v);
        }
    }
    // Column order of DETAIL_COLUMNS: signin_id, created_at, then the rest.
    let mut text = text
        .into_iter()
        .map(|mut b| Arc::new(b.finish()) as ArrayRef);
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(DETAIL_COLUMNS.len());
    columns.extend(text.next());
    columns.push(Arc::new(time.finish()));
    columns.extend(text);
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(65_536))
        .set_created_by(format!("ca-replay {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut w = ArrowWriter::try_new(Vec::new(), schema, Some(props)).map_err(|e| e.to_string())?;
    w.write(&batch).map_err(|e| e.to_string())?;
    w.into_inner().map_err(|e| e.to_string())
}
