//! JSON text into the texts of its records, without building values: the elements of a bare
//! array, of a Graph page's `value` or of a diagnostic-settings blob's `records`; one object; or
//! the lines of NDJSON. Records are parsed later, in parallel, from these slices.
//!
//! A document that stops being JSON part-way (a truncated download, a stray byte) keeps the
//! records before the break and says where it broke, so the caller can count the rest as one
//! bad record instead of losing the file.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// One record's text and its position: the element number, or the line for NDJSON.
#[derive(Debug, Clone, Copy)]
pub struct Rec<'a> {
    pub index: usize,
    pub text: &'a str,
}

/// Where a document stopped being JSON.
#[derive(Debug, Clone)]
pub struct Broken {
    pub line: usize,
    pub column: usize,
    pub why: String,
    /// The start of the line it broke on.
    pub near: String,
}

#[derive(Debug)]
pub struct Doc<'a> {
    pub records: Vec<Rec<'a>>,
    pub broken: Option<Broken>,
    /// Nothing but whitespace (and a BOM).
    pub empty: bool,
}

/// Splits a JSON or NDJSON text into record texts.
pub fn records(text: &str) -> Doc<'_> {
    let text = text.trim_start_matches('\u{feff}');
    let body = text.trim_start();
    let skipped_lines = text[..text.len() - body.len()].matches('\n').count();
    let body = body.trim_end();
    if body.is_empty() {
        return Doc {
            records: Vec::new(),
            broken: None,
            empty: true,
        };
    }
    if is_ndjson(body) {
        return lines(text);
    }
    let mut found: Vec<&RawValue> = Vec::new();
    let mut wrapped = false;
    let mut de = serde_json::Deserializer::from_str(body);
    let top = Collect {
        out: &mut found,
        wrapped: &mut wrapped,
    }
    .deserialize(&mut de)
    .and_then(|top| de.end().map(|()| top));
    fn as_records(found: Vec<&RawValue>) -> Vec<Rec<'_>> {
        found
            .into_iter()
            .enumerate()
            .map(|(i, r)| Rec {
                index: i + 1,
                text: r.get(),
            })
            .collect()
    }
    match top {
        Ok(Top::Map) if !wrapped => Doc {
            records: vec![Rec {
                index: 1,
                text: body,
            }],
            broken: None,
            empty: false,
        },
        Ok(Top::Other) => Doc {
            records: vec![Rec {
                index: 1,
                text: body,
            }],
            broken: None,
            empty: false,
        },
        Ok(_) => Doc {
            records: as_records(found),
            broken: None,
            empty: false,
        },
        Err(e) => {
            let near: String = body
                .lines()
                .nth(e.line().saturating_sub(1))
                .unwrap_or("")
                .trim()
                .chars()
                .take(60)
                .collect();
            let why = e.to_string();
            // serde_json appends " at line L column C": the caller says the line itself.
            let why = why
                .rsplit_once(" at line ")
                .map_or(why.as_str(), |(w, _)| w)
                .to_owned();
            Doc {
                records: as_records(found),
                broken: Some(Broken {
                    line: e.line() + skipped_lines,
                    column: e.column(),
                    why,
                    near,
                }),
                empty: false,
            }
        }
    }
}

/// The non-empty lines of NDJSON text, each a record numbered by its line.
pub fn lines(text: &str) -> Doc<'_> {
    Doc {
        records: text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty())
            .map(|(index, text)| Rec { index, text })
            .collect(),
        broken: None,
        empty: false,
    }
}

/// NDJSON: the first line is a whole object and another non-empty line follows. (A pretty-printed
/// document's first line is `{` or `[`; a one-line document has no second line.)
fn is_ndjson(body: &str) -> bool {
    let mut lines = body.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("");
    first.len() > 1 && first.starts_with('{') && first.ends_with('}') && lines.next().is_some()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Top {
    Seq,
    Map,
    Other,
}

/// The top-level value: an array's elements are records; in an object, the array under `value`
/// or `records` holds them; any other object is itself the record.
struct Collect<'s, 'de> {
    out: &'s mut Vec<&'de RawValue>,
    wrapped: &'s mut bool,
}

impl<'de> DeserializeSeed<'de> for Collect<'_, 'de> {
    type Value = Top;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Top, D::Error> {
        d.deserialize_any(self)
    }
}

macro_rules! other_scalars {
    ($ret:expr) => {
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($ret)
        }
        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($ret)
        }
        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($ret)
        }
        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($ret)
        }
        fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($ret)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok($ret)
        }
    };
}

impl<'de> Visitor<'de> for Collect<'_, 'de> {
    type Value = Top;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON array or object")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Top, A::Error> {
        while let Some(x) = seq.next_element::<&'de RawValue>()? {
            self.out.push(x);
        }
        Ok(Top::Seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let page_key = key.eq_ignore_ascii_case("value") || key.eq_ignore_ascii_case("records");
            if page_key && !*self.wrapped {
                *self.wrapped = map.next_value_seed(Elements(&mut *self.out))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Top::Map)
    }
    other_scalars!(Top::Other);
}

/// The value under `value`/`records`: its elements when it is an array (`true`), else nothing.
struct Elements<'s, 'de>(&'s mut Vec<&'de RawValue>);

impl<'de> DeserializeSeed<'de> for Elements<'_, 'de> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Elements<'_, 'de> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while let Some(x) = seq.next_element::<&'de RawValue>()? {
            self.0.push(x);
        }
        Ok(true)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(false)
    }
    other_scalars!(false);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(d: &Doc<'_>) -> Vec<(usize, String)> {
        d.records
            .iter()
            .map(|r| (r.index, r.text.to_owned()))
            .collect()
    }

    #[test]
    fn arrays_pages_envelopes_objects_and_ndjson() {
        let d = records("\u{feff} [ {\"id\":1}, {\"id\":2} ] ");
        assert_eq!(
            texts(&d),
            vec![(1, "{\"id\":1}".into()), (2, "{\"id\":2}".into())]
        );
        let d = records("{\"@odata.nextLink\":\"x\",\"value\":[{\"id\":1}]}");
        assert_eq!(texts(&d), vec![(1, "{\"id\":1}".into())]);
        let d = records("{\"records\":[{\"properties\":{}}, {\"properties\":{}}]}");
        assert_eq!(d.records.len(), 2);
        let d = records("{\n  \"id\": \"a\",\n  \"value\": 3\n}");
        assert_eq!(d.records.len(), 1);
        assert!(d.records[0].text.starts_with('{'));
        let d = records("\n{\"id\":1}\n\n{\"id\":\n");
        assert_eq!(
            texts(&d),
            vec![(2, "{\"id\":1}".into()), (4, "{\"id\":".into())]
        );
        assert!(records(" \u{feff}\n ").empty || records("\u{feff}  ").empty);
    }

    #[test]
    fn a_truncated_array_keeps_what_came_before() {
        let d = records("[\n{\"id\":1},\n{\"id\":2},\n{\"id\":3,\"user");
        assert_eq!(d.records.len(), 2);
        let b = d.broken.unwrap();
        assert_eq!(b.line, 4);
        assert!(b.why.contains("EOF"), "{}", b.why);
        let d = records("{\"value\":[{\"id\":1},{\"id\"");
        assert_eq!(d.records.len(), 1);
        assert!(d.broken.is_some());
        let d = records("not json at all");
        assert!(d.records.is_empty() && d.broken.is_some());
    }
}
