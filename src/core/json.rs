//! Reading typed documents from JSON text through one path: text → [`serde_json::Value`] →
//! the type (its `Deserialize` driven by `&Value`).
//!
//! Why not `serde_json::from_str::<T>`: serde instantiates a type's derived deserializer once per
//! deserializer it meets, and the text reader inlines its parser into every struct visitor, so
//! each document type read from text added a second, larger copy of its whole type tree to the
//! wasm (the `&Value` copies exist anyway: rules and plans are read from `Value`). Reading every
//! stored document here keeps one copy per type (docs/performance.md has the bytes saved).
//!
//! The parse is the same (same numbers, same strings, trailing text refused); a syntax error
//! still names its line and column, a type error (a missing field, a wrong type) now does not.

use serde::de::{DeserializeOwned, Deserializer, Error as _, Unexpected};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Parses `text` as JSON and reads a `T` from it.
pub fn from_text<T: DeserializeOwned>(text: &str) -> Result<T, serde_json::Error> {
    let v: Value = serde_json::from_str(text)?;
    T::deserialize(&v)
}

/// A JSON object from its members, a later duplicate key replacing an earlier one (as
/// `collect::<Map<_, _>>()` does). Why not `collect`: `SortedMap::from_iter` sorts its input, and
/// every call site instantiates its own copy of the stable sort (~4 KB of wasm each); inserting
/// one by one needs none.
pub fn object(members: impl IntoIterator<Item = (String, Value)>) -> Map<String, Value> {
    let mut m = Map::new();
    for (k, v) in members {
        m.insert(k, v);
    }
    m
}

/// The generic shell of a hand-written `Deserialize` for an internally tagged enum or a struct
/// with a flattened part: buffers the input as a [`Value`] and hands it to `read`, which is
/// not generic. Why: serde derives those through its `Content` buffer, a third deserializer
/// per type on top of the `&Value` one (~38 KB of wasm for the rollout types;
/// docs/performance.md); with every document read through `&Value` (`from_text`) the buffer is
/// the `Value` itself. The JSON accepted and the error texts are serde's.
pub fn deserialize_with<'de, D, T>(
    d: D,
    read: fn(&Value) -> Result<T, serde_json::Error>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    let v = Value::deserialize(d)?;
    read(&v).map_err(D::Error::custom)
}

/// The members of an object, or serde's error for anything else (`expected` names the type,
/// e.g. "internally tagged enum Trigger").
pub fn members<'a>(
    v: &'a Value,
    expected: &'static str,
) -> Result<&'a Map<String, Value>, serde_json::Error> {
    match v {
        Value::Object(m) => Ok(m),
        other => Err(serde_json::Error::invalid_type(
            unexpected(other),
            &expected,
        )),
    }
}

/// The tag member `name` of an internally tagged enum (serde's errors: a missing tag, a tag
/// that is not a string).
pub fn tag<'a>(
    m: &'a Map<String, Value>,
    name: &'static str,
) -> Result<&'a str, serde_json::Error> {
    match m.get(name) {
        None => Err(serde_json::Error::missing_field(name)),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(serde_json::Error::invalid_type(
            unexpected(other),
            &"variant identifier",
        )),
    }
}

/// serde's error for an unknown tag value.
pub fn unknown_variant(tag: &str, variants: &'static [&'static str]) -> serde_json::Error {
    serde_json::Error::unknown_variant(tag, variants)
}

/// A value as serde's `Unexpected` (what serde_json's own errors print).
fn unexpected(v: &Value) -> Unexpected<'_> {
    match v {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Unexpected::Unsigned(u),
            (None, Some(i), _) => Unexpected::Signed(i),
            (None, None, Some(f)) => Unexpected::Float(f),
            _ => Unexpected::Other("number"),
        },
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Doc {
        n: u32,
        by: BTreeMap<u64, f64>,
        note: Option<String>,
    }

    #[test]
    fn reads_what_from_str_reads() {
        let t = r#"{"n": 3, "by": {"7": 0.1, "9": 2}, "note": "a\u00e9"}"#;
        let a: Doc = from_text(t).unwrap();
        let b: Doc = serde_json::from_str(t).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.by.get(&9), Some(&2.0));
    }

    #[test]
    fn refuses_what_from_str_refuses() {
        for t in [
            r#"{"n": 3, "by": {}} x"#,
            r#"{"by": {}}"#,
            r#"{"n": -1, "by": {}}"#,
            "{",
        ] {
            assert!(from_text::<Doc>(t).is_err(), "{t}");
            assert!(serde_json::from_str::<Doc>(t).is_err(), "{t}");
        }
        let e = from_text::<Doc>(r#"{"by": {}}"#).unwrap_err().to_string();
        assert_eq!(e, "missing field `n`");
    }

    #[test]
    fn object_equals_collect() {
        let members = || {
            [("b", 1), ("a", 2), ("b", 3), ("c", 4)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), Value::from(v)))
        };
        let collected: Map<String, Value> = members().collect();
        assert_eq!(object(members()), collected);
        assert_eq!(
            Value::Object(object(members())).to_string(),
            r#"{"a":2,"b":3,"c":4}"#
        );
    }
}
