//! Reading input files before any format-specific parsing: gzip, text encodings, and the JSON
//! document shapes that Graph exports come in.
//!
//! In: a path. Out: decoded text, or the JSON records it holds (a bare array, a Graph page
//! `{"value": [...]}`, one object, or NDJSON), with Windows PowerShell's encodings (UTF-16LE/BE with
//! BOM, UTF-8 with BOM) and the Graph PowerShell SDK's PascalCase keys normalized to Graph's camelCase.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// An input file that could not be read or decoded.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read `{path}`: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{path}` is not valid {encoding} text at byte {offset}")]
    Encoding {
        path: PathBuf,
        encoding: &'static str,
        offset: usize,
    },
    #[error("`{path}` is not JSON: {message}{hint}")]
    Json {
        path: PathBuf,
        message: String,
        hint: String,
    },
    #[error("`{path}` is empty")]
    Empty { path: PathBuf },
}

/// Opens a file for reading, un-gzipped when it starts with the gzip magic.
pub fn open(path: &Path) -> Result<Box<dyn BufRead + Send>, SourceError> {
    let io = |source| SourceError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mut magic = Vec::with_capacity(2);
    (&mut f).take(2).read_to_end(&mut magic).map_err(io)?;
    let gzip = magic == [0x1f, 0x8b];
    let f = std::io::Cursor::new(magic).chain(f);
    Ok(if gzip {
        Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::read::MultiGzDecoder::new(f),
        ))
    } else {
        Box::new(BufReader::with_capacity(1 << 20, f))
    })
}

/// Reads a file, un-gzips it when it starts with the gzip magic, and decodes the text.
pub fn read_text(path: &Path) -> Result<String, SourceError> {
    let mut bytes = Vec::new();
    open(path)?
        .read_to_end(&mut bytes)
        .map_err(|source| SourceError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    decode(path, &bytes)
}

/// Decodes UTF-8 (with or without BOM) and UTF-16 (with BOM, or without one when the zero bytes
/// of ASCII text give the byte order away, as Windows tools sometimes write it).
pub fn decode(path: &Path, bytes: &[u8]) -> Result<String, SourceError> {
    let utf16 = |body: &[u8], little: bool, encoding: &'static str| {
        if !body.len().is_multiple_of(2) {
            return Err(SourceError::Encoding {
                path: path.to_path_buf(),
                encoding,
                offset: body.len() - 1,
            });
        }
        let units = body.chunks_exact(2).map(|c| {
            if little {
                u16::from_le_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], c[1]])
            }
        });
        let mut text = String::with_capacity(body.len() / 2);
        for (i, ch) in char::decode_utf16(units).enumerate() {
            match ch {
                Ok(c) => text.push(c),
                Err(_) => {
                    return Err(SourceError::Encoding {
                        path: path.to_path_buf(),
                        encoding,
                        offset: i * 2,
                    })
                }
            }
        }
        Ok(text)
    };
    if let Some(body) = bytes.strip_prefix(&[0xff, 0xfe]) {
        return utf16(body, true, "UTF-16LE");
    }
    if let Some(body) = bytes.strip_prefix(&[0xfe, 0xff]) {
        return utf16(body, false, "UTF-16BE");
    }
    let body = bytes.strip_prefix(&[0xef, 0xbb, 0xbf]).unwrap_or(bytes);
    if body.len() >= 4 && body.len().is_multiple_of(2) {
        if body[1] == 0 && body[3] == 0 && body[0] != 0 {
            return utf16(body, true, "UTF-16LE");
        }
        if body[0] == 0 && body[2] == 0 && body[1] != 0 {
            return utf16(body, false, "UTF-16BE");
        }
    }
    match std::str::from_utf8(body) {
        Ok(s) => Ok(s.to_owned()),
        Err(e) => Err(SourceError::Encoding {
            path: path.to_path_buf(),
            encoding: "UTF-8",
            offset: e.valid_up_to(),
        }),
    }
}

/// One JSON record of a file and where it came from.
#[derive(Debug, Clone)]
pub struct Record {
    /// 1-based position of the record in its file (the line for NDJSON).
    pub index: usize,
    pub value: Value,
}

/// Parses a JSON file into its records: the elements of a bare array or of a Graph page's
/// `value`, one object, or the lines of NDJSON. Keys are normalized (see [`normalize_keys`]).
pub fn read_json_records(path: &Path) -> Result<Vec<Record>, SourceError> {
    let text = read_text(path)?;
    parse_json_records(path, &text)
}

/// [`read_json_records`] on text already in memory.
pub fn parse_json_records(path: &Path, text: &str) -> Result<Vec<Record>, SourceError> {
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    if trimmed.is_empty() {
        return Err(SourceError::Empty {
            path: path.to_path_buf(),
        });
    }
    match serde_json::from_str::<Value>(trimmed) {
        Ok(value) => Ok(unwrap_document(value)
            .into_iter()
            .enumerate()
            .map(|(i, v)| Record {
                index: i + 1,
                value: normalize_keys(v),
            })
            .collect()),
        Err(whole) => {
            // NDJSON: several top-level values, one per line.
            let mut records = Vec::new();
            for (i, line) in trimmed.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                match serde_json::from_str::<Value>(line) {
                    Ok(v) => records.push(Record {
                        index: i + 1,
                        value: normalize_keys(v),
                    }),
                    Err(_) if records.is_empty() => {
                        return Err(json_error(path, &whole, trimmed));
                    }
                    Err(e) => {
                        return Err(SourceError::Json {
                            path: path.to_path_buf(),
                            message: format!("NDJSON line {}: {e}", i + 1),
                            hint: String::new(),
                        })
                    }
                }
            }
            Ok(records)
        }
    }
}

fn json_error(path: &Path, e: &serde_json::Error, text: &str) -> SourceError {
    let line = text.lines().nth(e.line().saturating_sub(1)).unwrap_or("");
    let snippet: String = line.trim().chars().take(60).collect();
    SourceError::Json {
        path: path.to_path_buf(),
        message: format!("{e} (near `{snippet}`)"),
        hint: String::new(),
    }
}

/// The records of one JSON document: array elements, a Graph page's `value`, or the value itself.
pub fn unwrap_document(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items,
        Value::Object(mut map) if matches!(map.get("value"), Some(Value::Array(_))) => {
            match map.remove("value") {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            }
        }
        other => vec![other],
    }
}

/// Normalizes keys to Graph's camelCase and drops OData annotations.
///
/// The Graph PowerShell SDK serializes `Conditions.Users.IncludeUsers`; the REST API
/// `conditions.users.includeUsers`. Both lower-case only the first letter, so that is all we do.
/// Annotation keys (`x@odata.type`, `@odata.context`, `#microsoft.graph.restore`; but not the
/// `@odata.type` discriminator itself) and the SDK's
/// empty `AdditionalProperties` carry nothing for evaluation. A non-empty `AdditionalProperties`
/// holds fields the SDK model did not know; they are merged into the parent object so that
/// validation sees (and reports) them.
pub fn normalize_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            let mut extra = Map::new();
            for (k, v) in map {
                // `@odata.type` on its own is a discriminator (named locations, group members).
                if (k.contains("@odata.") && k != "@odata.type") || k.starts_with('#') {
                    continue;
                }
                let key = camel(&k);
                if key == "additionalProperties" {
                    if let Value::Object(inner) = normalize_keys(v) {
                        extra.extend(inner);
                    }
                    continue;
                }
                out.insert(key, normalize_keys(v));
            }
            for (k, v) in extra {
                out.entry(k).or_insert(v);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(normalize_keys).collect()),
        other => other,
    }
}

fn camel(key: &str) -> String {
    let mut chars = key.chars();
    match chars.next() {
        Some(first) if first.is_ascii_uppercase() => {
            let mut s = String::with_capacity(key.len());
            s.push(first.to_ascii_lowercase());
            s.push_str(chars.as_str());
            s
        }
        _ => key.to_owned(),
    }
}

/// True when a JSON value carries no setting: `null`, `[]`, `""`, or an object whose every value
/// is empty. The SDK writes unset complex types as objects full of nulls.
pub fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::String(s) => s.is_empty(),
        Value::Object(m) => m.values().all(is_empty),
        _ => false,
    }
}

/// Files under `path` (itself when a file), recursively, sorted for deterministic order.
/// Hidden files and folders are skipped.
pub fn files_under(path: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| SourceError::Io { path: p, source }
    };
    let meta = std::fs::metadata(path).map_err(io(path))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let entry = entry.map_err(io(&dir))?;
            let p = entry.path();
            if p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
            {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Parses Graph timestamps in both serializations seen in exports: ISO-8601
/// (`2026-02-13T11:37:41.7574033Z`, also without zone or with a space) and the PowerShell SDK's
/// `/Date(1647536088205)/`.
pub fn parse_timestamp(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
    let s = s.trim();
    if let Some(ms) = s.strip_prefix("/Date(").and_then(|r| r.strip_suffix(")/")) {
        // `/Date(1647536088205+0100)/`: the offset only says how to display it; ms is UTC.
        let digits = ms
            .split(|c| c == '+' || (c == '-' && !ms.starts_with(c)))
            .next()?;
        return Utc.timestamp_millis_opt(digits.parse().ok()?).single();
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.fZ",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_utf16le_with_bom() {
        let mut bytes = vec![0xff, 0xfe];
        for u in "{\"a\":1}".encode_utf16() {
            bytes.extend(u.to_le_bytes());
        }
        assert_eq!(decode(Path::new("x"), &bytes).unwrap(), "{\"a\":1}");
    }

    #[test]
    fn decodes_utf8_bom_and_bomless_utf16() {
        assert_eq!(decode(Path::new("x"), b"\xef\xbb\xbf[]").unwrap(), "[]");
        let bytes: Vec<u8> = "[1]".encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        // 3 units = 6 bytes, even: detected by the zero high bytes.
        assert_eq!(decode(Path::new("x"), &bytes).unwrap(), "[1]");
    }

    #[test]
    fn rejects_invalid_utf8_with_offset() {
        let err = decode(Path::new("f.json"), b"ab\xffcd").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`f.json` is not valid UTF-8 text at byte 2"
        );
    }

    #[test]
    fn unwraps_pages_arrays_and_ndjson() {
        let p = Path::new("x");
        let page =
            parse_json_records(p, r#"{"@odata.context":"c","value":[{"A":1},{"b":2}]}"#).unwrap();
        assert_eq!(page.len(), 2);
        assert_eq!(page[0].value, serde_json::json!({"a": 1}));
        let nd = parse_json_records(p, "{\"a\":1}\n\n{\"a\":2}\n").unwrap();
        assert_eq!(nd.len(), 2);
        assert_eq!(nd[1].index, 3);
        assert!(parse_json_records(p, "   ").is_err());
        assert!(parse_json_records(p, "{\"a\":").is_err());
    }

    #[test]
    fn normalizes_sdk_keys_and_drops_annotations() {
        let v = normalize_keys(serde_json::json!({
            "IncludeUsers": ["All"], "includeUsers@odata.type": "#Collection(String)",
            "#microsoft.graph.restore": {}, "AdditionalProperties": {"newThing": 1}
        }));
        assert_eq!(
            v,
            serde_json::json!({"includeUsers": ["All"], "newThing": 1})
        );
    }

    #[test]
    fn emptiness_of_sdk_null_objects() {
        assert!(is_empty(&serde_json::json!({"Mode": null, "Rule": null})));
        assert!(!is_empty(
            &serde_json::json!({"mode": "include", "rule": null})
        ));
    }

    #[test]
    fn timestamps_in_both_serializations() {
        let a = parse_timestamp("/Date(1647536088205)/").unwrap();
        assert_eq!(a.timestamp_millis(), 1647536088205);
        let b = parse_timestamp("2026-02-13T11:37:41.7574033Z").unwrap();
        assert_eq!(b.timestamp(), 1770982661);
        assert!(parse_timestamp("2023-07-26 22:58:30.983201900").is_some());
        assert!(parse_timestamp("yesterday").is_none());
    }
}
