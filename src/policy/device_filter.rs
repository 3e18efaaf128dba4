//! Device filter rules (`conditions.devices.deviceFilter.rule`): the dynamic-membership rule
//! syntax restricted to the device properties Conditional Access supports
//! (entra-semantics.md §1.9, §2.2 "Device filter").
//!
//! In: the rule text. Out: an expression tree that evaluates with three-valued logic against any
//! [`DeviceProperties`]: `Some(true)`, `Some(false)`, or `None` when a property the rule needs is
//! not known from the inputs. [`DeviceFilterRule`]'s `Display` is a canonical pretty-printer that
//! [`DeviceFilterRule::parse`] reads back to the same tree.
//!
//! Syntax accepted: `device.<property> <operator> <value>`; operators with or without the hyphen
//! (`-eq`, `eq`), case-insensitive; `-and`, `-or`, `-not` and parentheses, with precedence
//! comparison > `-not` > `-and` > `-or`; strings in double or single quotes with backtick escapes;
//! lists `["a", "b"]`; bare `True`/`False`; `null`. Property names are matched case-insensitively
//! (real rules write `device.deviceid`). Rules longer than 3072 characters are rejected.

use std::fmt;

use regex::Regex;

/// Entra's limit on a rule's length.
pub const MAX_RULE_CHARS: usize = 3072;

/// A device property a filter can test (concept-condition-filters-for-devices.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Property {
    DeviceId,
    DisplayName,
    DeviceOwnership,
    EnrollmentProfileName,
    /// `extensionAttribute1` … `extensionAttribute15`.
    ExtensionAttribute(u8),
    IsCompliant,
    Manufacturer,
    MdmAppId,
    Model,
    OperatingSystem,
    OperatingSystemVersion,
    PhysicalIds,
    ProfileType,
    SystemLabels,
    TrustType,
}

/// Which operators a property allows (the table in entra-semantics.md §1.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// `deviceId`, `mdmAppId`: Equals, NotEquals, In, NotIn.
    Id,
    /// Free-text properties: every string operator.
    Text,
    /// `deviceOwnership`, `isCompliant`, `profileType`, `trustType`: Equals, NotEquals.
    Enum,
    /// `physicalIds`, `systemLabels`: Contains, NotContains (whole-item match).
    Collection,
}

impl Property {
    pub const ALL_FIXED: [Property; 14] = [
        Property::DeviceId,
        Property::DisplayName,
        Property::DeviceOwnership,
        Property::EnrollmentProfileName,
        Property::IsCompliant,
        Property::Manufacturer,
        Property::MdmAppId,
        Property::Model,
        Property::OperatingSystem,
        Property::OperatingSystemVersion,
        Property::PhysicalIds,
        Property::ProfileType,
        Property::SystemLabels,
        Property::TrustType,
    ];

    fn name(self) -> std::borrow::Cow<'static, str> {
        use std::borrow::Cow::Borrowed;
        match self {
            Property::DeviceId => Borrowed("deviceId"),
            Property::DisplayName => Borrowed("displayName"),
            Property::DeviceOwnership => Borrowed("deviceOwnership"),
            Property::EnrollmentProfileName => Borrowed("enrollmentProfileName"),
            Property::ExtensionAttribute(n) => format!("extensionAttribute{n}").into(),
            Property::IsCompliant => Borrowed("isCompliant"),
            Property::Manufacturer => Borrowed("manufacturer"),
            Property::MdmAppId => Borrowed("mdmAppId"),
            Property::Model => Borrowed("model"),
            Property::OperatingSystem => Borrowed("operatingSystem"),
            Property::OperatingSystemVersion => Borrowed("operatingSystemVersion"),
            Property::PhysicalIds => Borrowed("physicalIds"),
            Property::ProfileType => Borrowed("profileType"),
            Property::SystemLabels => Borrowed("systemLabels"),
            Property::TrustType => Borrowed("trustType"),
        }
    }

    fn from_name(name: &str) -> Option<Property> {
        let lower = name.to_ascii_lowercase();
        if let Some(n) = lower.strip_prefix("extensionattribute") {
            // `1` … `15`, without leading zeros or signs.
            return match n.parse::<u8>() {
                Ok(k @ 1..=15) if n == k.to_string() => Some(Property::ExtensionAttribute(k)),
                _ => None,
            };
        }
        Property::ALL_FIXED
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(&lower))
    }

    fn class(self) -> Class {
        match self {
            Property::DeviceId | Property::MdmAppId => Class::Id,
            Property::DeviceOwnership
            | Property::IsCompliant
            | Property::ProfileType
            | Property::TrustType => Class::Enum,
            Property::PhysicalIds | Property::SystemLabels => Class::Collection,
            _ => Class::Text,
        }
    }
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// What the inputs say about one property of the device in a sign-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropertyValue<'a> {
    /// The property is null: for an unregistered device, every property.
    Null,
    /// The inputs do not say (a property the sign-in log does not carry).
    Unknown,
    Str(&'a str),
    Bool(bool),
    List(&'a [String]),
}

/// A device as a filter sees it.
pub trait DeviceProperties {
    fn get(&self, property: Property) -> PropertyValue<'_>;
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    StartsWith,
    NotStartsWith,
    EndsWith,
    NotEndsWith,
    Contains,
    NotContains,
    Match,
    NotMatch,
    In,
    NotIn,
}

impl Op {
    const ALL: [Op; 12] = [
        Op::Eq,
        Op::Ne,
        Op::StartsWith,
        Op::NotStartsWith,
        Op::EndsWith,
        Op::NotEndsWith,
        Op::Contains,
        Op::NotContains,
        Op::Match,
        Op::NotMatch,
        Op::In,
        Op::NotIn,
    ];

    fn word(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Ne => "ne",
            Op::StartsWith => "startsWith",
            Op::NotStartsWith => "notStartsWith",
            Op::EndsWith => "endsWith",
            Op::NotEndsWith => "notEndsWith",
            Op::Contains => "contains",
            Op::NotContains => "notContains",
            Op::Match => "match",
            Op::NotMatch => "notMatch",
            Op::In => "in",
            Op::NotIn => "notIn",
        }
    }

    fn negative(self) -> bool {
        matches!(
            self,
            Op::Ne
                | Op::NotStartsWith
                | Op::NotEndsWith
                | Op::NotContains
                | Op::NotMatch
                | Op::NotIn
        )
    }

    fn allowed_for(self, class: Class) -> bool {
        match class {
            Class::Id => matches!(self, Op::Eq | Op::Ne | Op::In | Op::NotIn),
            Class::Enum => matches!(self, Op::Eq | Op::Ne),
            Class::Collection => matches!(self, Op::Contains | Op::NotContains),
            Class::Text => true,
        }
    }
}

/// The right-hand side of a comparison.
#[derive(Clone, Debug)]
pub enum Value {
    Str(String),
    Bool(bool),
    Null,
    List(Vec<String>),
    /// `-match` / `-notMatch`: the pattern as written, compiled case-insensitively.
    Regex(String, Regex),
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Null, Value::Null) => true,
            (Value::List(a), Value::List(b)) => a == b,
            (Value::Regex(a, _), Value::Regex(b, _)) => a == b,
            _ => false,
        }
    }
}

/// A parsed rule.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Compare {
        property: Property,
        op: Op,
        value: Value,
    },
    Not(Box<Expr>),
    /// Two or more operands.
    And(Vec<Expr>),
    /// Two or more operands.
    Or(Vec<Expr>),
}

/// A parsed, checked device filter rule.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceFilterRule {
    pub expr: Expr,
}

/// Why a rule does not parse, with the byte offset into the rule text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at character {offset})")]
pub struct DeviceFilterError {
    pub offset: usize,
    pub message: String,
}

impl DeviceFilterRule {
    pub fn parse(rule: &str) -> Result<Self, DeviceFilterError> {
        let chars = rule.chars().count();
        if chars > MAX_RULE_CHARS {
            return Err(DeviceFilterError {
                offset: 0,
                message: format!(
                    "the rule has {chars} characters; Entra allows at most {MAX_RULE_CHARS}"
                ),
            });
        }
        let tokens = lex(rule)?;
        let mut p = Parser {
            tokens: &tokens,
            pos: 0,
            end: rule.len(),
        };
        let expr = p.or()?;
        if let Some(t) = p.peek() {
            return Err(p.error_at(t.offset, format!("unexpected {}", t.kind.describe())));
        }
        Ok(DeviceFilterRule { expr })
    }

    /// `Some(true)` when the rule matches the device, `Some(false)` when it does not, `None` when
    /// the answer depends on a property the inputs do not give (Kleene logic: `false -and ?` is
    /// `false`, `true -or ?` is `true`).
    pub fn evaluate(&self, device: &impl DeviceProperties) -> Option<bool> {
        eval(&self.expr, device)
    }
}

fn eval(e: &Expr, d: &impl DeviceProperties) -> Option<bool> {
    match e {
        Expr::Compare {
            property,
            op,
            value,
        } => compare(d.get(*property), *op, value),
        Expr::Not(inner) => eval(inner, d).map(|b| !b),
        Expr::And(items) => {
            let mut unknown = false;
            for i in items {
                match eval(i, d) {
                    Some(false) => return Some(false),
                    None => unknown = true,
                    Some(true) => {}
                }
            }
            (!unknown).then_some(true)
        }
        Expr::Or(items) => {
            let mut unknown = false;
            for i in items {
                match eval(i, d) {
                    Some(true) => return Some(true),
                    None => unknown = true,
                    Some(false) => {}
                }
            }
            (!unknown).then_some(false)
        }
    }
}

fn compare(actual: PropertyValue<'_>, op: Op, value: &Value) -> Option<bool> {
    let text: std::borrow::Cow<'_, str> = match actual {
        PropertyValue::Unknown => return None,
        PropertyValue::Null => {
            // A null property: `-eq null` holds; otherwise positive operators never match and
            // negative ones always do (device-filter doc).
            return Some(match (op, value) {
                (Op::Eq, Value::Null) => true,
                (Op::Ne, Value::Null) => false,
                _ => op.negative(),
            });
        }
        PropertyValue::List(items) => {
            let hit = match value {
                Value::Str(v) => items.iter().any(|i| i.eq_ignore_ascii_case(v)),
                _ => false,
            };
            return Some(hit != op.negative());
        }
        PropertyValue::Bool(b) => if b { "True" } else { "False" }.into(),
        PropertyValue::Str(s) => s.into(),
    };
    if let Some(positive) = compare_ascii(&text, op, value) {
        return Some(positive != op.negative());
    }
    let lower = text.to_lowercase();
    let positive = match (op, value) {
        (_, Value::Null) => false, // a non-null value is never null: `-ne null` → true below
        (_, Value::Bool(b)) => lower == if *b { "true" } else { "false" },
        (Op::Eq | Op::Ne, Value::Str(v)) => lower == v.to_lowercase(),
        (Op::StartsWith | Op::NotStartsWith, Value::Str(v)) => lower.starts_with(&v.to_lowercase()),
        (Op::EndsWith | Op::NotEndsWith, Value::Str(v)) => lower.ends_with(&v.to_lowercase()),
        (Op::Contains | Op::NotContains, Value::Str(v)) => lower.contains(&v.to_lowercase()),
        (Op::In | Op::NotIn, Value::List(vs)) => vs.iter().any(|v| v.to_lowercase() == lower),
        (Op::Match | Op::NotMatch, Value::Regex(_, re)) => re.is_match(&text),
        // The parser pairs operators and values; other pairs cannot occur.
        _ => false,
    };
    Some(positive != op.negative())
}

/// `compare`'s positive test without allocating, when the logged text and the rule's string are
/// ASCII (device ids, trust types, OS names): ASCII case folding is what `to_lowercase` does to
/// ASCII. `None`: not ASCII, or an operator this does not cover (the general path decides).
fn compare_ascii(text: &str, op: Op, value: &Value) -> Option<bool> {
    if !text.is_ascii() {
        return None;
    }
    let t = text.as_bytes();
    match (op, value) {
        (_, Value::Bool(b)) => Some(text.eq_ignore_ascii_case(if *b { "true" } else { "false" })),
        (_, Value::Str(v)) if !v.is_ascii() => None,
        (Op::Eq | Op::Ne, Value::Str(v)) => Some(text.eq_ignore_ascii_case(v)),
        (Op::StartsWith | Op::NotStartsWith, Value::Str(v)) => {
            let v = v.as_bytes();
            Some(t.len() >= v.len() && t[..v.len()].eq_ignore_ascii_case(v))
        }
        (Op::EndsWith | Op::NotEndsWith, Value::Str(v)) => {
            let v = v.as_bytes();
            Some(t.len() >= v.len() && t[t.len() - v.len()..].eq_ignore_ascii_case(v))
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Lexer

#[derive(Clone, Debug, PartialEq)]
enum Kind {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Str(String),
    /// A bare word: `device.trustType`, `-eq`, `and`, `True`, `null`.
    Word(String),
}

impl Kind {
    fn describe(&self) -> String {
        match self {
            Kind::LParen => "`(`".into(),
            Kind::RParen => "`)`".into(),
            Kind::LBracket => "`[`".into(),
            Kind::RBracket => "`]`".into(),
            Kind::Comma => "`,`".into(),
            Kind::Str(s) => format!("string \"{s}\""),
            Kind::Word(w) => format!("`{w}`"),
        }
    }
}

#[derive(Clone, Debug)]
struct Token {
    kind: Kind,
    offset: usize,
}

fn lex(rule: &str) -> Result<Vec<Token>, DeviceFilterError> {
    let mut out = Vec::new();
    let mut it = rule.char_indices().peekable();
    while let Some(&(i, c)) = it.peek() {
        let simple = match c {
            '(' => Some(Kind::LParen),
            ')' => Some(Kind::RParen),
            '[' => Some(Kind::LBracket),
            ']' => Some(Kind::RBracket),
            ',' => Some(Kind::Comma),
            _ => None,
        };
        if let Some(kind) = simple {
            it.next();
            out.push(Token { kind, offset: i });
            continue;
        }
        if c.is_whitespace() {
            it.next();
            continue;
        }
        if matches!(c, '"' | '\'') {
            it.next();
            let mut s = String::new();
            let mut closed = false;
            while let Some((_, ch)) = it.next() {
                match ch {
                    '`' => match it.next() {
                        Some((_, esc)) => s.push(esc),
                        None => break,
                    },
                    ch if ch == c => {
                        closed = true;
                        break;
                    }
                    ch => s.push(ch),
                }
            }
            if !closed {
                return Err(DeviceFilterError {
                    offset: i,
                    message: "a string is not closed".into(),
                });
            }
            out.push(Token {
                kind: Kind::Str(s),
                offset: i,
            });
            continue;
        }
        let mut w = String::new();
        while let Some(&(_, ch)) = it.peek() {
            if ch.is_whitespace() || matches!(ch, '(' | ')' | '[' | ']' | ',' | '"' | '\'') {
                break;
            }
            w.push(ch);
            it.next();
        }
        out.push(Token {
            kind: Kind::Word(w),
            offset: i,
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Parser (recursive descent: or → and → not → comparison)

struct Parser<'t> {
    tokens: &'t [Token],
    pos: usize,
    end: usize,
}

fn keyword(w: &str) -> String {
    w.strip_prefix('-').unwrap_or(w).to_ascii_lowercase()
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn error_at(&self, offset: usize, message: String) -> DeviceFilterError {
        DeviceFilterError { offset, message }
    }

    fn here(&self) -> usize {
        self.peek().map_or(self.end, |t| t.offset)
    }

    fn at_word(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Token { kind: Kind::Word(w), .. }) if keyword(w) == kw)
    }

    fn or(&mut self) -> Result<Expr, DeviceFilterError> {
        let mut items = vec![self.and()?];
        while self.at_word("or") {
            self.pos += 1;
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Or(items)
        })
    }

    fn and(&mut self) -> Result<Expr, DeviceFilterError> {
        let mut items = vec![self.not()?];
        while self.at_word("and") {
            self.pos += 1;
            items.push(self.not()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::And(items)
        })
    }

    fn not(&mut self) -> Result<Expr, DeviceFilterError> {
        if self.at_word("not") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, DeviceFilterError> {
        let Some(t) = self.peek().cloned() else {
            return Err(self.error_at(
                self.end,
                "the rule ends where a condition was expected".into(),
            ));
        };
        match &t.kind {
            Kind::LParen => {
                self.pos += 1;
                let e = self.or()?;
                match self.peek() {
                    Some(Token {
                        kind: Kind::RParen, ..
                    }) => {
                        self.pos += 1;
                        Ok(e)
                    }
                    _ => Err(self.error_at(
                        self.here(),
                        format!("`(` at character {} is not closed", t.offset),
                    )),
                }
            }
            Kind::Word(w) => {
                self.pos += 1;
                self.comparison(w, t.offset)
            }
            other => Err(self.error_at(
                t.offset,
                format!("expected `device.<property>`, found {}", other.describe()),
            )),
        }
    }

    fn comparison(&mut self, word: &str, offset: usize) -> Result<Expr, DeviceFilterError> {
        let Some((prefix, name)) = word.split_once('.') else {
            return Err(self.error_at(
                offset,
                format!("expected `device.<property>`, found `{word}`"),
            ));
        };
        if !prefix.eq_ignore_ascii_case("device") {
            return Err(self.error_at(
                offset,
                format!("`{word}`: device filters test `device.` properties only"),
            ));
        }
        let property = Property::from_name(name).ok_or_else(|| {
            self.error_at(
                offset,
                format!("`{name}` is not a device property a filter can use"),
            )
        })?;
        let op_offset = self.here();
        let op = match self.peek() {
            Some(Token {
                kind: Kind::Word(w),
                ..
            }) => {
                let k = keyword(w);
                Op::ALL
                    .into_iter()
                    .find(|o| o.word().eq_ignore_ascii_case(&k))
                    .ok_or_else(|| self.error_at(op_offset, format!("`{w}` is not an operator")))?
            }
            Some(t) => {
                return Err(self.error_at(
                    op_offset,
                    format!(
                        "expected an operator after `{word}`, found {}",
                        t.kind.describe()
                    ),
                ))
            }
            None => return Err(self.error_at(op_offset, format!("`{word}` has no operator"))),
        };
        self.pos += 1;
        if !op.allowed_for(property.class()) {
            return Err(self.error_at(
                op_offset,
                format!("operator `-{}` cannot be used with `{property}`", op.word()),
            ));
        }
        let value_offset = self.here();
        let value = self.value(op, value_offset)?;
        Ok(Expr::Compare {
            property,
            op,
            value,
        })
    }

    fn value(&mut self, op: Op, offset: usize) -> Result<Value, DeviceFilterError> {
        let Some(t) = self.peek().cloned() else {
            return Err(self.error_at(offset, format!("operator `-{}` has no value", op.word())));
        };
        self.pos += 1;
        let list_op = matches!(op, Op::In | Op::NotIn);
        let value = match t.kind {
            Kind::LBracket if list_op => {
                let mut items = Vec::new();
                loop {
                    match self.peek().cloned() {
                        Some(Token {
                            kind: Kind::RBracket,
                            ..
                        }) if items.is_empty() => {
                            self.pos += 1;
                            break;
                        }
                        Some(Token {
                            kind: Kind::Str(s), ..
                        }) => {
                            self.pos += 1;
                            items.push(s);
                        }
                        Some(other) => {
                            return Err(self.error_at(
                                other.offset,
                                format!(
                                    "expected a string in the list, found {}",
                                    other.kind.describe()
                                ),
                            ))
                        }
                        None => {
                            return Err(self.error_at(self.end, "the list is not closed".into()))
                        }
                    }
                    match self.peek().map(|t| t.kind.clone()) {
                        Some(Kind::Comma) => self.pos += 1,
                        Some(Kind::RBracket) => {
                            self.pos += 1;
                            break;
                        }
                        _ => {
                            return Err(self
                                .error_at(self.here(), "expected `,` or `]` in the list".into()))
                        }
                    }
                }
                Value::List(items)
            }
            _ if list_op => {
                return Err(self.error_at(
                    t.offset,
                    format!("operator `-{}` needs a list `[\"a\", \"b\"]`", op.word()),
                ))
            }
            Kind::Str(s) if matches!(op, Op::Match | Op::NotMatch) => {
                let re = regex::RegexBuilder::new(&s)
                    .case_insensitive(true)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| {
                        self.error_at(t.offset, format!("invalid regular expression: {e}"))
                    })?;
                Value::Regex(s, re)
            }
            Kind::Str(s) => Value::Str(s),
            Kind::Word(w) if w.eq_ignore_ascii_case("true") => Value::Bool(true),
            Kind::Word(w) if w.eq_ignore_ascii_case("false") => Value::Bool(false),
            Kind::Word(w) if w.eq_ignore_ascii_case("null") && matches!(op, Op::Eq | Op::Ne) => {
                Value::Null
            }
            other => {
                return Err(self.error_at(
                    t.offset,
                    format!(
                        "expected a value after `-{}`, found {}",
                        op.word(),
                        other.describe()
                    ),
                ))
            }
        };
        if matches!(op, Op::Match | Op::NotMatch) && !matches!(value, Value::Regex(..)) {
            return Err(self.error_at(
                t.offset,
                format!("operator `-{}` needs a quoted pattern", op.word()),
            ));
        }
        Ok(value)
    }
}

// ---------------------------------------------------------------------------------------------
// Pretty-printer: canonical text that parses back to the same tree.

fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        if matches!(c, '"' | '`') {
            f.write_str("`")?;
        }
        write!(f, "{c}")?;
    }
    f.write_str("\"")
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) | Value::Regex(s, _) => write_quoted(f, s),
            Value::Bool(true) => f.write_str("True"),
            Value::Bool(false) => f.write_str("False"),
            Value::Null => f.write_str("null"),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, s) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write_quoted(f, s)?;
                }
                f.write_str("]")
            }
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Operands that are themselves `-and`/`-or` chains are parenthesised, so the printed
        // text has exactly this tree's shape.
        fn operand(f: &mut fmt::Formatter<'_>, e: &Expr) -> fmt::Result {
            match e {
                Expr::And(_) | Expr::Or(_) => write!(f, "({e})"),
                _ => write!(f, "{e}"),
            }
        }
        match self {
            Expr::Compare {
                property,
                op,
                value,
            } => write!(f, "device.{property} -{} {value}", op.word()),
            Expr::Not(inner) => {
                f.write_str("-not ")?;
                operand(f, inner)
            }
            Expr::And(items) | Expr::Or(items) => {
                let sep = if matches!(self, Expr::And(_)) {
                    " -and "
                } else {
                    " -or "
                };
                for (i, e) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(sep)?;
                    }
                    operand(f, e)?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for DeviceFilterRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.expr.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dev(Vec<(Property, PropertyValue<'static>)>);
    impl DeviceProperties for Dev {
        fn get(&self, p: Property) -> PropertyValue<'_> {
            self.0
                .iter()
                .find(|(q, _)| *q == p)
                .map_or(PropertyValue::Unknown, |(_, v)| *v)
        }
    }
    struct Unregistered;
    impl DeviceProperties for Unregistered {
        fn get(&self, _: Property) -> PropertyValue<'_> {
            PropertyValue::Null
        }
    }

    fn eval(rule: &str, d: &impl DeviceProperties) -> Option<bool> {
        DeviceFilterRule::parse(rule).unwrap().evaluate(d)
    }

    #[test]
    fn parses_real_rules_from_the_fixtures() {
        for rule in [
            "device.trustType -ne 'AzureAD' -and device.trustType -ne 'ServerAD' -and device.trustType -ne 'Workplace'",
            "device.isCompliant -eq True -and device.deviceOwnership -eq \"Company\"",
            "device.isCompliant -eq True -or device.trustType -eq \"ServerAD\"",
            "device.isCompliant -ne True -and device.trustType -ne \"ServerAD\"",
            "device.deviceid eq \"1a2b\" or (device.model startsWith \"Surface\" and not device.extensionAttribute15 -in [\"x\", \"y\"])",
        ] {
            let r = DeviceFilterRule::parse(rule).unwrap_or_else(|e| panic!("{rule}: {e}"));
            assert_eq!(DeviceFilterRule::parse(&r.to_string()).unwrap(), r, "{rule}");
        }
    }

    #[test]
    fn precedence_and_binds_tighter_than_or_and_not_tighter_than_and() {
        let r = DeviceFilterRule::parse(
            "device.model -eq \"a\" -or device.model -eq \"b\" -and -not device.model -eq \"c\"",
        )
        .unwrap();
        let Expr::Or(items) = &r.expr else {
            panic!("{r:?}")
        };
        assert!(matches!(&items[1], Expr::And(a) if matches!(a[1], Expr::Not(_))));
    }

    #[test]
    fn unregistered_device_positive_never_matches_negative_always_does() {
        assert_eq!(
            eval("device.trustType -eq \"AzureAD\"", &Unregistered),
            Some(false)
        );
        assert_eq!(
            eval("device.trustType -ne \"AzureAD\"", &Unregistered),
            Some(true)
        );
        assert_eq!(
            eval("device.model -notContains \"x\"", &Unregistered),
            Some(true)
        );
        assert_eq!(eval("device.model -eq null", &Unregistered), Some(true));
        assert_eq!(
            eval("device.isCompliant -eq True", &Unregistered),
            Some(false)
        );
    }

    #[test]
    fn three_valued_logic_with_unknown_properties() {
        let d = Dev(vec![(Property::IsCompliant, PropertyValue::Bool(false))]);
        assert_eq!(
            eval(
                "device.isCompliant -eq True -and device.model -eq \"x\"",
                &d
            ),
            Some(false)
        );
        assert_eq!(
            eval(
                "device.isCompliant -eq False -and device.model -eq \"x\"",
                &d
            ),
            None
        );
        assert_eq!(
            eval(
                "device.isCompliant -eq False -or device.model -eq \"x\"",
                &d
            ),
            Some(true)
        );
        assert_eq!(eval("-not device.model -eq \"x\"", &d), None);
    }

    #[test]
    fn string_operators_are_case_insensitive() {
        let labels = Box::leak(Box::new(vec!["M365Managed".to_owned()]));
        let d = Dev(vec![
            (Property::TrustType, PropertyValue::Str("AzureAD")),
            (Property::Model, PropertyValue::Str("Surface Pro 9")),
            (Property::SystemLabels, PropertyValue::List(labels)),
        ]);
        assert_eq!(eval("device.trusttype -EQ \"azuread\"", &d), Some(true));
        assert_eq!(eval("device.model -startsWith \"surface\"", &d), Some(true));
        assert_eq!(eval("device.model -endsWith \"PRO 9\"", &d), Some(true));
        assert_eq!(eval("device.model -contains \"pro\"", &d), Some(true));
        assert_eq!(
            eval("device.model -match \"^surface\\s+pro\"", &d),
            Some(true)
        );
        assert_eq!(
            eval("device.model -notIn [\"Surface Pro 9\"]", &d),
            Some(false)
        );
        assert_eq!(
            eval("device.systemLabels -contains \"m365managed\"", &d),
            Some(true)
        );
        assert_eq!(
            eval("device.systemLabels -contains \"M365\"", &d),
            Some(false)
        );
    }

    #[test]
    fn errors_name_the_offset_and_the_problem() {
        let e = DeviceFilterRule::parse("device.isCompliant -contains \"x\"").unwrap_err();
        assert!(
            e.message.contains("cannot be used with `isCompliant`") && e.offset == 19,
            "{e}"
        );
        let e = DeviceFilterRule::parse("device.colour -eq \"red\"").unwrap_err();
        assert!(e.message.contains("`colour`"), "{e}");
        let e = DeviceFilterRule::parse("(device.model -eq \"x\"").unwrap_err();
        assert!(e.message.contains("not closed"), "{e}");
        let e = DeviceFilterRule::parse("device.model -eq \"x").unwrap_err();
        assert!(e.message.contains("string is not closed"), "{e}");
        assert!(DeviceFilterRule::parse("device.model -in \"x\"").is_err());
        assert!(DeviceFilterRule::parse("device.extensionAttribute16 -eq \"x\"").is_err());
        assert!(DeviceFilterRule::parse("device.extensionAttribute01 -eq \"x\"").is_err());
        assert!(DeviceFilterRule::parse("").is_err());
        let long = format!("device.model -eq \"{}\"", "x".repeat(3100));
        assert!(DeviceFilterRule::parse(&long)
            .unwrap_err()
            .message
            .contains("3072"));
    }

    #[test]
    fn backtick_escapes_quotes() {
        let r = DeviceFilterRule::parse("device.displayName -eq \"Bob`\"s PC\"").unwrap();
        let d = Dev(vec![(
            Property::DisplayName,
            PropertyValue::Str("bob\"s pc"),
        )]);
        assert_eq!(r.evaluate(&d), Some(true));
        assert_eq!(DeviceFilterRule::parse(&r.to_string()).unwrap(), r);
    }
}
