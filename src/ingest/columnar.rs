//! Columnar sign-in files: ca-replay's own normalized schema, in Parquet or Arrow IPC (the fast
//! path for repeated runs, written by `ca-replay convert`).
//!
//! In: `SignIn`s to write ([`SignInWriter`]), or a file to read ([`read`]). Out: the file (one
//! column per `SignIn` field, schema version `signin/1` in the schema metadata, row groups or
//! record batches of [`ROWS_PER_GROUP`] rows); or its sign-ins in file order plus one
//! `Diagnostic` per row that cannot be a `SignIn` (a null where a value is needed, a word outside
//! the vocabulary). Row groups and record batches are decoded in parallel (rayon).
//!
//! The derived fields `client_app` and `platform` are not stored: they are recomputed from
//! `client_app_used`, `device_operating_system` and `user_agent` exactly as the Graph reader does,
//! so a file written by an older ca-replay follows today's rules.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, BooleanBuilder, Int64Builder, ListBuilder, StringBuilder,
    TimestampNanosecondBuilder, UInt32Builder,
};
use arrow_array::types::Int32Type;
use arrow_array::{
    Array, ArrayRef, BooleanArray, DictionaryArray, Int32Array, Int64Array, ListArray, RecordBatch,
    StringArray, StructArray, TimestampNanosecondArray, UInt32Array,
};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{ArrowError, DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use chrono::{DateTime, Utc};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;

use super::Diagnostic;
use crate::domain::{RiskLevel, TransferMethod};
use crate::signin::{AppliedPolicy, EventType, SignIn, Ustr};

/// The schema metadata key that names the schema version.
pub const SCHEMA_KEY: &str = "ca-replay.schema";
/// The one version this build reads and writes. A change to the columns is a new version.
pub const SCHEMA_VERSION: &str = "signin/1";
/// Rows per Parquet row group and per Arrow record batch: the unit of parallel decoding.
pub const ROWS_PER_GROUP: usize = 65_536;
/// Rows per batch when decoding a Parquet row group: small enough that the decoded Arrow
/// buffers are reused by the allocator instead of mapped and faulted in afresh per batch.
const DECODE_BATCH: usize = 8192;

/// A columnar file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Parquet,
    /// The Arrow IPC *file* format (magic `ARROW1`, random access to record batches).
    ArrowIpc,
}

impl Format {
    /// The format a file name asks for: `.parquet`, or `.arrow` / `.arrows` / `.ipc`.
    pub fn from_extension(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "parquet" => Some(Format::Parquet),
            "arrow" | "arrows" | "ipc" => Some(Format::ArrowIpc),
            _ => None,
        }
    }

    /// The format a file's first bytes show (`PAR1`, `ARROW1`), if any.
    pub fn sniff(path: &Path) -> Result<Option<Format>, ColumnarError> {
        let mut head = [0u8; 6];
        let mut file = File::open(path).map_err(io(path))?;
        let mut n = 0;
        while n < head.len() {
            match file.read(&mut head[n..]).map_err(io(path))? {
                0 => break,
                k => n += k,
            }
        }
        Ok(if head[..n].starts_with(b"PAR1") {
            Some(Format::Parquet)
        } else if head[..n].starts_with(b"ARROW1") {
            Some(Format::ArrowIpc)
        } else {
            None
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Parquet => "Parquet",
            Format::ArrowIpc => "Arrow IPC",
        }
    }
}

/// A columnar file that cannot be written or read as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ColumnarError {
    #[error("cannot access `{path}`: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read `{path}` as {format}: {message}\nhint: the file may be truncated or damaged; write it again with `ca-replay convert`")]
    Decode {
        path: PathBuf,
        format: &'static str,
        message: String,
    },
    #[error("cannot write `{path}`: {message}")]
    Encode { path: PathBuf, message: String },
    #[error("`{path}` {found}; this ca-replay reads sign-in schema `{SCHEMA_VERSION}`\nhint: write the file again from the original exports with `ca-replay convert`")]
    SchemaVersion { path: PathBuf, found: String },
    #[error("`{path}`: column `{column}` {why}\nhint: columnar sign-in files are written by `ca-replay convert`")]
    Column {
        path: PathBuf,
        column: String,
        why: String,
    },
    #[error(
        "`{path}` is named as {format} but does not start with the magic bytes `{magic}`\nhint: ca-replay reads Parquet and the Arrow IPC file format (not the stream format) as `ca-replay convert` writes them; rename a file that is neither"
    )]
    NotColumnar {
        path: PathBuf,
        format: &'static str,
        magic: &'static str,
    },
    #[error("cannot write sign-in `{id}` to `{path}`: created_at `{value}` is outside the years 1677-2262 that nanosecond timestamps hold")]
    Timestamp {
        path: PathBuf,
        id: String,
        value: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ColumnarError + '_ {
    move |source| ColumnarError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn parquet_error(path: &Path) -> impl Fn(ParquetError) -> ColumnarError + '_ {
    move |e| ColumnarError::Decode {
        path: path.to_path_buf(),
        format: Format::Parquet.name(),
        message: e.to_string(),
    }
}

fn arrow_error(path: &Path, format: Format) -> impl Fn(ArrowError) -> ColumnarError + '_ {
    move |e| ColumnarError::Decode {
        path: path.to_path_buf(),
        format: format.name(),
        message: e.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// The schema: one table of columns drives the Arrow schema, the writer and the reader.

/// How one `SignIn` field is stored.
enum Kind {
    /// Utf8, never null: an interned field, or one of the per-sign-in ids.
    Text(fn(&SignIn) -> &str, Set),
    /// List<Utf8>, never null, no null items.
    TextList(fn(&SignIn) -> &[Ustr], fn(&mut SignIn, Vec<Ustr>)),
    /// Utf8 holding a vocabulary word (or an IP address); null when the field is `None`.
    Word {
        nullable: bool,
        /// Writes the word into the (empty) buffer; false when the field is `None`.
        get: fn(&SignIn, &mut String) -> bool,
        set: fn(&mut SignIn, &str) -> Result<(), &'static str>,
    },
    /// Boolean; `nullable` when the field is an `Option<bool>`.
    Bool {
        nullable: bool,
        get: fn(&SignIn) -> Option<bool>,
        set: fn(&mut SignIn, Option<bool>),
    },
    /// `error_code`.
    Int64,
    /// `created_at`: Timestamp(Nanosecond, "UTC"), never null.
    Time,
    /// `applied_policies`: List<Struct>.
    Policies,
}

/// How a text column is stored into a `SignIn`.
#[derive(Clone, Copy)]
enum Set {
    /// An interned field: read as a dictionary from Parquet, each distinct value interned once.
    Interned(fn(&mut SignIn, Ustr)),
    /// A per-sign-in id, copied.
    Unique(fn(&mut SignIn, &str)),
}

struct Column {
    name: &'static str,
    kind: Kind,
}

/// An interned (`Ustr`) text field.
macro_rules! text {
    ($name:literal, $($f:ident).+) => {
        Column {
            name: $name,
            kind: Kind::Text(|s| s.$($f).+.as_str(), Set::Interned(|s, v| s.$($f).+ = v)),
        }
    };
}

/// A per-sign-in id (`String`, not interned).
macro_rules! unique {
    ($name:literal, $f:ident) => {
        Column {
            name: $name,
            kind: Kind::Text(|s| &s.$f, Set::Unique(|s, v| s.$f = v.to_owned())),
        }
    };
}

macro_rules! list {
    ($name:literal, $f:ident) => {
        Column {
            name: $name,
            kind: Kind::TextList(|s| &s.$f, |s, v| s.$f = v),
        }
    };
}

macro_rules! bool_col {
    ($name:literal, $($f:ident).+, required) => {
        Column {
            name: $name,
            kind: Kind::Bool {
                nullable: false,
                get: |s| Some(s.$($f).+),
                set: |s, v| s.$($f).+ = v.unwrap_or_default(),
            },
        }
    };
    ($name:literal, $($f:ident).+, optional) => {
        Column {
            name: $name,
            kind: Kind::Bool {
                nullable: true,
                get: |s| s.$($f).+,
                set: |s, v| s.$($f).+ = v,
            },
        }
    };
}

macro_rules! risk {
    ($name:literal, $f:ident) => {
        Column {
            name: $name,
            kind: Kind::Word {
                nullable: true,
                get: |s, out| s.$f.map(|r| out.push_str(r.as_str())).is_some(),
                set: |s, v| {
                    s.$f = Some(
                        RiskLevel::parse(v)
                            .ok_or("not a risk level (none, low, medium, high, hidden)")?,
                    );
                    Ok(())
                },
            },
        }
    };
}

/// Every column of schema `signin/1`, in `SignIn` field order.
const COLUMNS: &[Column] = &[
    unique!("id", id),
    Column {
        name: "created_at",
        kind: Kind::Time,
    },
    text!("user_id", user_id),
    text!("user_principal_name", user_principal_name),
    text!("user_display_name", user_display_name),
    text!("user_type", user_type),
    text!("home_tenant_id", home_tenant_id),
    text!("resource_tenant_id", resource_tenant_id),
    text!("cross_tenant_access_type", cross_tenant_access_type),
    text!("app_id", app_id),
    text!("app_display_name", app_display_name),
    text!("resource_id", resource_id),
    text!("resource_display_name", resource_display_name),
    list!("audiences", audiences),
    Column {
        name: "ip_address",
        kind: Kind::Word {
            nullable: true,
            get: |s, out| {
                use std::fmt::Write;
                // Writing to a String cannot fail.
                s.ip_address.map(|ip| write!(out, "{ip}")).is_some()
            },
            set: |s, v| {
                s.ip_address = Some(v.parse().map_err(|_| "not an IP address")?);
                Ok(())
            },
        },
    },
    text!("country", country),
    text!("client_app_used", client_app_used),
    text!("user_agent", user_agent),
    text!("device_id", device.device_id),
    text!("device_display_name", device.display_name),
    text!("device_operating_system", device.operating_system),
    text!("device_browser", device.browser),
    bool_col!("device_is_compliant", device.is_compliant, optional),
    bool_col!("device_is_managed", device.is_managed, optional),
    text!("device_trust_type", device.trust_type),
    bool_col!("is_interactive", is_interactive, required),
    Column {
        name: "event_type",
        kind: Kind::Word {
            nullable: false,
            get: |s, out| {
                out.push_str(s.event_type.as_str());
                true
            },
            set: |s, v| {
                s.event_type = EventType::parse(v).ok_or(
                    "not an event type (interactiveUser, nonInteractiveUser, servicePrincipal, managedIdentity)",
                )?;
                Ok(())
            },
        },
    },
    text!("service_principal_id", service_principal_id),
    risk!("sign_in_risk", sign_in_risk),
    risk!("risk_level_aggregated", risk_level_aggregated),
    Column {
        name: "error_code",
        kind: Kind::Int64,
    },
    text!("failure_reason", failure_reason),
    text!("authentication_requirement", authentication_requirement),
    bool_col!("mfa_satisfied", mfa_satisfied, required),
    list!("authentication_methods", authentication_methods),
    Column {
        name: "transfer_method",
        kind: Kind::Word {
            nullable: true,
            get: |s, out| {
                s.transfer_method
                    .map(|t| out.push_str(t.as_str()))
                    .is_some()
            },
            set: |s, v| {
                s.transfer_method = Some(
                    TransferMethod::parse(v)
                        .ok_or("not a transfer method (deviceCodeFlow, authenticationTransfer)")?,
                );
                Ok(())
            },
        },
    },
    list!("auth_context", auth_context),
    bool_col!(
        "through_global_secure_access",
        through_global_secure_access,
        optional
    ),
    unique!("session_id", session_id),
    unique!("correlation_id", correlation_id),
    Column {
        name: "applied_policies",
        kind: Kind::Policies,
    },
];

fn text_list_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
}

fn time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

/// The fields of one `applied_policies` entry.
fn policy_fields() -> Fields {
    policy_fields_as(DataType::Utf8)
}

/// The fields of one `applied_policies` entry, with `text` for its id, name and result.
fn policy_fields_as(text: DataType) -> Fields {
    Fields::from(vec![
        Field::new("id", text.clone(), false),
        Field::new("display_name", text.clone(), false),
        Field::new("result", text, false),
        Field::new("enforced_grant_controls", text_list_type(), false),
        Field::new("conditions_satisfied", DataType::UInt32, true),
        Field::new("conditions_not_satisfied", DataType::UInt32, true),
    ])
}

fn policies_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(
        DataType::Struct(policy_fields()),
        true,
    )))
}

impl Column {
    fn data_type(&self) -> DataType {
        match self.kind {
            Kind::Text(..) | Kind::Word { .. } => DataType::Utf8,
            Kind::TextList(..) => text_list_type(),
            Kind::Bool { .. } => DataType::Boolean,
            Kind::Int64 => DataType::Int64,
            Kind::Time => time_type(),
            Kind::Policies => policies_type(),
        }
    }

    fn nullable(&self) -> bool {
        matches!(
            self.kind,
            Kind::Word { nullable: true, .. } | Kind::Bool { nullable: true, .. }
        )
    }
}

/// A dictionary of strings: how the Parquet reader is asked for interned columns, so each
/// distinct value of a row group is decoded and interned once instead of once per row.
fn dictionary_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// The schema the Parquet reader decodes into: the file's own (checked to be ours), with the
/// interned text columns (top-level, and the applied policies' id, name and result) as
/// dictionaries; names, nullability and metadata as the file has them.
fn read_schema(file: &Schema) -> SchemaRef {
    let as_dictionary = |f: &Field| match f.data_type() {
        DataType::Utf8 => Arc::new(f.clone().with_data_type(dictionary_type())),
        // A list of text: its items as a dictionary.
        DataType::List(item) if *item.data_type() == DataType::Utf8 => {
            let item = item.as_ref().clone().with_data_type(dictionary_type());
            Arc::new(f.clone().with_data_type(DataType::List(Arc::new(item))))
        }
        _ => Arc::new(f.clone()),
    };
    let fields: Vec<Arc<Field>> = file
        .fields()
        .iter()
        .map(|f| {
            let column = COLUMNS.iter().find(|c| c.name == f.name());
            match (column.map(|c| &c.kind), f.data_type()) {
                (Some(Kind::Text(_, Set::Interned(_))), DataType::Utf8) => as_dictionary(f),
                (Some(Kind::TextList(..)), DataType::List(_)) => as_dictionary(f),
                (Some(Kind::Policies), DataType::List(item)) => match item.data_type() {
                    DataType::Struct(children) => {
                        let children: Fields = children
                            .iter()
                            .map(|c| match c.name().as_str() {
                                "id" | "display_name" | "result" | "enforced_grant_controls" => {
                                    as_dictionary(c)
                                }
                                _ => c.clone(),
                            })
                            .collect();
                        let item = item
                            .as_ref()
                            .clone()
                            .with_data_type(DataType::Struct(children));
                        Arc::new(
                            f.as_ref()
                                .clone()
                                .with_data_type(DataType::List(Arc::new(item))),
                        )
                    }
                    _ => f.clone(),
                },
                _ => f.clone(),
            }
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, file.metadata().clone()))
}

/// The Arrow schema of sign-in files, with the version in its metadata.
pub fn schema() -> SchemaRef {
    let fields: Vec<Field> = COLUMNS
        .iter()
        .map(|c| Field::new(c.name, c.data_type(), c.nullable()))
        .collect();
    let metadata = [(SCHEMA_KEY, SCHEMA_VERSION)];
    Arc::new(Schema::new_with_metadata(fields, metadata))
}

/// Refuses a file whose schema version is not ours, or whose columns do not have our types
/// (names and types; nullability and nested field names are not compared, a null is a row
/// diagnostic instead).
fn check_schema(path: &Path, found: &Schema) -> Result<(), ColumnarError> {
    match found.metadata().get(SCHEMA_KEY) {
        Some(v) if v == SCHEMA_VERSION => {}
        Some(v) => {
            return Err(ColumnarError::SchemaVersion {
                path: path.to_path_buf(),
                found: format!("has sign-in schema `{v}`"),
            })
        }
        None => {
            return Err(ColumnarError::SchemaVersion {
                path: path.to_path_buf(),
                found: format!("has no `{SCHEMA_KEY}` entry in its schema metadata"),
            })
        }
    }
    for c in COLUMNS {
        let column_error = |why: String| ColumnarError::Column {
            path: path.to_path_buf(),
            column: c.name.to_owned(),
            why,
        };
        let field = found
            .field_with_name(c.name)
            .map_err(|_| column_error("is missing".to_owned()))?;
        if !same_shape(field.data_type(), &c.data_type()) {
            return Err(column_error(format!(
                "is {}, expected {}",
                field.data_type(),
                c.data_type()
            )));
        }
    }
    Ok(())
}

fn same_shape(a: &DataType, b: &DataType) -> bool {
    match (a, b) {
        (DataType::List(x), DataType::List(y)) => same_shape(x.data_type(), y.data_type()),
        (DataType::Struct(x), DataType::Struct(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|(x, y)| x.name() == y.name() && same_shape(x.data_type(), y.data_type()))
        }
        (DataType::Timestamp(u, Some(z)), DataType::Timestamp(v, Some(w))) => {
            u == v && z.eq_ignore_ascii_case(w)
        }
        _ => a == b,
    }
}

// ---------------------------------------------------------------------------------------------
// Writing.

/// Builds the columns of one record batch.
enum Builder {
    Text(StringBuilder),
    TextList(ListBuilder<StringBuilder>),
    Bool(BooleanBuilder),
    Int64(Int64Builder),
    Time(TimestampNanosecondBuilder),
    Policies(Box<PolicyBuilder>),
}

/// `applied_policies` of many sign-ins: the struct's children and the list lengths.
struct PolicyBuilder {
    lengths: Vec<usize>,
    id: StringBuilder,
    display_name: StringBuilder,
    result: StringBuilder,
    grants: ListBuilder<StringBuilder>,
    satisfied: UInt32Builder,
    not_satisfied: UInt32Builder,
}

impl PolicyBuilder {
    /// Room for `rows` sign-ins with `items` policies between them, `bytes` of text per text
    /// field.
    fn with_capacity(rows: usize, items: usize, bytes: [usize; 4]) -> PolicyBuilder {
        PolicyBuilder {
            lengths: Vec::with_capacity(rows),
            id: StringBuilder::with_capacity(items, bytes[0]),
            display_name: StringBuilder::with_capacity(items, bytes[1]),
            result: StringBuilder::with_capacity(items, bytes[2]),
            grants: ListBuilder::with_capacity(
                StringBuilder::with_capacity(items, bytes[3]),
                items,
            ),
            satisfied: UInt32Builder::with_capacity(items),
            not_satisfied: UInt32Builder::with_capacity(items),
        }
    }

    /// Rows, items and text bytes so far (see `with_capacity`).
    fn size(&self) -> (usize, usize, [usize; 4]) {
        (
            self.lengths.len(),
            self.id.len(),
            [
                self.id.values_slice().len(),
                self.display_name.values_slice().len(),
                self.result.values_slice().len(),
                self.grants.values_ref().values_slice().len(),
            ],
        )
    }

    fn push(&mut self, policies: &[AppliedPolicy]) {
        self.lengths.push(policies.len());
        for p in policies {
            self.id.append_value(p.id);
            self.display_name.append_value(p.display_name);
            self.result.append_value(p.result);
            push_list(&mut self.grants, &p.enforced_grant_controls);
            self.satisfied.append_option(p.conditions_satisfied);
            self.not_satisfied.append_option(p.conditions_not_satisfied);
        }
    }

    fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        let children: Vec<ArrayRef> = vec![
            Arc::new(self.id.finish()),
            Arc::new(self.display_name.finish()),
            Arc::new(self.result.finish()),
            Arc::new(self.grants.finish()),
            Arc::new(self.satisfied.finish()),
            Arc::new(self.not_satisfied.finish()),
        ];
        let values = StructArray::try_new(policy_fields(), children, None)?;
        let offsets = OffsetBuffer::<i32>::from_lengths(std::mem::take(&mut self.lengths));
        let item = Arc::new(Field::new_list_field(
            DataType::Struct(policy_fields()),
            true,
        ));
        Ok(Arc::new(ListArray::try_new(
            item,
            offsets,
            Arc::new(values),
            None,
        )?))
    }
}

fn push_list(b: &mut ListBuilder<StringBuilder>, items: &[Ustr]) {
    for x in items {
        b.values().append_value(x.as_str());
    }
    b.append(true);
}

/// Rows per block that [`Builder::push`] takes column by column: the block's sign-ins stay in
/// cache while each column's values are appended.
const PUSH_BLOCK: usize = 512;

impl Builder {
    /// An empty builder for `c`, with room for `rows` rows; `hint` is the size of the batch
    /// before (as [`Builder::size`] gives it), so that the buffers are allocated once at
    /// their final size instead of grown by doubling, for every batch.
    fn new(c: &Column, rows: usize, hint: Option<(usize, usize, [usize; 4])>) -> Builder {
        let (items, bytes) = match hint {
            // Scaled from the rows of the batch before to `rows`, with an eighth to spare.
            Some((n, items, bytes)) if n > 0 => {
                let scale = |x: usize| (x / n + 1) * rows + (x / n + 1) * rows / 8;
                (scale(items), bytes.map(scale))
            }
            _ => (0, [0; 4]),
        };
        match c.kind {
            Kind::Text(..) | Kind::Word { .. } => {
                Builder::Text(StringBuilder::with_capacity(rows, bytes[0]))
            }
            Kind::TextList(..) => Builder::TextList(ListBuilder::with_capacity(
                StringBuilder::with_capacity(items, bytes[0]),
                rows,
            )),
            Kind::Bool { .. } => Builder::Bool(BooleanBuilder::with_capacity(rows)),
            Kind::Int64 => Builder::Int64(Int64Builder::with_capacity(rows)),
            Kind::Time => {
                Builder::Time(TimestampNanosecondBuilder::with_capacity(rows).with_timezone("UTC"))
            }
            Kind::Policies => {
                Builder::Policies(Box::new(PolicyBuilder::with_capacity(rows, items, bytes)))
            }
        }
    }

    /// Rows, list items and text bytes appended so far: the hint for the next batch's builder.
    fn size(&self) -> (usize, usize, [usize; 4]) {
        match self {
            Builder::Text(b) => (b.len(), 0, [b.values_slice().len(), 0, 0, 0]),
            Builder::TextList(b) => (
                b.len(),
                b.values_ref().len(),
                [b.values_ref().values_slice().len(), 0, 0, 0],
            ),
            Builder::Bool(b) => (b.len(), 0, [0; 4]),
            Builder::Int64(b) => (b.len(), 0, [0; 4]),
            Builder::Time(b) => (b.len(), 0, [0; 4]),
            Builder::Policies(b) => b.size(),
        }
    }

    /// Appends the sign-ins' values; `nanos` are their `created_at`, checked by the caller;
    /// `word` is scratch space.
    fn push(&mut self, c: &Column, rows: &[SignIn], nanos: &[i64], word: &mut String) {
        match (self, &c.kind) {
            (Builder::Text(b), Kind::Text(get, _)) => {
                for s in rows {
                    b.append_value(get(s));
                }
            }
            (Builder::Text(b), Kind::Word { get, .. }) => {
                for s in rows {
                    word.clear();
                    if get(s, word) {
                        b.append_value(&*word);
                    } else {
                        b.append_null();
                    }
                }
            }
            (Builder::TextList(b), Kind::TextList(get, _)) => {
                for s in rows {
                    push_list(b, get(s));
                }
            }
            (Builder::Bool(b), Kind::Bool { get, .. }) => {
                for s in rows {
                    b.append_option(get(s));
                }
            }
            (Builder::Int64(b), _) => {
                for s in rows {
                    b.append_value(s.error_code);
                }
            }
            (Builder::Time(b), _) => b.append_slice(nanos),
            (Builder::Policies(b), _) => {
                for s in rows {
                    b.push(&s.applied_policies);
                }
            }
            // `Builder::new` pairs each builder with its column's kind.
            _ => {}
        }
    }

    fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        Ok(match self {
            Builder::Text(b) => Arc::new(b.finish()),
            Builder::TextList(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Int64(b) => Arc::new(b.finish()),
            Builder::Time(b) => Arc::new(b.finish()),
            Builder::Policies(b) => b.finish()?,
        })
    }
}

enum Sink {
    Parquet(Box<ArrowWriter<BufWriter<File>>>),
    Ipc(Box<arrow_ipc::writer::FileWriter<BufWriter<File>>>),
}

/// What [`SignInWriter::finish`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub rows: u64,
    pub bytes: u64,
}

/// Streams sign-ins into a Parquet or Arrow IPC file, [`ROWS_PER_GROUP`] rows per row group
/// or record batch. The file appears at its path only when [`SignInWriter::finish`] succeeds
/// (it is written beside it under a hidden name, then renamed), so a crash never leaves half
/// a file where `run` would read it.
pub struct SignInWriter {
    path: PathBuf,
    temp: PathBuf,
    schema: SchemaRef,
    sink: Option<Sink>,
    builders: Vec<Builder>,
    pending: usize,
    rows: u64,
    /// Scratch: the `created_at` of the rows being appended, and a word column's text.
    nanos: Vec<i64>,
    word: String,
}

impl SignInWriter {
    pub fn create(path: &Path, format: Format) -> Result<SignInWriter, ColumnarError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = path.with_file_name(format!(".{name}.partial"));
        let file = BufWriter::new(File::create(&temp).map_err(io(&temp))?);
        let schema = schema();
        let encode = |message: String| ColumnarError::Encode {
            path: path.to_path_buf(),
            message,
        };
        let sink = match format {
            Format::Parquet => {
                let mut props = WriterProperties::builder()
                    .set_compression(Compression::SNAPPY)
                    .set_max_row_group_row_count(Some(ROWS_PER_GROUP))
                    .set_created_by(format!("ca-replay {}", env!("CARGO_PKG_VERSION")))
                    // Statistics for the time column only: min/max of ids and names cost a
                    // comparison per value, and nothing skips a row group by them.
                    .set_statistics_enabled(EnabledStatistics::None)
                    .set_column_statistics_enabled(
                        ColumnPath::from("created_at"),
                        EnabledStatistics::Page,
                    );
                // A per-sign-in id never repeats: a dictionary for it is hashed and then
                // dropped at the size limit.
                for c in COLUMNS {
                    if let Kind::Text(_, Set::Unique(_)) = c.kind {
                        props =
                            props.set_column_dictionary_enabled(ColumnPath::from(c.name), false);
                    }
                }
                let props = props.build();
                let w = ArrowWriter::try_new(file, schema.clone(), Some(props))
                    .map_err(|e| encode(e.to_string()))?;
                Sink::Parquet(Box::new(w))
            }
            Format::ArrowIpc => Sink::Ipc(Box::new(
                arrow_ipc::writer::FileWriter::try_new(file, &schema)
                    .map_err(|e| encode(e.to_string()))?,
            )),
        };
        Ok(SignInWriter {
            path: path.to_path_buf(),
            temp,
            schema,
            sink: Some(sink),
            // The first batch grows its buffers; later ones are sized from the one before.
            builders: COLUMNS
                .iter()
                .map(|c| Builder::new(c, ROWS_PER_GROUP, None))
                .collect(),
            pending: 0,
            rows: 0,
            nanos: Vec::with_capacity(PUSH_BLOCK),
            word: String::new(),
        })
    }

    /// Appends sign-ins; every [`ROWS_PER_GROUP`] rows become one row group / record batch.
    pub fn write(&mut self, signins: &[SignIn]) -> Result<(), ColumnarError> {
        let mut rest = signins;
        while !rest.is_empty() {
            let take = rest
                .len()
                .min(ROWS_PER_GROUP - self.pending)
                .min(PUSH_BLOCK);
            let (block, later) = rest.split_at(take);
            self.nanos.clear();
            for s in block {
                self.nanos.push(nanos(&self.path, s)?);
            }
            for (b, c) in self.builders.iter_mut().zip(COLUMNS) {
                b.push(c, block, &self.nanos, &mut self.word);
            }
            self.pending += take;
            if self.pending == ROWS_PER_GROUP {
                self.flush()?;
            }
            rest = later;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ColumnarError> {
        if self.pending == 0 {
            return Ok(());
        }
        let encode = |e: String| ColumnarError::Encode {
            path: self.path.clone(),
            message: e,
        };
        let sizes: Vec<_> = self.builders.iter().map(Builder::size).collect();
        let columns = self
            .builders
            .iter_mut()
            .map(Builder::finish)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| encode(e.to_string()))?;
        let batch = RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| encode(e.to_string()))?;
        match &mut self.sink {
            Some(Sink::Parquet(w)) => {
                w.write(&batch).map_err(|e| encode(e.to_string()))?;
                // One batch is one row group: close it now rather than when the next begins.
                w.flush().map_err(|e| encode(e.to_string()))?;
            }
            Some(Sink::Ipc(w)) => w.write(&batch).map_err(|e| encode(e.to_string()))?,
            None => {}
        }
        // The next batch's buffers at their final size, allocated once this batch's are freed
        // (so the allocator can hand the same memory back).
        drop(batch);
        for ((b, c), size) in self.builders.iter_mut().zip(COLUMNS).zip(sizes) {
            *b = Builder::new(c, ROWS_PER_GROUP, Some(size));
        }
        self.rows += self.pending as u64;
        self.pending = 0;
        Ok(())
    }

    /// Writes what is pending and the footer, then moves the file into place.
    pub fn finish(mut self) -> Result<Written, ColumnarError> {
        self.flush()?;
        let encode = |e: String| ColumnarError::Encode {
            path: self.path.clone(),
            message: e,
        };
        let buffered = match self.sink.take() {
            Some(Sink::Parquet(w)) => w.into_inner().map_err(|e| encode(e.to_string()))?,
            Some(Sink::Ipc(mut w)) => {
                w.finish().map_err(|e| encode(e.to_string()))?;
                w.into_inner().map_err(|e| encode(e.to_string()))?
            }
            None => return Err(encode("the writer was already finished".into())),
        };
        let file = buffered
            .into_inner()
            .map_err(|e| encode(e.error().to_string()))?;
        file.sync_all().map_err(io(&self.temp))?;
        drop(file);
        std::fs::rename(&self.temp, &self.path).map_err(io(&self.path))?;
        let bytes = std::fs::metadata(&self.path).map_err(io(&self.path))?.len();
        Ok(Written {
            rows: self.rows,
            bytes,
        })
    }
}

impl Drop for SignInWriter {
    fn drop(&mut self) {
        // Not finished (an error, or dropped early): leave nothing behind.
        if self.sink.is_some() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

fn nanos(path: &Path, s: &SignIn) -> Result<i64, ColumnarError> {
    s.created_at
        .timestamp_nanos_opt()
        .ok_or_else(|| ColumnarError::Timestamp {
            path: path.to_path_buf(),
            id: s.id.clone(),
            value: s.created_at.to_rfc3339(),
        })
}

/// Writes sign-ins to one file in one go.
pub fn write(path: &Path, format: Format, signins: &[SignIn]) -> Result<Written, ColumnarError> {
    let mut w = SignInWriter::create(path, format)?;
    w.write(signins)?;
    w.finish()
}

// ---------------------------------------------------------------------------------------------
// Reading.

/// The sign-ins of one file, in file order, and the rows that could not be read.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Rows in the file, read or not.
    pub rows: usize,
    pub signins: Vec<SignIn>,
    pub skipped: Vec<Diagnostic>,
}

impl Decoded {
    /// Appends the next part of the same file; its row numbers continue ours.
    fn append(&mut self, mut part: Decoded) {
        for d in &mut part.skipped {
            d.record += self.rows;
        }
        self.rows += part.rows;
        if self.signins.is_empty() && self.signins.capacity() < part.signins.len() {
            // Take the part's vector rather than copy it (a SignIn is over a kilobyte).
            std::mem::swap(&mut self.signins, &mut part.signins);
        } else {
            self.signins.append(&mut part.signins);
        }
        self.skipped.append(&mut part.skipped);
    }
}

/// Reads a Parquet or Arrow IPC sign-in file (the format from its magic bytes) whole.
pub fn read(path: &Path) -> Result<Decoded, ColumnarError> {
    let mut out = Decoded::default();
    read_parts(path, &mut |part: Decoded| -> Result<(), ColumnarError> {
        // `read_parts` numbered the part's rows already.
        out.rows += part.rows;
        out.signins.extend(part.signins);
        out.skipped.extend(part.skipped);
        Ok(())
    })?;
    Ok(out)
}

pub(super) fn not_columnar(path: &Path, format: Format) -> ColumnarError {
    ColumnarError::NotColumnar {
        path: path.to_path_buf(),
        format: format.name(),
        magic: match format {
            Format::Parquet => "PAR1",
            Format::ArrowIpc => "ARROW1",
        },
    }
}

/// Reads a Parquet or Arrow IPC sign-in file in parts (its row groups, or its record batches),
/// a few decoded at a time in parallel, handing each part to `on_part` in file order; the row
/// numbers of its diagnostics continue across parts. Memory stays bounded by a few parts.
pub fn read_parts<E: From<ColumnarError>>(
    path: &Path,
    on_part: &mut dyn FnMut(Decoded) -> Result<(), E>,
) -> Result<(), E> {
    match Format::sniff(path)? {
        Some(Format::Parquet) => parquet_parts(path, on_part),
        Some(Format::ArrowIpc) => ipc_parts(path, on_part),
        None => {
            let format = Format::from_extension(path).unwrap_or(Format::Parquet);
            Err(not_columnar(path, format).into())
        }
    }
}

/// Decodes parts `0..count` with `decode_part`, a window of them at a time in parallel, and
/// hands them to `on_part` in order, renumbering their diagnostics.
fn in_windows<E: From<ColumnarError>>(
    count: usize,
    decode_part: impl Fn(usize) -> Result<Decoded, ColumnarError> + Sync,
    on_part: &mut dyn FnMut(Decoded) -> Result<(), E>,
) -> Result<(), E> {
    let window = rayon::current_num_threads().max(1) * 2;
    let mut rows = 0;
    let mut start = 0;
    while start < count {
        let end = (start + window).min(count);
        let parts = (start..end)
            .into_par_iter()
            .map(&decode_part)
            .collect::<Result<Vec<_>, ColumnarError>>()?;
        for mut part in parts {
            for d in &mut part.skipped {
                d.record += rows;
            }
            rows += part.rows;
            on_part(part)?;
        }
        start = end;
    }
    Ok(())
}

fn parquet_parts<E: From<ColumnarError>>(
    path: &Path,
    on_part: &mut dyn FnMut(Decoded) -> Result<(), E>,
) -> Result<(), E> {
    let file = File::open(path).map_err(io(path))?;
    let meta =
        ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).map_err(parquet_error(path))?;
    check_schema(path, meta.schema())?;
    let meta = ArrowReaderMetadata::try_new(
        meta.metadata().clone(),
        ArrowReaderOptions::new().with_schema(read_schema(meta.schema())),
    )
    .map_err(parquet_error(path))?;
    let groups = meta.metadata().num_row_groups();
    let decode_group = |g: usize| {
        // Each task opens the file itself: clones of one handle would share its offset.
        let file = File::open(path).map_err(io(path))?;
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta.clone())
            .with_row_groups(vec![g])
            .with_batch_size(DECODE_BATCH)
            .build()
            .map_err(parquet_error(path))?;
        let mut out = Decoded::default();
        for batch in reader {
            let batch = batch.map_err(arrow_error(path, Format::Parquet))?;
            out.append(decode(path, &batch)?);
        }
        Ok(out)
    };
    in_windows(groups, decode_group, on_part)
}

fn ipc_parts<E: From<ColumnarError>>(
    path: &Path,
    on_part: &mut dyn FnMut(Decoded) -> Result<(), E>,
) -> Result<(), E> {
    let open = || -> Result<_, ColumnarError> {
        let file = BufReader::new(File::open(path).map_err(io(path))?);
        arrow_ipc::reader::FileReader::try_new(file, None)
            .map_err(arrow_error(path, Format::ArrowIpc))
    };
    let reader = open()?;
    check_schema(path, &reader.schema())?;
    let batches = reader.num_batches();
    drop(reader);
    let decode_batch = |i: usize| {
        let mut reader = open()?;
        reader
            .set_index(i)
            .map_err(arrow_error(path, Format::ArrowIpc))?;
        match reader.next() {
            Some(batch) => decode(path, &batch.map_err(arrow_error(path, Format::ArrowIpc))?),
            None => Ok(Decoded::default()),
        }
    };
    in_windows(batches, decode_batch, on_part)
}

/// Why one row cannot be a `SignIn`: (field, value, why). The first problem of a row wins.
type RowError = (&'static str, String, &'static str);

/// Decodes one record batch; diagnostics are numbered from 1 within the batch.
fn decode(path: &Path, batch: &RecordBatch) -> Result<Decoded, ColumnarError> {
    let n = batch.num_rows();
    let mut rows = vec![SignIn::default(); n];
    let mut bad: Vec<Option<RowError>> = vec![None; n];
    for c in COLUMNS {
        let array = batch
            .column_by_name(c.name)
            .ok_or_else(|| ColumnarError::Column {
                path: path.to_path_buf(),
                column: c.name.to_owned(),
                why: "is missing".to_owned(),
            })?;
        fill(path, c, array.as_ref(), &mut rows, &mut bad)?;
    }
    let mut out = Decoded {
        rows: n,
        ..Decoded::default()
    };
    for (i, (mut s, b)) in rows.into_iter().zip(bad).enumerate() {
        let b = b.or_else(|| required(&s));
        match b {
            Some((field, value, why)) => out.skipped.push(Diagnostic {
                file: path.to_path_buf(),
                record: i + 1,
                line: None,
                field: field.to_owned(),
                value,
                why: why.to_owned(),
            }),
            None => {
                // Derived exactly as the Graph reader derives them.
                s.derive();
                out.signins.push(s);
            }
        }
    }
    Ok(out)
}

/// What the Graph reader also requires of every record.
fn required(s: &SignIn) -> Option<RowError> {
    if s.id.is_empty() {
        return Some(("id", String::new(), "missing: every sign-in needs an id"));
    }
    if s.user_id.is_empty() && !s.event_type.is_workload() {
        return Some((
            "user_id",
            String::new(),
            "missing: a user sign-in needs a userId",
        ));
    }
    None
}

fn mark(bad: &mut Option<RowError>, e: RowError) {
    if bad.is_none() {
        *bad = Some(e);
    }
}

const NULL: &str = "null where a value is required";

fn downcast<'a, T: 'static>(
    path: &Path,
    c: &Column,
    a: &'a dyn Array,
) -> Result<&'a T, ColumnarError> {
    a.as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| ColumnarError::Column {
            path: path.to_path_buf(),
            column: c.name.to_owned(),
            why: format!("is {}, expected {}", a.data_type(), c.data_type()),
        })
}

/// Sets one column of every row.
fn fill(
    path: &Path,
    c: &Column,
    array: &dyn Array,
    rows: &mut [SignIn],
    bad: &mut [Option<RowError>],
) -> Result<(), ColumnarError> {
    match &c.kind {
        Kind::Text(_, set) => {
            let text = TextColumn::new(path, c, array)?;
            for (i, s) in rows.iter_mut().enumerate() {
                match (text.get(i), set) {
                    (None, _) => mark(&mut bad[i], (c.name, "null".into(), NULL)),
                    (Some(v), Set::Interned(set)) => set(s, v.interned()),
                    (Some(v), Set::Unique(set)) => set(s, v.as_str()),
                }
            }
        }
        Kind::Word { nullable, set, .. } => {
            let a = downcast::<StringArray>(path, c, array)?;
            for (i, s) in rows.iter_mut().enumerate() {
                if a.is_null(i) {
                    if !nullable {
                        mark(&mut bad[i], (c.name, "null".into(), NULL));
                    }
                } else if let Err(why) = set(s, a.value(i)) {
                    mark(&mut bad[i], (c.name, quoted(a.value(i)), why));
                }
            }
        }
        Kind::TextList(_, set) => {
            let a = downcast::<ListArray>(path, c, array)?;
            let values = TextColumn::new(path, c, a.values().as_ref())?;
            for (i, s) in rows.iter_mut().enumerate() {
                match strings(a, &values, i) {
                    Ok(v) => set(s, v),
                    Err(e) => mark(&mut bad[i], (c.name, e.0, e.1)),
                }
            }
        }
        Kind::Bool { nullable, set, .. } => {
            let a = downcast::<BooleanArray>(path, c, array)?;
            for (i, s) in rows.iter_mut().enumerate() {
                if a.is_null(i) && !nullable {
                    mark(&mut bad[i], (c.name, "null".into(), NULL));
                } else {
                    set(s, (!a.is_null(i)).then(|| a.value(i)));
                }
            }
        }
        Kind::Int64 => {
            let a = downcast::<Int64Array>(path, c, array)?;
            for (i, s) in rows.iter_mut().enumerate() {
                if a.is_null(i) {
                    mark(&mut bad[i], (c.name, "null".into(), NULL));
                } else {
                    s.error_code = a.value(i);
                }
            }
        }
        Kind::Time => {
            let a = downcast::<TimestampNanosecondArray>(path, c, array)?;
            for (i, s) in rows.iter_mut().enumerate() {
                if a.is_null(i) {
                    mark(&mut bad[i], (c.name, "null".into(), NULL));
                } else {
                    s.created_at = DateTime::<Utc>::from_timestamp_nanos(a.value(i));
                }
            }
        }
        Kind::Policies => fill_policies(path, c, array, rows, bad)?,
    }
    Ok(())
}

/// A text column as read: plain strings (Arrow IPC, the unique ids) or a dictionary whose
/// values are interned once per dictionary (Parquet's interned columns; see [`interned`]).
enum TextColumn<'a> {
    Plain(&'a StringArray),
    Dictionary {
        keys: &'a Int32Array,
        values: Arc<[Ustr]>,
    },
}

/// Dictionaries interned lately on this thread, each with its values array, held so that its
/// buffers (whose addresses identify it) stay alive while cached.
struct Dictionaries(Vec<(ArrayRef, Arc<[Ustr]>)>);

/// How many dictionaries a thread keeps: a few row groups' worth of interned columns.
const DICTIONARIES_KEPT: usize = 64;

thread_local! {
    static DICTIONARIES: std::cell::RefCell<Dictionaries> =
        const { std::cell::RefCell::new(Dictionaries(Vec::new())) };
}

/// The interned values of a dictionary. A Parquet column chunk's dictionary comes back with
/// every record batch decoded from the chunk (a row group is decoded in several batches): it
/// is interned once, not once per batch (for a column with a value per user, that is most of
/// the dictionary each time).
fn interned(values_ref: &ArrayRef, values: &StringArray) -> Arc<[Ustr]> {
    let same = |held: &ArrayRef| {
        Arc::ptr_eq(held, values_ref) || held.to_data().ptr_eq(&values_ref.to_data())
    };
    DICTIONARIES.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some((_, found)) = cache.0.iter().find(|(held, _)| same(held)) {
            return found.clone();
        }
        let fresh: Arc<[Ustr]> = (0..values.len())
            .map(|j| Ustr::from(values.value(j)))
            .collect();
        if cache.0.len() == DICTIONARIES_KEPT {
            cache.0.remove(0);
        }
        cache.0.push((values_ref.clone(), fresh.clone()));
        fresh
    })
}

/// One value of a [`TextColumn`].
enum TextValue<'a> {
    Str(&'a str),
    Sym(Ustr),
}

impl TextValue<'_> {
    fn interned(&self) -> Ustr {
        match self {
            TextValue::Str(s) => Ustr::from(s),
            TextValue::Sym(u) => *u,
        }
    }
    fn as_str(&self) -> &str {
        match self {
            TextValue::Str(s) => s,
            TextValue::Sym(u) => u.as_str(),
        }
    }
}

impl<'a> TextColumn<'a> {
    fn new(path: &Path, c: &Column, a: &'a dyn Array) -> Result<TextColumn<'a>, ColumnarError> {
        if let Some(d) = a.as_any().downcast_ref::<DictionaryArray<Int32Type>>() {
            let values = downcast::<StringArray>(path, c, d.values().as_ref())?;
            return Ok(TextColumn::Dictionary {
                keys: d.keys(),
                values: interned(d.values(), values),
            });
        }
        Ok(TextColumn::Plain(downcast::<StringArray>(path, c, a)?))
    }

    /// Row `i`; `None` when null.
    fn get(&self, i: usize) -> Option<TextValue<'a>> {
        match self {
            TextColumn::Plain(a) => (!a.is_null(i)).then(|| TextValue::Str(a.value(i))),
            TextColumn::Dictionary { keys, values } => {
                if keys.is_null(i) {
                    return None;
                }
                values
                    .get(keys.value(i) as usize)
                    .map(|u| TextValue::Sym(*u))
            }
        }
    }
}

fn quoted(v: &str) -> String {
    let mut text: String = v.chars().take(80).collect();
    if text.len() < v.len() {
        text.push('…');
    }
    format!("\"{text}\"")
}

/// The strings of list `i`; a null list or item is an error (value, why).
fn strings(
    a: &ListArray,
    values: &TextColumn,
    i: usize,
) -> Result<Vec<Ustr>, (String, &'static str)> {
    if a.is_null(i) {
        return Err(("null".into(), NULL));
    }
    let offsets = a.value_offsets();
    let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
    (start..end)
        .map(|j| match values.get(j) {
            None => Err(("null".into(), "null item in a list")),
            Some(v) => Ok(v.interned()),
        })
        .collect()
}

/// The children of the `applied_policies` struct, downcast once.
struct PolicyColumns<'a> {
    id: TextColumn<'a>,
    display_name: TextColumn<'a>,
    result: TextColumn<'a>,
    grants: &'a ListArray,
    grant_values: TextColumn<'a>,
    satisfied: &'a UInt32Array,
    not_satisfied: &'a UInt32Array,
}

impl<'a> PolicyColumns<'a> {
    fn new(path: &Path, c: &Column, s: &'a StructArray) -> Result<Self, ColumnarError> {
        let child = |name: &str| -> Result<&'a dyn Array, ColumnarError> {
            s.column_by_name(name)
                .map(|a| a.as_ref())
                .ok_or_else(|| ColumnarError::Column {
                    path: path.to_path_buf(),
                    column: format!("{}.{name}", c.name),
                    why: "is missing".into(),
                })
        };
        let grants = downcast::<ListArray>(path, c, child("enforced_grant_controls")?)?;
        Ok(PolicyColumns {
            id: TextColumn::new(path, c, child("id")?)?,
            display_name: TextColumn::new(path, c, child("display_name")?)?,
            result: TextColumn::new(path, c, child("result")?)?,
            grant_values: TextColumn::new(path, c, grants.values().as_ref())?,
            grants,
            satisfied: downcast(path, c, child("conditions_satisfied")?)?,
            not_satisfied: downcast(path, c, child("conditions_not_satisfied")?)?,
        })
    }

    /// Entry `j` of the struct array.
    fn get(&self, j: usize) -> Result<AppliedPolicy, (&'static str, String, &'static str)> {
        let text = |a: &TextColumn, name: &'static str| match a.get(j) {
            None => Err((name, "null".to_owned(), NULL)),
            Some(v) => Ok(v.interned()),
        };
        let bits = |a: &UInt32Array| (!a.is_null(j)).then(|| a.value(j));
        Ok(AppliedPolicy {
            id: text(&self.id, "applied_policies.id")?,
            display_name: text(&self.display_name, "applied_policies.display_name")?,
            result: text(&self.result, "applied_policies.result")?,
            enforced_grant_controls: strings(self.grants, &self.grant_values, j)
                .map_err(|(v, why)| ("applied_policies.enforced_grant_controls", v, why))?,
            conditions_satisfied: bits(self.satisfied),
            conditions_not_satisfied: bits(self.not_satisfied),
        })
    }
}

fn fill_policies(
    path: &Path,
    c: &Column,
    array: &dyn Array,
    rows: &mut [SignIn],
    bad: &mut [Option<RowError>],
) -> Result<(), ColumnarError> {
    let list = downcast::<ListArray>(path, c, array)?;
    let structs = downcast::<StructArray>(path, c, list.values().as_ref())?;
    let cols = PolicyColumns::new(path, c, structs)?;
    let offsets = list.value_offsets();
    for (i, s) in rows.iter_mut().enumerate() {
        if list.is_null(i) {
            mark(&mut bad[i], (c.name, "null".into(), NULL));
            continue;
        }
        let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
        let mut policies = Vec::with_capacity(end - start);
        for j in start..end {
            if structs.is_null(j) {
                mark(&mut bad[i], (c.name, "null".into(), "null item in a list"));
                break;
            }
            match cols.get(j) {
                Ok(p) => policies.push(p),
                Err(e) => {
                    mark(&mut bad[i], e);
                    break;
                }
            }
        }
        s.applied_policies = policies;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Feeding `ingest::read_signins`.

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ClientApp, Platform};
    use crate::ingest::{IngestError, IngestOptions};
    use crate::signin::Device;
    use chrono::TimeZone;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A scratch folder under the system temp dir, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new() -> Scratch {
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "ca-replay-columnar-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
        fn file(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A sign-in with every field set, and a 100-ns timestamp as Graph logs them.
    fn full() -> SignIn {
        let mut s = SignIn {
            id: "s1".into(),
            created_at: Utc.timestamp_opt(1_770_982_661, 757_403_300).unwrap(),
            user_id: "u1".into(),
            user_principal_name: "u1@contoso.com".into(),
            user_type: "member".into(),
            audiences: vec!["a1".into(), "a2".into()],
            ip_address: Some("2001:db8::1".parse().unwrap()),
            country: "NL".into(),
            client_app_used: "Browser".into(),
            user_agent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)".into(),
            device: Device {
                device_id: "d1".into(),
                is_compliant: Some(true),
                is_managed: None,
                trust_type: "Azure AD joined".into(),
                ..Device::default()
            },
            is_interactive: false,
            event_type: EventType::NonInteractiveUser,
            sign_in_risk: Some(RiskLevel::Hidden),
            risk_level_aggregated: None,
            error_code: 53003,
            mfa_satisfied: true,
            authentication_methods: vec!["Password".into()],
            transfer_method: Some(TransferMethod::DeviceCodeFlow),
            auth_context: vec!["c1".into()],
            through_global_secure_access: Some(false),
            applied_policies: vec![
                AppliedPolicy {
                    id: "p1".into(),
                    display_name: "Block legacy".into(),
                    result: "failure".into(),
                    enforced_grant_controls: vec!["Block".into()],
                    conditions_satisfied: Some(3),
                    conditions_not_satisfied: None,
                },
                AppliedPolicy::default(),
            ],
            ..SignIn::default()
        };
        s.client_app = ClientApp::from_client_app_used(&s.client_app_used);
        s.platform = Platform::detect(&s.device.operating_system, &s.user_agent);
        s
    }

    #[test]
    fn every_field_round_trips_in_both_formats() {
        let signins = vec![
            full(),
            SignIn {
                id: "s2".into(),
                event_type: EventType::ServicePrincipal,
                ..SignIn::default()
            },
        ];
        for (name, format) in [
            ("a.parquet", Format::Parquet),
            ("a.arrow", Format::ArrowIpc),
        ] {
            let dir = Scratch::new();
            let path = dir.file(name);
            let w = write(&path, format, &signins).unwrap();
            assert_eq!(w.rows, 2);
            let back = read(&path).unwrap();
            assert_eq!(back.signins, signins, "{name}");
            assert!(back.skipped.is_empty());
            assert!(!path.with_file_name(format!(".{name}.partial")).exists());
        }
    }

    /// Stops compiling when `SignIn`, `Device` or `AppliedPolicy` gains a field: give it a
    /// column in `COLUMNS` (a new schema version), set it in `full()`, then list it here.
    #[test]
    fn every_field_has_a_column() {
        let SignIn {
            id: _,
            created_at: _,
            user_id: _,
            user_principal_name: _,
            user_display_name: _,
            user_type: _,
            home_tenant_id: _,
            resource_tenant_id: _,
            cross_tenant_access_type: _,
            app_id: _,
            app_display_name: _,
            resource_id: _,
            resource_display_name: _,
            audiences: _,
            ip_address: _,
            country: _,
            client_app_used: _,
            client_app: _, // derived, recomputed when read
            user_agent: _,
            platform: _, // derived, recomputed when read
            device,
            is_interactive: _,
            event_type: _,
            service_principal_id: _,
            sign_in_risk: _,
            risk_level_aggregated: _,
            error_code: _,
            failure_reason: _,
            authentication_requirement: _,
            mfa_satisfied: _,
            authentication_methods: _,
            transfer_method: _,
            auth_context: _,
            through_global_secure_access: _,
            session_id: _,
            correlation_id: _,
            applied_policies,
        } = full();
        let Device {
            device_id: _,
            display_name: _,
            operating_system: _,
            browser: _,
            is_compliant: _,
            is_managed: _,
            trust_type: _,
        } = device;
        let AppliedPolicy {
            id: _,
            display_name: _,
            result: _,
            enforced_grant_controls: _,
            conditions_satisfied: _,
            conditions_not_satisfied: _,
        } = &applied_policies[0];
        // 37 fields, less the 2 derived ones, with `device` flattened into 7 columns.
        assert_eq!(schema().fields().len(), 37 - 2 - 1 + 7);
    }

    #[test]
    fn parquet_reads_interned_columns_and_lists_as_dictionaries_and_ids_as_strings() {
        let read = read_schema(&schema());
        let ty = |name: &str| read.field_with_name(name).unwrap().data_type().clone();
        assert_eq!(ty("user_id"), dictionary_type());
        assert_eq!(ty("device_trust_type"), dictionary_type());
        assert_eq!(ty("id"), DataType::Utf8);
        assert_eq!(ty("correlation_id"), DataType::Utf8);
        let dictionary_list = |t: DataType| match t {
            DataType::List(item) => *item.data_type() == dictionary_type(),
            _ => false,
        };
        assert!(dictionary_list(ty("audiences")));
        let DataType::List(item) = ty("applied_policies") else {
            panic!("applied_policies is not a list")
        };
        let DataType::Struct(children) = item.data_type() else {
            panic!("applied_policies items are not structs")
        };
        let child = |name: &str| {
            children
                .iter()
                .find(|c| c.name() == name)
                .unwrap()
                .data_type()
                .clone()
        };
        assert_eq!(child("result"), dictionary_type());
        assert!(dictionary_list(child("enforced_grant_controls")));
        assert_eq!(child("conditions_satisfied"), DataType::UInt32);
        // Names, nullability and the version metadata stay the file's.
        assert_eq!(read.metadata(), schema().metadata());
        assert_eq!(read.fields().len(), schema().fields().len());
    }

    #[test]
    fn formats_from_extension_and_magic() {
        assert_eq!(
            Format::from_extension(Path::new("x.PARQUET")),
            Some(Format::Parquet)
        );
        assert_eq!(
            Format::from_extension(Path::new("x.arrows")),
            Some(Format::ArrowIpc)
        );
        assert_eq!(Format::from_extension(Path::new("x.json")), None);
        let dir = Scratch::new();
        let path = dir.file("no-extension");
        write(&path, Format::ArrowIpc, &[full()]).unwrap();
        assert_eq!(Format::sniff(&path).unwrap(), Some(Format::ArrowIpc));
        let fake = dir.file("fake.parquet");
        std::fs::write(&fake, b"{}").unwrap();
        let e = read(&fake).unwrap_err().to_string();
        assert!(e.contains("fake.parquet") && e.contains("`PAR1`"), "{e}");
    }

    /// Three rows as another tool might write them: good, an unknown risk word, a null country.
    fn batch_with_bad_rows() -> RecordBatch {
        let schema = schema();
        let good = full();
        let mut builders: Vec<Builder> = COLUMNS.iter().map(|c| Builder::new(c, 3, None)).collect();
        let rows = [good.clone(), good.clone(), good];
        for (b, c) in builders.iter_mut().zip(COLUMNS) {
            b.push(c, &rows, &[0; 3], &mut String::new());
        }
        let mut columns: Vec<ArrayRef> = builders.iter_mut().map(|b| b.finish().unwrap()).collect();
        let at = |name| COLUMNS.iter().position(|c| c.name == name).unwrap();
        columns[at("sign_in_risk")] =
            Arc::new(StringArray::from(vec![Some("low"), Some("severe"), None]));
        columns[at("country")] = Arc::new(StringArray::from(vec![Some("NL"), Some("NL"), None]));
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect();
        let loose = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
        RecordBatch::try_new(loose, columns).unwrap()
    }

    /// Nulls and unknown words become row diagnostics, not panics or defaults.
    #[test]
    fn nulls_and_unknown_words_are_row_diagnostics() {
        let d = decode(Path::new("x.parquet"), &batch_with_bad_rows()).unwrap();
        assert_eq!(d.signins.len(), 1);
        assert_eq!(d.signins[0].sign_in_risk, Some(RiskLevel::Low));
        let got: Vec<(usize, &str, &str)> = d
            .skipped
            .iter()
            .map(|d| (d.record, d.field.as_str(), d.value.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![(2, "sign_in_risk", "\"severe\""), (3, "country", "null")]
        );
    }

    /// Through `read_signins`: diagnostics carry the file and the row in the file (across row
    /// groups); `--strict` stops at the first.
    #[test]
    fn bad_rows_through_read_signins() {
        let dir = Scratch::new();
        let path = dir.file("foreign.parquet");
        let batch = batch_with_bad_rows();
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(3))
            .build();
        let file = File::create(&path).unwrap();
        let mut w = ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();

        let (signins, report) =
            super::super::read_signins(std::slice::from_ref(&path), IngestOptions::default())
                .unwrap();
        assert_eq!(
            (signins.len(), report.duplicates, report.records),
            (1, 1, 6)
        );
        let rows: Vec<usize> = report.skipped.iter().map(|d| d.record).collect();
        assert_eq!(rows, vec![2, 3, 5, 6]);
        assert!(report.skipped.iter().all(|d| d.file == path));
        let strict = IngestOptions {
            strict: true,
            ..IngestOptions::default()
        };
        match super::super::read_signins(std::slice::from_ref(&path), strict) {
            Err(IngestError::Strict(d)) => {
                assert_eq!((d.record, d.field.as_str()), (2, "sign_in_risk"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_foreign_schema_version_is_refused() {
        let mut meta = schema().metadata().clone();
        meta.insert(SCHEMA_KEY, "signin/2");
        let s = Schema::new_with_metadata(schema().fields().clone(), meta);
        let e = check_schema(Path::new("old.parquet"), &s)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("`old.parquet` has sign-in schema `signin/2`"),
            "{e}"
        );
        let bare = Schema::new(schema().fields().clone());
        let e = check_schema(Path::new("b.arrow"), &bare)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no `ca-replay.schema` entry"), "{e}");
    }
}
