//! Finding known values in free text: one Aho-Corasick automaton over every spelling
//! (ASCII case-insensitive), and per kind of value a rule for where a match may start and end,
//! so that `10.0.0.1` is not found inside `10.0.0.12`, nor `a@x.com` inside `ba@x.com`.
//!
//! In: (spelling, edge rule, target) triples. Out: for a text, the non-overlapping matches that
//! respect their edge rule, leftmost first and the longest at one position.

use std::ops::Range;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

/// Where a match of a value may start and end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Edge {
    /// Dotted IPv4: no digit, and no `.digit`, on either side (`10.0.0.1` is not in
    /// `10.0.0.12` nor in `110.0.0.1`; `from 10.0.0.1.` is).
    Ipv4,
    /// IPv6: no hex digit or `:` on either side, no `.digit` after.
    Ipv6,
    /// A user principal name: no local-part character before (`'.-_!#^~%+`, letters, digits),
    /// no letter, digit, `-` or `_` after. A `.` after is an end (`a@x.com.json` holds
    /// `a@x.com`): over-matching only ever hides more.
    Upn,
    /// Ids and names: a word character (letter or digit) at the value's edge must not touch
    /// another one.
    Word,
}

impl Edge {
    fn allows(self, pattern: &str, text: &str, at: &Range<usize>) -> bool {
        let mut before = text[..at.start].chars().rev();
        let (b1, b2) = (before.next(), before.next());
        let mut after = text[at.end..].chars();
        let (a1, a2) = (after.next(), after.next());
        let digit = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit());
        let hex = |c: Option<char>| c.is_some_and(|c| c.is_ascii_hexdigit() || c == ':');
        match self {
            Edge::Ipv4 => {
                let touches_before = digit(b1) || b1 == Some('.') && digit(b2);
                let touches_after = digit(a1) || a1 == Some('.') && digit(a2);
                !(touches_before || touches_after)
            }
            Edge::Ipv6 => {
                let touches_after = hex(a1) || a1 == Some('.') && digit(a2);
                !(hex(b1) || touches_after)
            }
            Edge::Upn => {
                let local = |c: char| c.is_alphanumeric() || "'.-_!#^~%+".contains(c);
                !b1.is_some_and(local)
                    && !a1.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_')
            }
            Edge::Word => {
                let word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
                let first = pattern.chars().next();
                let last = pattern.chars().next_back();
                let glued_before = word(first) && word(b1);
                let glued_after = word(last) && word(a1);
                !(glued_before || glued_after)
            }
        }
    }
}

/// One searched spelling: its edge rule and what it stands for (an index the caller chose).
#[derive(Debug, Clone)]
struct Pattern {
    text: String,
    edge: Edge,
    target: usize,
}

pub(crate) struct Matcher {
    ac: Option<AhoCorasick>,
    patterns: Vec<Pattern>,
}

impl Matcher {
    /// A matcher over `(spelling, edge, target)`; empty spellings are left out. Spellings equal
    /// up to ASCII case are one pattern (the first given wins).
    pub(crate) fn new(
        entries: impl IntoIterator<Item = (String, Edge, usize)>,
    ) -> Result<Matcher, aho_corasick::BuildError> {
        let mut seen = std::collections::HashSet::new();
        let patterns: Vec<Pattern> = entries
            .into_iter()
            .filter(|(t, _, _)| !t.is_empty() && seen.insert(t.to_ascii_lowercase()))
            .map(|(text, edge, target)| Pattern { text, edge, target })
            .collect();
        let ac = if patterns.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::Standard)
                    .ascii_case_insensitive(true)
                    // The contiguous NFA: far less memory than a DFA for many patterns.
                    .kind(Some(AhoCorasickKind::ContiguousNFA))
                    .build(patterns.iter().map(|p| p.text.as_str()))?,
            )
        };
        Ok(Matcher { ac, patterns })
    }

    /// The matches in `text` that respect their edge rule, without overlaps: leftmost first,
    /// the longest at one position. Each is (byte range, target).
    pub(crate) fn find(&self, text: &str) -> Vec<(Range<usize>, usize)> {
        let Some(ac) = &self.ac else {
            return Vec::new();
        };
        let mut all: Vec<(Range<usize>, usize)> = ac
            .find_overlapping_iter(text)
            .filter_map(|m| {
                let p = &self.patterns[m.pattern().as_usize()];
                let r = m.range();
                p.edge.allows(&p.text, text, &r).then_some((r, p.target))
            })
            .collect();
        all.sort_by(|a, b| {
            a.0.start
                .cmp(&b.0.start)
                .then_with(|| b.0.end.cmp(&a.0.end))
        });
        let mut out: Vec<(Range<usize>, usize)> = Vec::new();
        for (r, t) in all {
            if out.last().is_none_or(|(last, _)| r.start >= last.end) {
                out.push((r, t));
            }
        }
        out
    }

    /// Some match that respects its edge rule, if any (the first one the search meets).
    pub(crate) fn any(&self, text: &str) -> Option<(Range<usize>, usize)> {
        self.ac.as_ref()?.find_overlapping_iter(text).find_map(|m| {
            let p = &self.patterns[m.pattern().as_usize()];
            let r = m.range();
            p.edge.allows(&p.text, text, &r).then_some((r, p.target))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(entries: &[(&str, Edge)], text: &str) -> Vec<String> {
        let m = Matcher::new(
            entries
                .iter()
                .enumerate()
                .map(|(i, (t, e))| (t.to_string(), *e, i)),
        )
        .unwrap();
        m.find(text)
            .into_iter()
            .map(|(r, _)| text[r].to_owned())
            .collect()
    }

    #[test]
    fn an_ip_is_not_found_inside_a_longer_number() {
        let ips = [("10.0.0.1", Edge::Ipv4)];
        assert!(found(&ips, "from 10.0.0.12 and 110.0.0.1 and 10.0.0.1.5").is_empty());
        assert_eq!(found(&ips, "from 10.0.0.1."), ["10.0.0.1"]);
        assert_eq!(
            found(&ips, "[10.0.0.1]:443 x10.0.0.1"),
            ["10.0.0.1", "10.0.0.1"]
        );
        let both = [("10.0.0.1", Edge::Ipv4), ("10.0.0.12", Edge::Ipv4)];
        assert_eq!(
            found(&both, "10.0.0.12, 10.0.0.1"),
            ["10.0.0.12", "10.0.0.1"]
        );
        let v6 = [("2001:db8::1", Edge::Ipv6)];
        assert_eq!(found(&v6, "ip 2001:DB8::1 end"), ["2001:DB8::1"]);
        assert!(found(&v6, "2001:db8::1a 2001:db8::12").is_empty());
    }

    #[test]
    fn a_upn_is_not_found_inside_another_but_case_does_not_matter() {
        let upn = [("a@x.com", Edge::Upn)];
        assert!(found(&upn, "ba@x.com b.a@x.com a@x.company").is_empty());
        assert_eq!(
            found(&upn, "user `A@X.COM`, file a@x.com.json"),
            ["A@X.COM", "a@x.com"]
        );
    }

    #[test]
    fn words_respect_word_edges_and_the_longest_wins() {
        let names = [("Bob Li", Edge::Word), ("Bob Lin", Edge::Word)];
        assert_eq!(
            found(&names, "Bob Lin, Bob Li. Bob Lines"),
            ["Bob Lin", "Bob Li"]
        );
        let odd = [("(svc) x", Edge::Word)];
        assert_eq!(found(&odd, "a(svc) x"), ["(svc) x"]);
    }
}
