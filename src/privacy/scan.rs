//! The leak check: a finished report file, decoded the way a reader sees it, must hold none of
//! the input's searched values. A leak is a bug, so the run stops before writing anything.
//!
//! In: a file name and its bytes. Decoding by extension: `.json` every string and key;
//! `.csv` every cell (less the `'` that guards a formula); `.md` with the Markdown writer's
//! backslash escapes and entities undone; `.html` and `.xml` with entities decoded (`o&#x27;brien` is
//! `o'brien`); `.parquet` every text cell; anything else as UTF-8 text. Out: `Ok`, or the
//! first leak with the file, the kind of value and its pseudonym (never the value itself: the
//! message goes to CI logs).

use std::sync::Arc;

use super::matcher::Matcher;
use super::{Field, PrivacyError};

pub struct LeakCheck {
    matcher: Matcher,
    targets: Vec<String>,
    what: Vec<Field>,
}

impl LeakCheck {
    pub(super) fn new(matcher: Matcher, targets: Vec<String>, what: Vec<Field>) -> LeakCheck {
        LeakCheck {
            matcher,
            targets,
            what,
        }
    }

    fn text(&self, file: &str, text: &str) -> Result<(), PrivacyError> {
        match self.matcher.any(text) {
            None => Ok(()),
            Some((_, t)) => Err(PrivacyError::Leak {
                file: file.to_owned(),
                what: self.what.get(t).map_or("value", |f| f.words()),
                pseudonym: self.targets.get(t).cloned().unwrap_or_default(),
            }),
        }
    }

    /// Checks one report file (see the module documentation for how each kind is read).
    pub fn file(&self, name: &str, bytes: &[u8]) -> Result<(), PrivacyError> {
        let unreadable = |message: String| PrivacyError::Unreadable {
            file: name.to_owned(),
            message,
        };
        let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
        match ext {
            "json" => {
                let v: serde_json::Value =
                    serde_json::from_slice(bytes).map_err(|e| unreadable(e.to_string()))?;
                let mut all = String::new();
                strings(&v, &mut all);
                self.text(name, &all)
            }
            "csv" => {
                let mut r = csv::ReaderBuilder::new()
                    .has_headers(false)
                    .flexible(true)
                    .from_reader(bytes);
                let mut cells = Cells::default();
                for rec in r.records() {
                    let rec = rec.map_err(|e| unreadable(e.to_string()))?;
                    for cell in rec.iter() {
                        cells.add(unguard(cell));
                    }
                }
                self.text(name, &cells.all)
            }
            "parquet" => self.parquet(name, bytes),
            _ => {
                let text = std::str::from_utf8(bytes).map_err(|e| unreadable(e.to_string()))?;
                match ext {
                    "md" => self.text(name, &unescape_markdown(text)),
                    "html" | "htm" | "xml" => self.text(name, &decode_html(text)),
                    _ => self.text(name, text),
                }
            }
        }
    }

    fn parquet(&self, file: &str, bytes: &[u8]) -> Result<(), PrivacyError> {
        use arrow_array::cast::AsArray;
        use arrow_schema::DataType;
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        let unreadable = |e: &dyn std::fmt::Display| PrivacyError::Unreadable {
            file: file.to_owned(),
            message: e.to_string(),
        };
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes.to_vec()))
            .and_then(|b| b.build())
            .map_err(|e| unreadable(&e))?;
        let mut cells = Cells::default();
        for batch in reader {
            let batch = batch.map_err(|e| unreadable(&e))?;
            let mut add = |s: &str| cells.add(s);
            for col in batch.columns() {
                let col: &Arc<dyn arrow_array::Array> = col;
                match col.data_type() {
                    DataType::Utf8 => col.as_string::<i32>().iter().flatten().for_each(&mut add),
                    DataType::LargeUtf8 => {
                        col.as_string::<i64>().iter().flatten().for_each(&mut add)
                    }
                    DataType::Utf8View => col.as_string_view().iter().flatten().for_each(&mut add),
                    _ => {}
                }
            }
        }
        self.text(file, &cells.all)
    }
}

/// The distinct cells of a table, one per line, for one search: a value never spans two
/// cells, and a table repeats most of its cells (users, policies, reasons).
#[derive(Default)]
struct Cells {
    seen: crate::directory::FastMap<String, ()>,
    all: String,
}

impl Cells {
    fn add(&mut self, cell: &str) {
        if !self.seen.contains_key(cell) {
            self.seen.insert(cell.to_owned(), ());
            self.all.push_str(cell);
            self.all.push('\n');
        }
    }
}

/// Every string of a JSON value (keys too), one per line.
fn strings(v: &serde_json::Value, all: &mut String) {
    use serde_json::Value;
    match v {
        Value::String(s) => {
            all.push_str(s);
            all.push('\n');
        }
        Value::Array(a) => a.iter().for_each(|x| strings(x, all)),
        Value::Object(o) => o.iter().for_each(|(k, x)| {
            all.push_str(k);
            all.push('\n');
            strings(x, all);
        }),
        _ => {}
    }
}

/// A CSV cell as written before `report::csv_cell` guarded it against formulas.
fn unguard(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest,
        _ => cell,
    }
}

/// Undoes `report::markdown::md`: backslash escapes and the three entities.
pub fn unescape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(&n) = chars.peek() {
                if "\\`*_[]|#~!".contains(n) {
                    out.push(n);
                    chars.next();
                    continue;
                }
            }
        }
        out.push(c);
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Decodes HTML character references: the named ones an escaper writes and numeric ones.
pub fn decode_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let end = rest[..rest.len().min(12)].find(';');
        let decoded = end.and_then(|e| {
            let name = &rest[1..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, e + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoders_undo_the_writers_escaping() {
        assert_eq!(
            decode_html("o&#x27;brien &amp; &lt;b&gt; &#x2f; &#39; &bogus; &"),
            "o'brien & <b> / ' &bogus; &"
        );
        assert_eq!(
            unescape_markdown("ana\\_x\\#EXT\\#@y.com &lt;i&gt; a\\|b"),
            "ana_x#EXT#@y.com <i> a|b"
        );
        assert_eq!(unguard("'=x"), "=x");
        assert_eq!(unguard("'quoted'"), "'quoted'");
    }
}
