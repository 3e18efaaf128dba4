//! Where each JSON record starts, so that a diagnostic names a line as well as a record number.
//!
//! In: the decoded text of a JSON file. Out: a function from the 1-based record number that
//! source.rs gave a record to the 1-based line it starts on: the elements of a bare array or of
//! a top-level `value` (Graph page) or `records` (diagnostic-settings blob) array, a single
//! object, or the lines of NDJSON. A cheap scan that skips strings; no second parse.

use serde_json::Value;

/// The line of each record of a JSON file, by record number; `None` where the layout does not say.
pub fn json_line_of(text: &str) -> impl Fn(usize) -> Option<usize> {
    let unmarked = text.trim_start_matches('\u{feff}');
    let body = unmarked.trim();
    // source.rs numbers NDJSON lines from the first non-blank one.
    let leading = unmarked.len() - unmarked.trim_start().len();
    let skipped = unmarked[..leading].matches('\n').count();
    let ndjson = body.contains('\n')
        && body.lines().next().is_some_and(|first| {
            serde_json::from_str::<Value>(first.trim()).is_ok_and(|v| v.is_object())
        });
    let elements = if ndjson {
        Vec::new()
    } else {
        element_lines(unmarked)
    };
    move |record| {
        if ndjson {
            Some(record + skipped)
        } else {
            elements.get(record.checked_sub(1)?).copied()
        }
    }
}

/// Start lines of the records of one JSON document (see the module docs).
fn element_lines(text: &str) -> Vec<usize> {
    let mut scan = Scan::default();
    for (i, &b) in text.as_bytes().iter().enumerate() {
        scan.step(b, text, i);
    }
    if scan.lines.is_empty() && scan.root == Some(b'{') {
        return vec![scan.root_line];
    }
    scan.lines
}

#[derive(Default)]
struct Scan {
    line: usize,
    in_string: bool,
    escaped: bool,
    /// Open containers, innermost last; `true` for the array whose elements are the records.
    stack: Vec<(u8, bool)>,
    root: Option<u8>,
    root_line: usize,
    /// The last string closed at depth 1 and where it started (a key candidate).
    last_string: Option<(usize, usize)>,
    key: Option<(usize, usize)>,
    /// Inside the records array, after `[` or `,`: the next value starts a record.
    expecting: bool,
    lines: Vec<usize>,
}

impl Scan {
    fn step(&mut self, b: u8, text: &str, i: usize) {
        if b == b'\n' {
            self.line += 1;
        }
        if self.in_string {
            match (self.escaped, b) {
                (true, _) => self.escaped = false,
                (false, b'\\') => self.escaped = true,
                (false, b'"') => {
                    self.in_string = false;
                    if let Some((start, _)) = self.last_string {
                        self.last_string = Some((start, i));
                    }
                }
                _ => {}
            }
            return;
        }
        if b.is_ascii_whitespace() {
            return;
        }
        let in_records = matches!(self.stack.last(), Some((b'[', true)));
        if self.expecting && in_records && b != b']' {
            self.lines.push(self.line + 1);
            self.expecting = false;
        }
        match b {
            b'"' => {
                self.in_string = true;
                self.last_string = (self.stack.len() == 1).then_some((i + 1, i + 1));
            }
            b':' if self.stack.len() == 1 => self.key = self.last_string.take(),
            b'{' | b'[' => self.open(b, text),
            b'}' | b']' => {
                self.stack.pop();
                self.expecting = false;
            }
            b',' => self.expecting = in_records,
            _ => {}
        }
    }

    fn open(&mut self, b: u8, text: &str) {
        let records = match (self.stack.len(), b) {
            (0, b'[') => true,
            (1, b'[') => self.stack[0].0 == b'{' && self.key_is(text, &["value", "records"]),
            _ => false,
        };
        if self.stack.is_empty() {
            self.root = Some(b);
            self.root_line = self.line + 1;
        }
        self.stack.push((b, records));
        self.expecting = records;
    }

    fn key_is(&self, text: &str, names: &[&str]) -> bool {
        self.key
            .and_then(|(start, end)| text.get(start..end))
            .is_some_and(|k| names.contains(&k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str, n: usize) -> Vec<Option<usize>> {
        let f = json_line_of(text);
        (1..=n).map(f).collect()
    }

    #[test]
    fn pretty_arrays_pages_and_envelopes() {
        let array = "[\n  {\"a\": \"[,{\\\"\"},\n  {\n \"b\": [1, 2]\n  }\n]\n";
        assert_eq!(lines(array, 3), [Some(2), Some(3), None]);
        let page = "{\"@odata.context\": \"x\",\n \"value\": [\n {\"id\": 1},\n\n {\"id\": 2}]}";
        assert_eq!(lines(page, 2), [Some(3), Some(5)]);
        let blob = "\u{feff}{\"records\": [\n{\"time\": \"t\"}\n]}";
        assert_eq!(lines(blob, 1), [Some(2)]);
        let other = "{\"tables\": [{\"rows\": [[1]]}]}\n";
        assert_eq!(lines(other, 1), [Some(1)]);
    }

    #[test]
    fn ndjson_and_single_objects() {
        assert_eq!(
            lines("\n{\"a\": 1}\n\n{\"a\": 2}\n", 3),
            [Some(2), Some(3), Some(4)]
        );
        assert_eq!(lines("\n\n{\n\"id\": 1\n}", 1), [Some(3)]);
    }
}
