//! NDJSON sign-in files read a block at a time, so that a run over a multi-gigabyte export
//! (a `--gzip` Graph dump, a Log Analytics NDJSON export) holds one block of text, not the
//! file: its lines are split into blocks of about [`BLOCK`] bytes by a reader thread (which
//! also undoes gzip) while the blocks before are parsed and replayed.
//!
//! In: a path. Out: the file's records, block by block, read exactly as `read_json_text` reads
//! a whole file, their records and lines numbered as in the whole file. Only the files the
//! whole-file reader reads as NDJSON are read so (UTF-8, a first line that is one JSON object,
//! and more lines: every line is a record); any other file (a JSON array, a pretty-printed or
//! one-line Graph page, UTF-16, CSV) is read whole by the caller.

use std::io::{BufRead, Read};
use std::path::Path;

use super::{FileRead, IngestError};
use crate::source::{self, SourceError};

/// Bytes of text per block (whole lines; a longer line makes a longer block).
pub const BLOCK: usize = 128 << 20;

/// The longest first line looked at to tell NDJSON.
const FIRST_LINE_MAX: u64 = 16 << 20;

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> IngestError + '_ {
    move |source| {
        IngestError::Source(SourceError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Whether `path` is NDJSON in UTF-8 as the whole-file reader tells it (`split`): its first
/// non-empty line (a UTF-8 BOM allowed) one JSON object, and another non-empty line after it.
pub fn is_ndjson(path: &Path) -> Result<bool, IngestError> {
    let mut reader = source::open(path)?.take(FIRST_LINE_MAX);
    let mut line = Vec::new();
    let mut first_seen = false;
    let mut at_start = true;
    loop {
        line.clear();
        if reader
            .read_until(b'\n', &mut line)
            .map_err(io_error(path))?
            == 0
        {
            return Ok(false);
        }
        // A BOM only at the very start of the file, as the whole-file reader takes it.
        let bytes = if at_start {
            line.strip_prefix(&[0xef, 0xbb, 0xbf]).unwrap_or(&line)
        } else {
            &line[..]
        };
        at_start = false;
        let Ok(text) = std::str::from_utf8(bytes) else {
            return Ok(false);
        };
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        if first_seen {
            return Ok(true);
        }
        if !(text.starts_with('{') && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()) {
            return Ok(false);
        }
        first_seen = true;
    }
}

/// Reads an NDJSON file ([`is_ndjson`]) block by block, handing each block's records to
/// `each`. Returns the file's records.
pub fn read(
    path: &Path,
    each: &mut dyn FnMut(FileRead) -> Result<(), IngestError>,
) -> Result<usize, IngestError> {
    read_in(path, BLOCK, each)
}

/// [`read`] in blocks of about `size` bytes.
fn read_in(
    path: &Path,
    size: usize,
    each: &mut dyn FnMut(FileRead) -> Result<(), IngestError>,
) -> Result<usize, IngestError> {
    let mut reader = source::open(path)?;
    let (blocks, received) = std::sync::mpsc::sync_channel::<std::io::Result<Vec<u8>>>(1);
    std::thread::scope(|scope| {
        scope.spawn(move || loop {
            let mut block = Vec::with_capacity(size + (1 << 16));
            let read = loop {
                match reader.read_until(b'\n', &mut block) {
                    Ok(0) => break Ok(()),
                    Ok(_) if block.len() >= size => break Ok(()),
                    Ok(_) => {}
                    Err(e) => break Err(e),
                }
            };
            let last = block.len() < size;
            let sent = match read {
                Ok(()) if block.is_empty() => true,
                Ok(()) => blocks.send(Ok(block)).is_ok(),
                Err(e) => {
                    let _ = blocks.send(Err(e));
                    return;
                }
            };
            if last || !sent {
                return;
            }
        });
        let (mut records, mut lines, mut offset, mut blocks_read) = (0, 0, 0, 0);
        let (mut undecided, mut held, mut first) = (true, Vec::new(), Vec::<String>::new());
        for block in received {
            let block = block.map_err(io_error(path))?;
            let bom = if offset == 0 && block.starts_with(&[0xef, 0xbb, 0xbf]) {
                3
            } else {
                0
            };
            let text = std::str::from_utf8(&block[bom..]).map_err(|e| {
                IngestError::Source(SourceError::Encoding {
                    path: path.to_path_buf(),
                    encoding: "UTF-8",
                    offset: offset + bom + e.valid_up_to(),
                })
            })?;
            let block_lines = text.bytes().filter(|&b| b == b'\n').count();
            if !text.trim().is_empty() {
                let mut read = super::json_text(path, text, Some(blocks_read))?;
                if undecided {
                    // The first records' texts, for `not_signins` (as the whole file is read).
                    let room = super::NOT_SIGNINS_LOOKED_AT.saturating_sub(first.len());
                    first.extend(
                        super::split::lines(text)
                            .records
                            .iter()
                            .take(room)
                            .map(|r| r.text.to_owned()),
                    );
                }
                // A record's number is its line.
                for d in &mut read.skipped {
                    d.record += lines;
                    d.line = d.line.map(|l| l + lines);
                }
                records += read.records;
                blocks_read += 1;
                if undecided && read.signins.is_empty() {
                    // No sign-in read yet: whether the file is a sign-in export at all is told
                    // once one is, or at its end. Until then its blocks (bad records only) wait.
                    held.push(read);
                } else {
                    undecided = false;
                    for r in held.drain(..) {
                        each(r)?;
                    }
                    each(read)?;
                }
            }
            lines += block_lines;
            offset += block.len();
        }
        // No record of the file read as a sign-in: told as the whole-file reader tells it.
        if undecided && !held.is_empty() {
            if let Some(looked_like) = super::not_signins(first.iter().map(String::as_str)) {
                return Err(IngestError::NotSignIns {
                    path: path.to_path_buf(),
                    looked_like,
                });
            }
        }
        for r in held {
            each(r)?;
        }
        Ok(records)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn line(i: usize, created: &str) -> String {
        format!(
            r#"{{"id": "s{i}", "createdDateTime": "{created}", "userId": "U{i}", "clientAppUsed": "Browser", "isInteractive": true, "status": {{"errorCode": 0}}}}"#
        )
    }

    /// An NDJSON text: sign-ins, a bad date every seventh line, a blank line, and (when `cut`)
    /// a last record that breaks off.
    fn text(n: usize, cut: bool) -> String {
        let mut t = String::from("\u{feff}");
        for i in 0..n {
            let created = if i % 7 == 3 {
                "not a date"
            } else {
                "2026-10-01T10:00:00Z"
            };
            t.push_str(&line(i, created));
            t.push('\n');
            if i == n / 2 {
                t.push('\n');
            }
        }
        if cut {
            t.push_str(r#"{"id": "s-last", "createdDate"#);
        }
        t
    }

    /// Block by block, at any block size, the file reads as it reads whole: the same
    /// sign-ins, the same diagnostics (records and lines numbered in the whole file), the same
    /// count; plain and gzip.
    #[test]
    fn blocks_read_as_the_whole_file_reads() {
        let dir = std::env::temp_dir().join(format!("ca-replay-blocks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for cut in [false, true] {
            let t = text(40, cut);
            let plain = dir.join("s.ndjson");
            std::fs::write(&plain, &t).unwrap();
            let gz = dir.join("s.ndjson.gz");
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(t.as_bytes()).unwrap();
            std::fs::write(&gz, e.finish().unwrap()).unwrap();
            let whole = super::super::read_json_text(&plain, &t).unwrap();
            for path in [&plain, &gz] {
                assert!(is_ndjson(path).unwrap());
                for size in [1, 100, 1000, 5000, 1 << 20] {
                    let parts = same_in_blocks(path, &whole, size).unwrap();
                    if size == 1 {
                        assert!(parts > 30, "one block per line: {parts}");
                    }
                }
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Reads `path` in blocks of `size` bytes and compares with `whole` (the file read
    /// whole): the same record count, sign-ins and diagnostics. The number of blocks, or what
    /// differed.
    fn same_in_blocks(path: &Path, whole: &FileRead, size: usize) -> Result<usize, String> {
        let (mut signins, mut skipped, mut parts) = (Vec::new(), Vec::new(), 0);
        let records = read_in(path, size, &mut |r| {
            parts += 1;
            signins.extend(r.signins);
            skipped.extend(r.skipped);
            Ok(())
        })
        .map_err(|e| format!("size {size}: {e}"))?;
        let key = |d: &super::super::Diagnostic| {
            (
                d.record,
                d.line,
                d.field.clone(),
                d.value.clone(),
                d.why.clone(),
            )
        };
        let (a, b): (Vec<_>, Vec<_>) = (
            skipped.iter().map(key).collect(),
            whole.skipped.iter().map(key).collect(),
        );
        if records != whole.records || signins != whole.signins || a != b {
            return Err(format!(
                "size {size}: {records} records, {} sign-ins, diagnostics {a:?}; whole: {} \
                 records, {} sign-ins, diagnostics {b:?}",
                signins.len(),
                whole.records,
                whole.signins.len()
            ));
        }
        Ok(parts)
    }

    mod damaged {
        use super::*;
        use proptest::prelude::*;
        use std::sync::atomic::{AtomicUsize, Ordering};

        /// A cut, an inserted character or a deleted run, at a byte offset (moved back to a
        /// character boundary).
        #[derive(Debug, Clone)]
        enum Edit {
            Truncate(usize),
            Insert(usize, char),
            Delete(usize, usize),
        }

        fn edit() -> impl Strategy<Value = Edit> {
            let ch = prop_oneof![
                Just('"'),
                Just('{'),
                Just('}'),
                Just('\n'),
                Just('\r'),
                Just('\\'),
                Just('\u{feff}'),
                Just('é'),
                any::<char>()
            ];
            prop_oneof![
                any::<usize>().prop_map(Edit::Truncate),
                (any::<usize>(), ch).prop_map(|(i, c)| Edit::Insert(i, c)),
                (any::<usize>(), 1usize..60).prop_map(|(i, n)| Edit::Delete(i, n)),
            ]
        }

        fn at(text: &str, i: usize) -> usize {
            let mut i = i % (text.len() + 1);
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            i
        }

        fn apply(mut text: String, e: &Edit) -> String {
            match *e {
                Edit::Truncate(i) => text.truncate(at(&text, i)),
                Edit::Insert(i, c) => text.insert(at(&text, i), c),
                Edit::Delete(i, n) => {
                    let a = at(&text, i);
                    let b = at(&text, a.saturating_add(n).min(text.len()));
                    text.replace_range(a..b, "");
                }
            }
            text
        }

        proptest! {
            /// Damaged NDJSON that still reads as NDJSON reads block by block, at any block
            /// size, exactly as it reads whole.
            #[test]
            fn damaged_ndjson_reads_in_blocks_as_whole(
                edits in proptest::collection::vec(edit(), 1..6),
                cut: bool,
                size in 1usize..4000,
            ) {
                static CASE: AtomicUsize = AtomicUsize::new(0);
                let t = edits.iter().fold(text(12, cut), apply);
                let dir = std::env::temp_dir().join(format!(
                    "ca-replay-blocks-d-{}-{}",
                    std::process::id(),
                    CASE.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&dir).unwrap();
                let path = dir.join("s.ndjson");
                std::fs::write(&path, &t).unwrap();
                let outcome = match is_ndjson(&path) {
                    Ok(true) => match super::super::super::read_json_text(&path, &t) {
                        Ok(whole) => same_in_blocks(&path, &whole, size).map(|_| ()),
                        // Not a sign-in export read whole: not one in blocks either.
                        Err(e) => match read_in(&path, size, &mut |_| Ok(())) {
                            Err(_) => Ok(()),
                            Ok(n) => Err(format!("whole: {e}; in blocks: {n} records")),
                        },
                    },
                    _ => Ok(()),
                };
                std::fs::remove_dir_all(&dir).unwrap();
                prop_assert!(outcome.is_ok(), "{:?}\n{t:?}", outcome);
            }
        }
    }

    #[test]
    fn only_ndjson_is_read_in_blocks() {
        let dir = std::env::temp_dir().join(format!("ca-replay-blocks-n-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cases = [
            (
                "array.json",
                format!("[{}]", line(1, "2026-10-01T10:00:00Z")),
                false,
            ),
            ("pretty.json", "{\n  \"value\": []\n}\n".to_owned(), false),
            ("one.json", line(1, "2026-10-01T10:00:00Z"), false),
            (
                "two.json",
                format!("{}\n\n{}", line(1, "x"), line(2, "y")),
                true,
            ),
            (
                "rows.csv",
                "id,createdDateTime\ns1,2026-10-01\n".to_owned(),
                false,
            ),
            ("empty.json", String::new(), false),
        ];
        for (name, body, ndjson) in cases {
            let p = dir.join(name);
            std::fs::write(&p, body).unwrap();
            assert_eq!(is_ndjson(&p).unwrap(), ndjson, "{name}");
        }
        let utf16: Vec<u8> = [0xff, 0xfe]
            .into_iter()
            .chain(line(1, "x").encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let p = dir.join("utf16.json");
        std::fs::write(&p, utf16).unwrap();
        assert!(!is_ndjson(&p).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
