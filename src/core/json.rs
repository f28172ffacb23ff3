//! Reading typed documents from JSON text through one path: text → [`serde_json::Value`] →
//! the type (its `Deserialize` driven by `&Value`).
//!
//! Why not `serde_json::from_str::<T>`: serde instantiates a type's derived deserializer once per
//! deserializer it meets, and the text reader inlines its parser into every struct visitor, so
//! each document type read from text added a second, larger copy of its whole type tree to the
//! wasm (the `&Value` copies exist anyway: rules and plans are read from `Value`). Reading every
//! stored document here keeps one copy per type (README "Benchmarks" has the bytes saved).
//!
//! The parse is the same (same numbers, same strings, trailing text refused); a syntax error
//! still names its line and column, a type error (a missing field, a wrong type) now does not.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Parses `text` as JSON and reads a `T` from it.
pub fn from_text<T: DeserializeOwned>(text: &str) -> Result<T, serde_json::Error> {
    let v: Value = serde_json::from_str(text)?;
    T::deserialize(&v)
}

/// A JSON object from its members, a later duplicate key replacing an earlier one (as
/// `collect::<Map<_, _>>()` does). Why not `collect`: `BTreeMap::from_iter` sorts its input, and
/// every call site instantiates its own copy of the stable sort (~4 KB of wasm each); inserting
/// one by one needs none.
pub fn object(members: impl IntoIterator<Item = (String, Value)>) -> Map<String, Value> {
    let mut m = Map::new();
    for (k, v) in members {
        m.insert(k, v);
    }
    m
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
