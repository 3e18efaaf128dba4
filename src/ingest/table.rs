//! CSV text into a header and rows, for the two CSV sign-in readers (portal, Log Analytics).
//!
//! In: decoded text (source.rs already handled gzip, BOMs and UTF-16). Out: trimmed header names
//! and, per data row, its 1-based number, the line it starts on and its trimmed fields. A row
//! whose field count differs from the header's (a truncated file, a stray delimiter) is an error
//! of that row, never padded or cut to fit.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde_json::Value;

use super::graph::FieldError;

/// One data row: where it is and what it holds.
#[derive(Debug, Clone)]
pub struct Row {
    /// 1-based data row number (the header is not counted).
    pub record: usize,
    /// 1-based line the row starts on (rows may span lines inside quoted fields).
    pub line: usize,
    pub fields: Result<Vec<String>, FieldError>,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Row>,
}

/// Parses CSV text. The delimiter is the one of `,` `;` and tab that the header line uses most
/// (spreadsheets re-save exports with `;` in many locales).
pub fn parse(text: &str) -> Table {
    let text = text.trim_start_matches('\u{feff}');
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .delimiter(delimiter(text))
        .from_reader(text.as_bytes());
    let mut headers = Vec::new();
    let mut rows = Vec::new();
    let mut lines = LineCounter::default();
    for (i, result) in reader.records().enumerate() {
        let position = match &result {
            Ok(r) => r.position(),
            Err(e) => e.position(),
        };
        let line = position.map_or(0, |p| lines.line_at(text, p.byte() as usize));
        if i == 0 {
            if let Ok(r) = result {
                headers = r.iter().map(str::to_owned).collect();
            }
            continue;
        }
        let fields = match result {
            Ok(r) if r.len() == headers.len() => Ok(r.iter().map(str::to_owned).collect()),
            Ok(r) => Err(FieldError {
                field: "(row)".into(),
                value: format!("{} fields", r.len()),
                why: format!(
                    "the header has {} columns; hint: the row or the file may be truncated",
                    headers.len()
                ),
            }),
            Err(e) => Err(FieldError {
                field: "(row)".into(),
                value: String::new(),
                why: format!("not readable as CSV: {e}"),
            }),
        };
        rows.push(Row {
            record: i,
            line,
            fields,
        });
    }
    Table { headers, rows }
}

/// Line numbers from byte offsets. The csv crate's own `Position::line` is one short after a
/// CRLF line end (the `\n` is taken as the start of the next record), and the portal writes CRLF.
#[derive(Default)]
struct LineCounter {
    byte: usize,
    line: usize,
}

impl LineCounter {
    /// The 1-based line of the record starting at `byte` (line ends before it are skipped).
    /// Offsets only grow, so counting goes on from the previous record.
    fn line_at(&mut self, text: &str, byte: usize) -> usize {
        let bytes = text.as_bytes();
        let mut start = byte.min(bytes.len());
        while start < bytes.len() && matches!(bytes[start], b'\r' | b'\n') {
            start += 1;
        }
        if start >= self.byte {
            self.line += bytes[self.byte..start]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            self.byte = start;
        }
        self.line + 1
    }
}

fn delimiter(text: &str) -> u8 {
    let first = text.lines().next().unwrap_or("");
    let count = |c: char| first.matches(c).count();
    [b';', b'\t']
        .into_iter()
        .filter(|&d| count(d as char) > count(','))
        .max_by_key(|&d| count(d as char))
        .unwrap_or(b',')
}

/// Header name for matching: trimmed, inner runs of spaces collapsed, lower-cased
/// (`Autonomous system  number` → `autonomous system number`).
pub fn normalize_header(h: &str) -> String {
    h.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Timestamps as the CSV exports write them, all UTC: ISO-8601 with or without zone
/// (`2026-11-16T08:01:12`, the portal), and the US locale of the Log Analytics portal
/// (`11/16/2026, 8:01:12.000 AM`). Day-first dates are not guessed at: `16/11/2026` fails.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Some(t) = crate::source::parse_timestamp(s) {
        return Some(t);
    }
    let s = s.trim();
    [
        "%m/%d/%Y, %I:%M:%S%.f %p",
        "%m/%d/%Y %I:%M:%S%.f %p",
        "%m/%d/%Y, %H:%M:%S%.f",
        "%m/%d/%Y %H:%M:%S%.f",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
    .map(|t| t.and_utc())
}

/// [`parse_time`] into the ISO-8601 text Graph uses, or an error naming the column.
pub fn time_value(column: &str, raw: &str) -> Result<Value, FieldError> {
    parse_time(raw)
        .map(|t| Value::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true)))
        .ok_or_else(|| FieldError {
            field: column.to_owned(),
            value: quoted_prefix(raw),
            why: "not a UTC timestamp (ISO-8601, or M/D/YYYY, h:mm:ss AM)".into(),
        })
}

/// A value for a diagnostic: quoted, and cut after 80 characters (a field may be megabytes).
pub fn quoted_prefix(raw: &str) -> String {
    let mut text: String = raw.chars().take(80).collect();
    if raw.chars().nth(80).is_some() {
        text.push('…');
    }
    format!("{text:?}")
}

/// Sets `a.b.c` in a JSON object, creating the objects on the way.
pub fn set_path(root: &mut serde_json::Map<String, Value>, dotted: &str, value: Value) {
    match dotted.split_once('.') {
        None => {
            root.insert(dotted.to_owned(), value);
        }
        Some((head, rest)) => {
            let slot = root
                .entry(head.to_owned())
                .or_insert_with(|| Value::Object(Default::default()));
            if !slot.is_object() {
                *slot = Value::Object(Default::default());
            }
            if let Value::Object(inner) = slot {
                set_path(inner, rest, value);
            }
        }
    }
}

/// True when `a.b.c` already holds a value.
pub fn is_set(root: &serde_json::Map<String, Value>, dotted: &str) -> bool {
    let mut cur = root;
    let mut parts = dotted.split('.').peekable();
    while let Some(part) = parts.next() {
        match cur.get(part) {
            None => return false,
            Some(Value::Object(inner)) if parts.peek().is_some() => cur = inner,
            Some(_) => return parts.peek().is_none(),
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_keep_their_line_and_count_their_fields() {
        let t = parse("a ,b\n1 ,\"x\ny\"\n2\n3,4\n");
        assert_eq!(t.headers, ["a", "b"]);
        assert_eq!(t.rows.len(), 3);
        assert_eq!(t.rows[0].fields.as_ref().unwrap(), &["1", "x\ny"]);
        assert_eq!((t.rows[1].record, t.rows[1].line), (2, 4));
        assert_eq!(t.rows[1].fields.as_ref().unwrap_err().value, "1 fields");
        assert_eq!(t.rows[2].line, 5);
    }

    #[test]
    fn crlf_lines_are_counted_right() {
        let t = parse("a,b\r\n1,2\r\n\r\n3,\"x\r\ny\"\r\n5\r\n");
        let lines: Vec<usize> = t.rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 4, 6]);
    }

    #[test]
    fn semicolon_delimited_resaves() {
        let t = parse("a;b;c\n1;2;3\n");
        assert_eq!(t.rows[0].fields.as_ref().unwrap(), &["1", "2", "3"]);
    }

    #[test]
    fn export_timestamps() {
        let iso = parse_time("2026-11-16T08:01:12").unwrap();
        let us = parse_time("11/16/2026, 8:01:12.000 AM").unwrap();
        assert_eq!(iso, us);
        assert_eq!(
            parse_time("11/16/2026, 1:45:17.287 PM")
                .unwrap()
                .to_rfc3339_opts(SecondsFormat::AutoSi, true),
            "2026-11-16T13:45:17.287Z"
        );
        assert_eq!(parse_time("11/16/2026, 8:01:12 AM"), Some(iso));
        assert!(parse_time("16/11/2026 08:01:12").is_none());
        let e = time_value("Date (UTC)", &"9".repeat(1 << 20)).unwrap_err();
        assert_eq!(e.value.chars().count(), 83);
    }

    #[test]
    fn set_and_is_set() {
        let mut m = serde_json::Map::new();
        set_path(&mut m, "a.b", Value::from(1));
        assert!(is_set(&m, "a.b") && is_set(&m, "a"));
        assert!(!is_set(&m, "a.c") && !is_set(&m, "a.b.c") && !is_set(&m, "b"));
    }

    #[test]
    fn header_normalization() {
        assert_eq!(
            normalize_header(" Autonomous system  number "),
            "autonomous system number"
        );
    }
}
