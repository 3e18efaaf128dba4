//! The device filter parser against its own pretty-printer.

use ca_replay::policy::device_filter::{DeviceFilterRule, Expr, Op, Property, Value};
use proptest::prelude::*;

fn property() -> impl Strategy<Value = Property> {
    prop_oneof![
        proptest::sample::select(Property::ALL_FIXED.to_vec()),
        (1u8..=15).prop_map(Property::ExtensionAttribute),
    ]
}

/// Strings with the characters that need care: quotes, backticks, spaces, brackets, operators.
fn text() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-zA-Z0-9 \"'`()\\[\\],.\\-_é]{0,12}").expect("regex")
}

/// A comparison the parser accepts: an operator allowed for the property and a value of the
/// right kind for the operator.
fn comparison() -> impl Strategy<Value = Expr> {
    (
        property(),
        any::<u8>(),
        text(),
        proptest::collection::vec(text(), 0..4),
        any::<bool>(),
    )
        .prop_map(|(property, pick, s, list, b)| {
            let allowed: &[Op] = match property {
                Property::DeviceId | Property::MdmAppId => &[Op::Eq, Op::Ne, Op::In, Op::NotIn],
                Property::DeviceOwnership
                | Property::IsCompliant
                | Property::ProfileType
                | Property::TrustType => &[Op::Eq, Op::Ne],
                Property::PhysicalIds | Property::SystemLabels => &[Op::Contains, Op::NotContains],
                _ => &[
                    Op::Eq,
                    Op::Ne,
                    Op::StartsWith,
                    Op::NotStartsWith,
                    Op::EndsWith,
                    Op::NotEndsWith,
                    Op::Contains,
                    Op::NotContains,
                    Op::In,
                    Op::NotIn,
                    Op::Match,
                    Op::NotMatch,
                ],
            };
            let op = allowed[pick as usize % allowed.len()];
            let value = match op {
                Op::In | Op::NotIn => Value::List(list),
                Op::Match | Op::NotMatch => {
                    // Any literal text is a valid pattern once escaped.
                    let pattern = regex::escape(&s);
                    let re = regex::RegexBuilder::new(&pattern)
                        .case_insensitive(true)
                        .build()
                        .expect("escaped pattern");
                    Value::Regex(pattern, re)
                }
                Op::Eq | Op::Ne if pick % 5 == 0 => Value::Null,
                Op::Eq | Op::Ne if pick % 5 == 1 => Value::Bool(b),
                _ => Value::Str(s),
            };
            Expr::Compare {
                property,
                op,
                value,
            }
        })
}

fn expr() -> impl Strategy<Value = Expr> {
    comparison().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
            proptest::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            proptest::collection::vec(inner, 2..4).prop_map(Expr::Or),
        ]
    })
}

proptest! {
    /// The device filter parser round-trips its own pretty-printer: parse(print(rule)) == rule.
    #[test]
    fn device_filter_parser_round_trips_its_printer(e in expr()) {
        let rule = DeviceFilterRule { expr: e };
        let text = rule.to_string();
        prop_assume!(text.chars().count() <= ca_replay::policy::device_filter::MAX_RULE_CHARS);
        let parsed = DeviceFilterRule::parse(&text)
            .map_err(|err| TestCaseError::fail(format!("{err}\n  text: {text}")))?;
        prop_assert_eq!(parsed, rule, "text: {}", text);
    }
}
