//! Parquet and Arrow IPC sign-in files: generated sign-ins survive both formats and equal what the
//! Graph reader gives; foreign, damaged and mislabeled files are refused with the file's name;
//! `convert` end to end; `read_signins` picks columnar files up by their magic bytes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::Schema;
use ca_replay::cli::convert::{convert_files, summary};
use ca_replay::cli::ConvertArgs;
use ca_replay::generate::{self, sample_signins, Options};
use ca_replay::ingest::columnar::{self, Format, SCHEMA_KEY};
use ca_replay::ingest::{read_signins, IngestError, IngestOptions};
use chrono::{TimeZone, Utc};

const USERS: usize = 150;
const COUNT: u64 = 3000;
const SEED: u64 = 11;

fn scratch() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ca-replay-it-columnar-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The tenant that `sample_signins(USERS, COUNT, SEED)` draws from, on disk with its sign-ins as
/// Graph NDJSON, or as Parquet / Arrow IPC.
fn tenant_as(dir: &Path, columnar: Option<Format>) -> PathBuf {
    let format = match columnar {
        None => generate::Format::Graph,
        Some(Format::Parquet) => generate::Format::Parquet,
        Some(Format::ArrowIpc) => generate::Format::Arrow,
    };
    let out = dir.join("tenant");
    generate::generate(
        &out,
        &Options {
            users: USERS,
            days: 7,
            seed: SEED,
            signins: Some(COUNT),
            start: Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap(),
            gzip: false,
            format,
        },
    )
    .unwrap();
    out
}

fn tenant(dir: &Path) -> PathBuf {
    tenant_as(dir, None)
}

fn read(
    paths: &[PathBuf],
) -> (
    Vec<ca_replay::signin::SignIn>,
    ca_replay::ingest::IngestReport,
) {
    read_signins(paths, IngestOptions::default()).unwrap()
}

/// Generated sign-ins written as Parquet and as Arrow IPC read back equal, and equal what the
/// Graph reader makes of the same sign-ins as NDJSON.
#[test]
fn generated_signins_round_trip_and_match_the_graph_reader() {
    let dir = scratch();
    let signins = sample_signins(USERS, COUNT, SEED).unwrap();
    assert_eq!(signins.len() as u64, COUNT);
    // Several row groups, so the parallel decode and its ordering are exercised.
    for (name, format) in [
        ("s.parquet", Format::Parquet),
        ("s.arrow", Format::ArrowIpc),
    ] {
        let path = dir.join(name);
        let mut w = columnar::SignInWriter::create(&path, format).unwrap();
        for chunk in signins.chunks(700) {
            w.write(chunk).unwrap();
        }
        assert_eq!(w.finish().unwrap().rows, COUNT);
        let back = columnar::read(&path).unwrap();
        assert!(back.skipped.is_empty(), "{:?}", back.skipped.first());
        assert_eq!(back.rows as u64, COUNT);
        assert!(
            back.signins == signins,
            "{name} differs from what was written"
        );
    }
    let (from_graph, report) = read(&[tenant(&dir).join("signins")]);
    assert!(report.skipped.is_empty() && report.duplicates == 0);
    assert!(
        from_graph == signins,
        "the Graph reader disagrees with sample_signins"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `generate --format parquet|arrow` writes through the streaming writer what it would otherwise
/// write as NDJSON: one file per day, the same sign-ins.
#[test]
fn generate_writes_columnar_days() {
    let want = sample_signins(USERS, COUNT, SEED).unwrap();
    for (format, ext) in [(Format::Parquet, "parquet"), (Format::ArrowIpc, "arrow")] {
        let dir = scratch();
        let signins = tenant_as(&dir, Some(format)).join("signins");
        let (got, report) = read(std::slice::from_ref(&signins));
        assert_eq!(report.files.len(), 7);
        assert!(report
            .files
            .iter()
            .all(|(f, _)| f.extension().unwrap() == ext));
        assert!(got == want, "{ext} days differ from sample_signins");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Many row groups: file order is kept across the parallel decode.
#[test]
fn order_is_kept_across_row_groups() {
    let dir = scratch();
    let base = sample_signins(40, 200, 3).unwrap();
    let rows = columnar::ROWS_PER_GROUP + 1000;
    let signins: Vec<_> = (0..rows)
        .map(|i| {
            let mut s = base[i % base.len()].clone();
            s.id = format!("{i:08}");
            s
        })
        .collect();
    for name in ["many.parquet", "many.arrow"] {
        let path = dir.join(name);
        columnar::write(&path, Format::from_extension(&path).unwrap(), &signins).unwrap();
        let back = columnar::read(&path).unwrap();
        let ids: Vec<&str> = back.signins.iter().map(|s| s.id.as_str()).collect();
        let want: Vec<&str> = signins.iter().map(|s| s.id.as_str()).collect();
        assert!(ids == want, "{name}: order differs");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn write_with_version(path: &Path, version: Option<&str>) {
    let ours = columnar::schema();
    let mut meta = ours.metadata().clone();
    match version {
        Some(v) => meta.insert(SCHEMA_KEY, v),
        None => meta.remove(SCHEMA_KEY),
    };
    let schema = Arc::new(Schema::new_with_metadata(ours.fields().clone(), meta));
    let file = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, schema.clone(), None).unwrap();
    w.write(&RecordBatch::new_empty(schema)).unwrap();
    w.close().unwrap();
}

#[test]
fn another_schema_version_or_none_is_refused() {
    let dir = scratch();
    let v2 = dir.join("v2.parquet");
    write_with_version(&v2, Some("signin/2"));
    let e = columnar::read(&v2).unwrap_err().to_string();
    assert!(
        e.contains("v2.parquet") && e.contains("`signin/2`") && e.contains("`signin/1`"),
        "{e}"
    );
    let bare = dir.join("bare.parquet");
    write_with_version(&bare, None);
    let e = columnar::read(&bare).unwrap_err().to_string();
    assert!(
        e.contains("bare.parquet") && e.contains("no `ca-replay.schema`"),
        "{e}"
    );
    // Through `run`'s reader too: a whole-file error, not a skipped record.
    assert!(matches!(
        read_signins(&[v2], IngestOptions::default()),
        Err(IngestError::Columnar(_))
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_truncated_file_is_refused_naming_it() {
    let dir = scratch();
    let signins = sample_signins(40, 500, 5).unwrap();
    for name in ["cut.parquet", "cut.arrow"] {
        let path = dir.join(name);
        columnar::write(&path, Format::from_extension(&path).unwrap(), &signins).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let e = read_signins(&[path], IngestOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains(name) && e.contains("truncated"), "{e}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `convert` on a generated tenant; `run`'s reader takes the result by magic bytes (also
/// without an extension), and counts the same sign-ins from JSON and Parquet as duplicates.
#[test]
fn convert_end_to_end() {
    let dir = scratch();
    let signins_dir = tenant(&dir).join("signins");
    let (json, _) = read(std::slice::from_ref(&signins_dir));
    for name in ["all.parquet", "all.arrows"] {
        let args = ConvertArgs {
            inputs: vec![signins_dir.clone()],
            out: dir.join(name),
            strict: false,
        };
        let c = convert_files(&args).unwrap();
        assert_eq!(c.written.rows, COUNT);
        assert_eq!(c.report.files.len(), 7);
        let text = summary(&args, &c).join("\n");
        assert!(
            text.starts_with(&format!("converted {COUNT} sign-ins from 7 files")),
            "{text}"
        );
        let (back, report) = read(std::slice::from_ref(&args.out));
        assert!(back == json, "{name} differs from the JSON it came from");
        assert_eq!(report.files, vec![(args.out.clone(), COUNT as usize)]);
    }
    let bad = ConvertArgs {
        inputs: vec![signins_dir.clone()],
        out: dir.join("all.csv"),
        strict: false,
    };
    let e = convert_files(&bad).unwrap_err().to_string();
    assert!(e.contains("all.csv") && e.contains(".parquet"), "{e}");

    // Written into its own input folder, twice: the earlier output is not read back in.
    let inside = ConvertArgs {
        inputs: vec![signins_dir.clone()],
        out: signins_dir.join("all.parquet"),
        strict: false,
    };
    for _ in 0..2 {
        let c = convert_files(&inside).unwrap();
        assert_eq!((c.written.rows, c.report.duplicates), (COUNT, 0));
    }
    std::fs::remove_file(&inside.out).unwrap();

    let blob = signins_dir.join("blob");
    std::fs::copy(dir.join("all.parquet"), &blob).unwrap();
    let (mixed, report) = read(&[signins_dir]);
    assert_eq!(mixed.len() as u64, COUNT);
    assert_eq!(report.duplicates as u64, COUNT);
    // `blob` sorts before `signins-*.ndjson`: it is read first, the JSON files add nothing.
    assert_eq!(report.files[0], (blob, COUNT as usize));
    assert!(report.files[1..].iter().all(|(_, n)| *n == 0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `run` over the Parquet file reports what it reports over the JSON exports (all but the
/// list of input files).
#[test]
fn replaying_parquet_gives_the_json_summary() {
    use ca_replay::policy::BuildOptions;
    use ca_replay::replay::{self, Details};
    use ca_replay::tenant::Tenant;

    let dir = scratch();
    let root = tenant(&dir);
    let parquet = dir.join("signins.parquet");
    let args = ConvertArgs {
        inputs: vec![root.join("signins")],
        out: parquet.clone(),
        strict: false,
    };
    convert_files(&args).unwrap();
    let tenant = Tenant::load(&root, BuildOptions::default()).unwrap();
    let summary_of = |paths: &[PathBuf]| {
        let (signins, report) = read(paths);
        let (r, out) = replay::run_batch(&tenant, &signins, Details::Applied);
        let affected = ca_replay::report::affected::aggregate(
            tenant.set.policies.len(),
            &signins,
            &out.details,
        )
        .expect("aggregate");
        let mut v = ca_replay::report::summary_json(
            &tenant,
            &report,
            &r,
            &affected,
            BuildOptions::default(),
        );
        v["inputs"]["signin_files"] = serde_json::Value::Null;
        v
    };
    assert_eq!(summary_of(&[root.join("signins")]), summary_of(&[parquet]));
    let _ = std::fs::remove_dir_all(&dir);
}
