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
    loop {
        line.clear();
        if reader
            .read_until(b'\n', &mut line)
            .map_err(io_error(path))?
            == 0
        {
            return Ok(false);
        }
        let bytes = if first_seen {
            &line[..]
        } else {
            line.strip_prefix(&[0xef, 0xbb, 0xbf]).unwrap_or(&line)
        };
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
                // A record's number is its line.
                for d in &mut read.skipped {
                    d.record += lines;
                    d.line = d.line.map(|l| l + lines);
                }
                records += read.records;
                blocks_read += 1;
                each(read)?;
            }
            lines += block_lines;
            offset += block.len();
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
                    let (mut signins, mut skipped, mut parts) = (Vec::new(), Vec::new(), 0);
                    let records = read_in(path, size, &mut |r| {
                        parts += 1;
                        signins.extend(r.signins);
                        skipped.extend(r.skipped);
                        Ok(())
                    })
                    .unwrap();
                    assert_eq!(records, whole.records, "size {size}");
                    assert_eq!(signins, whole.signins, "size {size}");
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
                    assert_eq!(a, b, "size {size}");
                    if size == 1 {
                        assert!(parts > 30, "one block per line: {parts}");
                    }
                }
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
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
