//! Property tests of the fast readers of Perplexity's streamed event (`core::wire::perplexity_event`
//! with its hand-written scanner, `perplexity_scan`) against the general reader
//! (`perplexity::parse_stream_event`). Why: the scanner is a JSON reader written by hand for a
//! subset of JSON, and "exact by construction" is a claim about every input, not only the edge
//! cases `wire_upstreams` lists. Here the events are generated — text with any characters,
//! escaped as serde_json escapes them or as `\u` escapes (surrogate pairs included), sources,
//! finish reasons, nested extra members with any numbers — and then mutated character by
//! character (inserted, replaced, deleted JSON punctuation, digits, escapes), so most inputs
//! are invalid JSON or odd shapes the scanner must leave to the general reader. The fast reader
//! must give the general reader's items and the same folded answer, whatever it reads itself.

use super::wire_upstreams::fast_events_given;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// A JSON value of any shape, numbers of any size (exponents, long integers, negative zero).
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{1,8}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A string as JSON text: serde_json's escaping, or every non-ASCII character (and some ASCII
/// ones) as a `\u` escape, surrogate pairs for those beyond the BMP.
fn json_string(s: &str, as_u: bool) -> String {
    if !as_u {
        return Value::String(s.to_string()).to_string();
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || !c.is_ascii() || c == 'a' => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Answer text: any printable character, control characters, quotes, backslashes and slashes
/// (each escaped on the way into JSON).
const TEXT: &str = "(\\PC|[\\x00-\\x1f\"\\\\/]){0,24}";

/// A usual event (the shape the mock and the captured stream have), members in any order,
/// with extra members of any shape.
fn event() -> impl Strategy<Value = String> {
    (
        TEXT,
        any::<bool>(),
        prop::option::of(prop_oneof![Just("stop"), Just("length"), Just("")]),
        prop::collection::vec("https://[a-z]{1,6}\\.example/\\PC{0,6}", 0..3),
        prop::collection::vec(("\\PC{0,8}", "https://[a-z]{1,6}\\.example"), 0..3),
        prop::collection::vec(("[a-z_]{1,10}", any_json()), 0..3),
        any::<u64>(),
    )
        .prop_map(|(text, as_u, finish, cites, results, extra, order)| {
            let mut members = vec![
                format!(
                    r#""choices":[{{"index":0,"delta":{{"role":"assistant","content":{}}},"finish_reason":{}}}]"#,
                    json_string(&text, as_u),
                    finish.map_or("null".to_string(), |f| json_string(f, as_u)),
                ),
                format!(
                    r#""citations":[{}]"#,
                    cites.iter().map(|c| json_string(c, as_u)).collect::<Vec<_>>().join(",")
                ),
                format!(
                    r#""search_results":[{}]"#,
                    results
                        .iter()
                        .map(|(t, u)| format!(
                            r#"{{"title":{},"url":{},"date":null}}"#,
                            json_string(t, as_u),
                            json_string(u, as_u)
                        ))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            ];
            for (k, v) in extra {
                members.push(format!("{}:{v}", json_string(&k, false)));
            }
            // A rotation of the members (the readers must not depend on their order).
            let n = members.len();
            members.rotate_left((order % n as u64) as usize);
            format!("{{{}}}", members.join(","))
        })
}

/// One edit of an event's text: a character inserted, replaced or deleted at a position.
#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, char),
    Replace(usize, char),
    Delete(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    // JSON's punctuation, escapes, digits, literals' letters, whitespace, a raw control
    // character and non-ASCII: what changes how a reader must read the rest.
    let c = prop::sample::select(vec![
        '"', '\\', '{', '}', '[', ']', ',', ':', ' ', '\t', '\n', '\u{1}', 'u', 'd', '8', '0', '9',
        'e', 'E', '.', '-', '+', 't', 'n', 'f', 'é', '😀',
    ]);
    prop_oneof![
        (any::<usize>(), c.clone()).prop_map(|(i, c)| Edit::Insert(i, c)),
        (any::<usize>(), c).prop_map(|(i, c)| Edit::Replace(i, c)),
        any::<usize>().prop_map(Edit::Delete),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut cs: Vec<char> = text.chars().collect();
    for e in edits {
        let n = cs.len().max(1);
        match *e {
            Edit::Insert(i, c) => cs.insert(i % (cs.len() + 1), c),
            Edit::Replace(i, c) if !cs.is_empty() => cs[i % n] = c,
            Edit::Delete(i) if !cs.is_empty() => {
                cs.remove(i % n);
            }
            _ => {}
        }
    }
    cs.into_iter().collect()
}

/// The event between two with the same sources: the fast reader gives them on once, leaves
/// them out after an event it read itself with the same sources, and gives them again after
/// one it left to the general reader.
fn agrees(e: String) {
    let source = r#"{"citations":["https://a.example"],"choices":[{"delta":{"content":"s"}}]}"#;
    fast_events_given(&[source.to_string(), e, source.to_string()]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn usual_events_read_as_the_general_reader_reads_them(e in event()) {
        agrees(e);
    }

    #[test]
    fn edited_events_read_as_the_general_reader_reads_them(
        e in event(),
        edits in prop::collection::vec(edit(), 1..4),
    ) {
        agrees(apply(&e, &edits));
    }

    #[test]
    fn runs_of_events_fold_to_the_same_answer(es in prop::collection::vec(event(), 1..5)) {
        fast_events_given(&es);
    }

    /// Events repeated as a real stream repeats its sources: a member whose text is the last
    /// event's is stepped over unread, one that changed is read (and the other with it).
    #[test]
    fn repeated_and_edited_events_fold_to_the_same_answer(
        es in prop::collection::vec((event(), 1usize..4), 1..4),
        edits in prop::collection::vec(edit(), 1..3),
    ) {
        let mut run = Vec::new();
        for (e, times) in &es {
            run.extend(std::iter::repeat_n(e.clone(), *times));
            let edited = apply(e, &edits);
            run.push(edited.clone());
            run.push(edited);
            run.push(e.clone());
        }
        fast_events_given(&run);
    }
}
