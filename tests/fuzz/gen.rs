//! Generators shared by the targets: hostile strings and numbers, arbitrary JSON, and byte-level
//! mutations of a serialised document.
//!
//! Why structured: random bytes almost never get past a parser's first `{`, so they only test
//! the error path of `serde_json`. The targets therefore build documents of the right shape with
//! plausible and hostile values, serialise them, and then (about half the time) damage the bytes
//! with [`mutate`] — truncation, deletion, duplication, splicing JSON tokens and invalid UTF-8 —
//! so both the deep paths and the error paths are exercised.

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Map, Value};

/// Text a broken or hostile client would send: blanks, control characters, NUL, lone surrogates
/// (as escapes once serialised), bidi overrides, a BOM, combining marks, CJK and emoji, JSON
/// syntax, numbers in odd spellings, long runs.
pub fn hostile_string() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[a-zA-Z0-9 _.:/-]{0,24}",
        2 => "\\PC{0,16}",
        1 => any::<String>().prop_map(|s| s.chars().take(40).collect()),
        2 => prop::sample::select(vec![
            "", " ", "\t", "\n", "\r\n", "\0", "\u{feff}", "\u{202e}abc", "e\u{301}", "中文查询",
            "代谢组学是什么", "🧪🧬", "true", "false", "TRUE", " yes ", "on", "0", "1", "-0", "1e3",
            "1e999", "-1e999", "NaN", "inf", "-inf", "0x10", "1_000", "٣", "0.5", "50%", "100",
            "101", "-1", "18446744073709551616", "9007199254740993", "null", "[]", "{}", "[\"a\"]",
            "{\"a\":1}", "a,b,,c", " , ", "<script>", "../../etc/passwd", "http://", "https://x",
            "ftp://x", "http://127.0.0.1:9621", "javascript:alert(1)", "lightrag", "perplexity",
            "LightRAG", "hybrid", "bypass", "mix", "text", "user", "assistant", "system",
        ])
        .prop_map(str::to_string),
        1 => ("[a-z]{1,3}", 100usize..3_000).prop_map(|(s, n)| s.repeat(n)),
    ]
    .boxed()
}

/// JSON numbers at the edges: zero, negative zero, fractions, huge, tiny, integer limits.
pub fn edge_number() -> BoxedStrategy<Value> {
    prop_oneof![
        3 => (-5i64..200).prop_map(|v| json!(v)),
        2 => (-2.0f64..200.0).prop_map(|v| json!(v)),
        1 => (0.0f64..=1.0).prop_map(|v| json!(v)),
        1 => any::<i64>().prop_map(|v| json!(v)),
        1 => any::<u64>().prop_map(|v| json!(v)),
        1 => any::<f64>().prop_map(|v| json!(v)), // NaN and ±∞ become null
        1 => prop::sample::select(vec![
            json!(0), json!(-0.0), json!(u64::MAX), json!(i64::MIN), json!(1e308), json!(-1e308),
            json!(5e-324), json!(0.1), json!(99.999_999_999), json!(100.000_000_001), json!(4294967296u64),
        ]),
    ]
    .boxed()
}

/// Any scalar: null, booleans, numbers, hostile strings.
pub fn scalar() -> BoxedStrategy<Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        3 => edge_number(),
        4 => hostile_string().prop_map(Value::String),
    ]
    .boxed()
}

/// Any JSON value, a few levels deep.
pub fn any_json() -> BoxedStrategy<Value> {
    scalar()
        .prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec(("[a-z_]{0,8}", inner), 0..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
        .boxed()
}

/// An object built from optional fields: each `(key, strategy)` is present about two times in
/// three, and now and then a stray field with any value is added.
pub fn object(fields: Vec<(&'static str, BoxedStrategy<Value>)>) -> BoxedStrategy<Value> {
    let parts: Vec<BoxedStrategy<Option<(String, Value)>>> = fields
        .into_iter()
        .map(|(k, s)| {
            prop::option::weighted(0.7, s)
                .prop_map(move |v| v.map(|v| (k.to_string(), v)))
                .boxed()
        })
        .collect();
    (
        parts,
        prop::option::weighted(0.1, ("[a-z_]{1,10}", any_json())),
    )
        .prop_map(|(parts, stray)| {
            let mut m: Map<String, Value> = parts.into_iter().flatten().collect();
            if let Some((k, v)) = stray {
                m.insert(k, v);
            }
            Value::Object(m)
        })
        .boxed()
}

/// One byte-level edit.
#[derive(Debug, Clone)]
pub enum Edit {
    Truncate(Index),
    Delete(Index, usize),
    Duplicate(Index, usize),
    Insert(Index, &'static [u8]),
    Flip(Index, u8),
}

/// Fragments worth splicing into JSON: structure, escapes, invalid UTF-8, huge numbers, nesting.
const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b",",
    b":",
    b"null",
    b"true",
    b"-",
    b"0",
    b"1e999",
    b"-0",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"\\udfff\\ud800",
    b"\\n",
    b"\xff",
    b"\xc3",
    b"\xe4\xb8",
    b"\xef\xbb\xbf",
    b"\r\n",
    b"\n",
    b"\0",
    b" ",
    b"[[[[[[[[[[[[[[[[",
    b"}}}}",
    b"\"\":\"\"",
    b"{\"a\":",
    b"123456789012345678901234567890",
    b"1.7976931348623157e309",
];

pub fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        1 => any::<Index>().prop_map(Edit::Truncate),
        2 => (any::<Index>(), 1usize..8).prop_map(|(i, n)| Edit::Delete(i, n)),
        1 => (any::<Index>(), 1usize..16).prop_map(|(i, n)| Edit::Duplicate(i, n)),
        3 => (any::<Index>(), prop::sample::select(TOKENS)).prop_map(|(i, t)| Edit::Insert(i, t)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
    ]
}

/// Applies edits to a byte string.
pub fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let len = bytes.len();
        let at = |i: &Index| if len == 0 { 0 } else { i.index(len + 1) };
        match e {
            Edit::Truncate(i) => bytes.truncate(at(i)),
            Edit::Delete(i, n) => {
                let s = at(i).min(len);
                bytes.drain(s..(s + n).min(len));
            }
            Edit::Duplicate(i, n) => {
                let s = at(i).min(len);
                let piece: Vec<u8> = bytes[s..(s + n).min(len)].to_vec();
                bytes.splice(s..s, piece);
            }
            Edit::Insert(i, t) => {
                let s = at(i).min(len);
                bytes.splice(s..s, t.iter().copied());
            }
            Edit::Flip(i, b) => {
                if len > 0 {
                    let s = i.index(len);
                    bytes[s] = *b;
                }
            }
        }
    }
    bytes
}

/// The bytes of a document from `doc`: as serialised about half the time, damaged by one to four
/// [`Edit`]s otherwise, and now and then replaced by random bytes.
pub fn body(doc: BoxedStrategy<Value>) -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        10 => (doc, prop::bool::weighted(0.5), prop::collection::vec(edit(), 1..=4)).prop_map(
            |(v, damaged, edits)| {
                let bytes = serde_json::to_vec(&v).unwrap_or_default();
                if damaged { apply(bytes, &edits) } else { bytes }
            }
        ),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
    .boxed()
}

/// Cut points for feeding `len` bytes in chunks: sorted, each in `0..=len`.
pub fn cuts(max: usize) -> impl Strategy<Value = Vec<Index>> {
    prop::collection::vec(any::<Index>(), 0..max)
}

/// Splits `bytes` at the given cut points (empty chunks included: a decoder must accept them).
pub fn split<'a>(bytes: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
    at.sort_unstable();
    let mut out = Vec::with_capacity(at.len() + 1);
    let mut prev = 0;
    for a in at {
        out.push(&bytes[prev..a]);
        prev = a;
    }
    out.push(&bytes[prev..]);
    out
}

/// One structural edit of a JSON document, at a node chosen by index among all its nodes.
#[derive(Debug, Clone)]
pub enum ValueEdit {
    /// Replace the node with another value (often of another type).
    Replace(Index, Value),
    /// Remove the node from its object or array.
    Remove(Index),
    /// Add a field with any value to an object node (or an element to an array node).
    Add(Index, String, Value),
}

pub fn value_edit() -> impl Strategy<Value = ValueEdit> {
    prop_oneof![
        4 => (any::<Index>(), scalar()).prop_map(|(i, v)| ValueEdit::Replace(i, v)),
        1 => (any::<Index>(), any_json()).prop_map(|(i, v)| ValueEdit::Replace(i, v)),
        2 => any::<Index>().prop_map(ValueEdit::Remove),
        1 => (any::<Index>(), "[a-z_]{1,10}", scalar()).prop_map(|(i, k, v)| ValueEdit::Add(i, k, v)),
    ]
}

/// JSON pointers of every node under `v` (the root is `""`).
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                pointers(c, p, out);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                pointers(c, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

/// Applies structural edits: what a bug in an older or newer writer, or a hand edit with
/// `wrangler kv key put`, does to a stored document.
pub fn apply_value_edits(mut v: Value, edits: &[ValueEdit]) -> Value {
    for e in edits {
        let mut all = Vec::new();
        pointers(&v, String::new(), &mut all);
        let pick = |i: &Index| all[i.index(all.len())].clone();
        match e {
            ValueEdit::Replace(i, new) => {
                if let Some(node) = v.pointer_mut(&pick(i)) {
                    *node = new.clone();
                }
            }
            ValueEdit::Remove(i) => {
                let p = pick(i);
                if let Some((parent, last)) = p.rsplit_once('/') {
                    match v.pointer_mut(parent) {
                        Some(Value::Object(m)) => {
                            m.remove(&last.replace("~1", "/").replace("~0", "~"));
                        }
                        Some(Value::Array(a)) => {
                            if let Ok(n) = last.parse::<usize>() {
                                if n < a.len() {
                                    a.remove(n);
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            ValueEdit::Add(i, k, new) => match v.pointer_mut(&pick(i)) {
                Some(Value::Object(m)) => {
                    m.insert(k.clone(), new.clone());
                }
                Some(Value::Array(a)) => a.push(new.clone()),
                _ => {}
            },
        }
    }
    v
}

/// A stored document from a corpus of real ones: as written, edited structurally, or damaged at
/// the byte level.
pub fn stored(corpus: BoxedStrategy<Value>) -> BoxedStrategy<String> {
    prop_oneof![
        2 => corpus.clone().prop_map(|v| v.to_string()),
        3 => (corpus.clone(), prop::collection::vec(value_edit(), 1..4))
            .prop_map(|(v, e)| apply_value_edits(v, &e).to_string()),
        2 => (corpus, prop::collection::vec(edit(), 1..4))
            .prop_map(|(v, e)| String::from_utf8_lossy(&apply(v.to_string().into_bytes(), &e)).into_owned()),
        1 => any_json().prop_map(|v| v.to_string()),
    ]
    .boxed()
}

/// Whether two JSON documents are equal, numbers to within a few units in the last place:
/// `serde_json` (built without `float_roundtrip`) may read a 17-digit number one unit in the
/// last place off, so a value that went through KV text can differ from the one parsed
/// directly by that much.
pub fn close(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y || (x - y).abs() <= x.abs().max(y.abs()) * 1e-15,
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| close(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| close(v, w)))
        }
        _ => a == b,
    }
}
