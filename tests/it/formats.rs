//! The fixture sign-ins in the formats ca-replay writes itself: diagnostic-settings records
//! (written by `generate::write`) read back equal to the Graph reference, and the committed
//! files are what the writers give today (`CA_REPLAY_WRITE_FIXTURES=1` rewrites them).

use std::path::{Path, PathBuf};

use ca_replay::generate::write;
use ca_replay::ingest::{read_signins, IngestOptions};
use ca_replay::signin::SignIn;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/signins")
}

fn read(path: &Path) -> Vec<SignIn> {
    let (mut s, report) = read_signins(&[path.to_path_buf()], IngestOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    s.sort_by(|a, b| a.id.cmp(&b.id));
    s
}

/// Compares `bytes` with the committed file, or writes it when asked to.
fn check_or_write(path: &Path, bytes: &[u8]) {
    if std::env::var_os("CA_REPLAY_WRITE_FIXTURES").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
        return;
    }
    let committed = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        committed == bytes,
        "{} is not what the writer gives today; rerun with CA_REPLAY_WRITE_FIXTURES=1 and review the diff",
        path.display()
    );
}

#[test]
fn diagnostic_settings_records_equal_graph() {
    let graph = read(&fixtures().join("graph/signins.json"));
    assert_eq!(graph.len(), 7);
    let mut text = Vec::new();
    for s in &graph {
        write::diagnostic_json(s, &mut text);
        text.push(b'\n');
    }
    let path = fixtures().join("diagnostic/PT1H.json");
    check_or_write(&path, &text);
    assert_eq!(read(&path), graph);
    // The same records inside an Event Hub style `{"records": [...]}` envelope.
    let lines: Vec<&str> = std::str::from_utf8(&text).unwrap().lines().collect();
    let envelope = format!("{{\"records\": [{}]}}", lines.join(",\n"));
    let dir = std::env::temp_dir().join(format!("ca-replay-formats-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("eventhub.json");
    std::fs::write(&file, envelope).unwrap();
    assert_eq!(read(&file), graph);
    // And ca-replay's own Graph JSON writer (what `generate` writes) gives them back too.
    let mut ndjson = Vec::new();
    for s in &graph {
        write::signin_json(s, &mut ndjson);
        ndjson.push(b'\n');
    }
    let file = dir.join("graph.ndjson");
    std::fs::write(&file, ndjson).unwrap();
    assert_eq!(read(&file), graph);
    let _ = std::fs::remove_dir_all(dir);
}
