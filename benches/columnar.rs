//! Columnar sign-in files: writing and reading Parquet and Arrow IPC, in sign-ins/s (and the
//! file's bytes/s for reads).
//!
//! Run: `cargo bench --bench columnar`. The sign-ins are `generate::sample_signins` (2,000 users,
//! 130k sign-ins, two row groups and a bit, so the parallel decode has work to split);
//! CA_REPLAY_BENCH_SIGNINS changes the count. Files go to the system temp dir and are removed.

use std::hint::black_box;
use std::path::PathBuf;

use ca_replay::generate::sample_signins;
use ca_replay::ingest::columnar::{self, Format};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn count() -> u64 {
    std::env::var("CA_REPLAY_BENCH_SIGNINS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(130_000)
}

fn bench(c: &mut Criterion) {
    let signins = sample_signins(2_000, count(), 1).expect("generating sample sign-ins");
    let dir = std::env::temp_dir().join(format!("ca-replay-bench-columnar-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("creating the bench folder");
    for (format, ext) in [(Format::Parquet, "parquet"), (Format::ArrowIpc, "arrow")] {
        let path: PathBuf = dir.join(format!("signins.{ext}"));
        let mut g = c.benchmark_group(format!("columnar/{ext}"));
        g.sample_size(10);
        g.throughput(Throughput::Elements(signins.len() as u64));
        g.bench_function("write", |b| {
            b.iter(|| columnar::write(&path, format, black_box(&signins)).expect("writing"))
        });
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        g.bench_function("read", |b| {
            b.iter(|| columnar::read(black_box(&path)).expect("reading"))
        });
        g.throughput(Throughput::Bytes(bytes));
        g.bench_function("read (file bytes)", |b| {
            b.iter(|| columnar::read(black_box(&path)).expect("reading"))
        });
        g.finish();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
