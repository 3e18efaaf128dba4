//! Ingest throughput on generated data, side by side with DuckDB on the same files.
//!
//! Run: `cargo bench --bench ingest` (DuckDB's side needs `pip install duckdb`; without it the
//! table says so). `CA_REPLAY_BENCH_SIGNINS` sets the size (default 1,000,000);
//! `CA_REPLAY_BENCH_FORMATS` (a part of a format's label, e.g. `Parquet`) times only those
//! formats. The data is generated once into `target/bench-data/` by `ca-replay generate`
//! (deterministic) and reused; remove a format's folder there after a writer change.
//!
//! Each format is read `RUNS` times after one warm-up read (so the page cache holds the files
//! for both tools); the table gives the median. ca-replay's side is `ingest::read_signins`
//! into normalized `SignIn`s; DuckDB's is `CREATE TABLE AS SELECT * FROM read_json(..)` (or
//! `read_parquet`) with all columns, on all cores. Formats: Graph NDJSON (plain and gzip),
//! diagnostic-settings records, Log Analytics rows (NDJSON, dynamic columns as JSON text), the
//! admin center's CSV downloads (DuckDB: `read_csv` with `union_by_name`, as the user and
//! workload files have other headers), and ca-replay's Parquet and Arrow IPC. A custom harness
//! rather than criterion:
//! one iteration is seconds long and the comparison runs another program.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ca_replay::generate::{self, Options};
use ca_replay::ingest::{read_signins, IngestOptions};

const RUNS: usize = 3;

fn signins() -> u64 {
    std::env::var("CA_REPLAY_BENCH_SIGNINS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn data_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/bench-data")
        .join(name)
}

/// Generates the tenant unless the same one is already there.
fn tenant(count: u64, gzip: bool, format: generate::Format) -> PathBuf {
    let name = format!(
        "ingest-{count}{}-{}",
        if gzip { "-gz" } else { "" },
        match format {
            generate::Format::Graph => "graph",
            generate::Format::Diagnostic => "diagnostic",
            generate::Format::Parquet => "parquet",
            generate::Format::Arrow => "arrow",
            generate::Format::LogAnalytics => "loganalytics",
            generate::Format::PortalCsv => "portalcsv",
        }
    );
    let dir = data_dir(&name);
    let stamp = dir.join(".bench-complete");
    if !stamp.exists() {
        let o = Options {
            users: (count / 50).clamp(300, 20_000) as usize,
            days: 7,
            seed: 42,
            signins: Some(count),
            start: chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 11, 2, 0, 0, 0)
                .single()
                .expect("a valid date"),
            gzip,
            format,
        };
        eprintln!("generating {count} sign-ins into {} …", dir.display());
        let t = Instant::now();
        generate::generate(&dir, &o).expect("generate bench data");
        eprintln!("  done in {:.1}s", t.elapsed().as_secs_f64());
        std::fs::write(&stamp, b"").expect("stamp");
    }
    dir
}

fn bytes_under(dir: &Path) -> u64 {
    ca_replay::source::files_under(dir)
        .expect("list")
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// ca-replay reading a folder: (median time, sign-ins read).
fn ours(dir: &Path) -> (Duration, usize) {
    let read = || {
        let (signins, report) =
            read_signins(&[dir.to_path_buf()], IngestOptions::default()).expect("read");
        assert!(report.skipped.is_empty(), "{:?}", report.skipped.first());
        signins.len()
    };
    let n = read();
    let times = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(read());
            t.elapsed()
        })
        .collect();
    (median(times), n)
}

/// DuckDB materializing the same files into a table: median seconds and rows, or why not.
fn duckdb(sql_source: &str) -> Result<(Duration, u64), String> {
    let script = format!(
        r#"
import duckdb, time, statistics
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
def run():
    con.execute("DROP TABLE IF EXISTS t")
    t = time.perf_counter()
    con.execute("CREATE TABLE t AS SELECT * FROM {sql_source}")
    return time.perf_counter() - t
run()
times = [run() for _ in range({RUNS})]
print(statistics.median(times), con.execute("SELECT count(*) FROM t").fetchone()[0])
"#
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(err.lines().last().unwrap_or("failed").to_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or("");
    let mut parts = last.split_whitespace();
    let secs: f64 = parts.next().and_then(|s| s.parse().ok()).ok_or_else(|| {
        format!(
            "unexpected output `{}`",
            last.chars().take(80).collect::<String>()
        )
    })?;
    let rows: u64 = parts.next().and_then(|s| s.parse().ok()).ok_or("no rows")?;
    Ok((Duration::from_secs_f64(secs), rows))
}

struct Row {
    format: String,
    mb: f64,
    ours: (Duration, usize),
    duck: Result<(Duration, u64), String>,
}

fn main() {
    // `cargo test --benches` runs this with `--bench` absent: do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let n = signins();
    let mut rows = Vec::new();

    const JSON: &str =
        "read_json('{glob}', format='newline_delimited', maximum_object_size=104857600)";
    const JSON_GZ: &str = "read_json('{glob}', format='newline_delimited', compression='gzip', maximum_object_size=104857600)";
    // (label, gzip, format, file pattern, DuckDB's source with `{glob}`, or why none)
    type Case = (
        &'static str,
        bool,
        generate::Format,
        &'static str,
        Result<&'static str, &'static str>,
    );
    let cases: [Case; 7] = [
        (
            "Graph JSON (NDJSON)",
            false,
            generate::Format::Graph,
            "*.ndjson",
            Ok(JSON),
        ),
        (
            "Graph JSON (NDJSON, gzip)",
            true,
            generate::Format::Graph,
            "*.ndjson.gz",
            Ok(JSON_GZ),
        ),
        (
            "Diagnostic settings (NDJSON records)",
            false,
            generate::Format::Diagnostic,
            "*.json",
            Ok(JSON),
        ),
        (
            "Log Analytics rows (NDJSON)",
            false,
            generate::Format::LogAnalytics,
            "*.ndjson",
            Ok(JSON),
        ),
        (
            "Admin center CSV downloads",
            false,
            generate::Format::PortalCsv,
            "*.csv",
            Ok("read_csv('{glob}', union_by_name=true, all_varchar=true)"),
        ),
        (
            "Parquet (ca-replay schema)",
            false,
            generate::Format::Parquet,
            "*.parquet",
            Ok("read_parquet('{glob}')"),
        ),
        (
            "Arrow IPC (ca-replay schema)",
            false,
            generate::Format::Arrow,
            "*.arrow",
            Err("DuckDB has no Arrow IPC file reader built in"),
        ),
    ];
    // CA_REPLAY_BENCH_FORMATS=Parquet (a part of the labels above) times only those formats.
    let only = std::env::var("CA_REPLAY_BENCH_FORMATS").unwrap_or_default();
    for (label, gzip, format, pattern, duck) in cases {
        if !only.is_empty() && !label.contains(only.as_str()) {
            continue;
        }
        let dir = tenant(n, gzip, format).join("signins");
        let glob = format!("{}/{pattern}", dir.display());
        rows.push(Row {
            format: label.into(),
            mb: bytes_under(&dir) as f64 / 1e6,
            ours: ours(&dir),
            duck: duck
                .map_err(str::to_owned)
                .and_then(|source| duckdb(&source.replace("{glob}", &glob))),
        });
    }

    println!(
        "\nIngest of {n} generated sign-ins, median of {RUNS} warm runs, {} threads\n",
        rayon::current_num_threads()
    );
    println!(
        "| format | MB on disk | ca-replay s | MB/s | sign-ins/s | DuckDB s | ca-replay / DuckDB |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let (t, count) = r.ours;
        let secs = t.as_secs_f64();
        let (duck, ratio) = match &r.duck {
            Ok((d, rows)) => {
                assert_eq!(*rows as usize, count, "DuckDB read another number of rows");
                (
                    format!("{:.2}", d.as_secs_f64()),
                    format!("{:.2}×", secs / d.as_secs_f64()),
                )
            }
            Err(why) => (format!("n/a ({why})"), "n/a".into()),
        };
        println!(
            "| {} | {:.0} | {:.2} | {:.0} | {:.0} | {} | {} |",
            r.format,
            r.mb,
            secs,
            r.mb / secs,
            count as f64 / secs,
            duck,
            ratio
        );
    }
}
