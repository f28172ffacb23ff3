//! What LightRAG is asked (the whole conversation, within the server's limits) and `/query`'s
//! Perplexity request and confidence scores (the previous service's).

use cmo_edge_router::core::wire::conversation::{
    conversation, history_chars, py_json_str_len, request_chars, MAX_MESSAGES, MAX_MESSAGE_CHARS,
    MAX_QUERY_CHARS, MAX_TOTAL_CHARS,
};
use cmo_edge_router::core::wire::lightrag::{self, QueryMode};
use cmo_edge_router::core::wire::openai::ChatMessage;
use cmo_edge_router::core::wire::perplexity_query::{
    default_domain_filter, extract_confidence, query_body, QueryParams, SYSTEM_PROMPT,
};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;

fn m(role: &str, content: &str) -> ChatMessage {
    ChatMessage::new(role, content)
}

/// `json.dumps(history, ensure_ascii=False)` written out naively: serde_json escapes exactly
/// what Python does without `ensure_ascii` (`"`, `\`, controls below U+0020, short forms for
/// `\b \f \n \r \t`), and Python separates with ", " and ": ".
fn naive_dumps(h: &[ChatMessage]) -> String {
    let entries: Vec<String> = h
        .iter()
        .map(|x| {
            format!(
                "{{\"role\": {}, \"content\": {}}}",
                serde_json::to_string(&x.role).unwrap(),
                serde_json::to_string(&x.content).unwrap()
            )
        })
        .collect();
    format!("[{}]", entries.join(", "))
}

#[test]
fn a_follow_up_carries_its_conversation() {
    let c = conversation(&[
        m("system", "Answer for clinicians."),
        m("user", "What does citrate do?"),
        m("assistant", "It starts the TCA cycle."),
        m("tool", "ignored"),
        m("user", "  And isocitrate?  "),
        m("assistant", "trailing, not history"),
    ]);
    assert_eq!(c.query, "And isocitrate?");
    assert_eq!(c.user_prompt.as_deref(), Some("Answer for clinicians."));
    assert_eq!(
        c.history,
        [
            m("user", "What does citrate do?"),
            m("assistant", "It starts the TCA cycle.")
        ]
    );
    assert!(!c.trimmed.any());
    let body: Value =
        serde_json::from_str(&lightrag::conversation_body(&c, QueryMode::Mix, true).unwrap())
            .unwrap();
    assert_eq!(
        body,
        json!({
            "query": "And isocitrate?", "mode": "mix", "stream": true, "include_references": true,
            "user_prompt": "Answer for clinicians.",
            "conversation_history": [
                {"role": "user", "content": "What does citrate do?"},
                {"role": "assistant", "content": "It starts the TCA cycle."},
            ],
        })
    );
    // A single question sends neither field (the request the router always sent).
    let single = lightrag::query_body("What is ATP?", QueryMode::Hybrid, false).unwrap();
    assert!(!single.contains("conversation_history") && !single.contains("user_prompt"));
}

#[test]
fn the_servers_count_of_the_history() {
    // `{"role": "user", "content": ""}` is 31 characters; `[]` and ", " between entries.
    assert_eq!(history_chars(&[m("user", "")]), 33);
    // `[` + 31 + `, ` + 36 + `]`.
    assert_eq!(history_chars(&[m("user", ""), m("assistant", "")]), 71);
    assert_eq!(py_json_str_len("a\"\\\n\u{1}é"), 2 + 1 + 2 + 2 + 2 + 6 + 1);
    let h = [
        m("user", "x\ty \"q\" \u{7f} ü 代谢"),
        m("assistant", "\r\n\u{1f}"),
    ];
    assert_eq!(history_chars(&h), naive_dumps(&h).chars().count());
}

#[test]
fn at_the_total_budget_exactly_nothing_is_trimmed_one_more_drops_the_oldest() {
    let query = "q".repeat(100);
    let entry = |n: usize| m("user", &"h".repeat(n));
    // Four entries: `[]`, 4 × 31, 3 × `, ` = 132 characters around 4 × 32,710 of content.
    let n = (MAX_TOTAL_CHARS - 100 - 132) / 4;
    assert_eq!(n * 4, MAX_TOTAL_CHARS - 100 - 132);
    let msgs = vec![entry(n), entry(n), entry(n), entry(n), m("user", &query)];
    let c = conversation(&msgs);
    assert_eq!(request_chars(&c), MAX_TOTAL_CHARS);
    assert_eq!(c.history.len(), 4);
    assert!(!c.trimmed.any());
    let msgs = vec![
        entry(n + 1),
        entry(n),
        entry(n),
        entry(n),
        m("user", &query),
    ];
    let c = conversation(&msgs);
    assert_eq!(c.history, [entry(n), entry(n), entry(n)]);
    assert_eq!(c.trimmed.dropped_turns, 1);
}

fn turn() -> impl Strategy<Value = ChatMessage> {
    (
        prop_oneof![
            Just("user"),
            Just("assistant"),
            Just("system"),
            Just("tool")
        ],
        prop_oneof![
            "[\\PC\\n\\t\"\\\\]{0,30}".prop_map(|s| s),
            (1usize..3).prop_map(|k| "x".repeat(k * 20_000)),
        ],
    )
        .prop_map(|(r, c)| m(r, &c))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Whatever the conversation, what is sent is within every limit, counted as the server
    /// counts it, and is the newest turns (each possibly cut), in order.
    #[test]
    fn whatever_the_conversation_it_fits(mut msgs in prop::collection::vec(turn(), 0..160)) {
        msgs.push(m("user", "How is pyruvate turned into lactate?"));
        let c = conversation(&msgs);
        prop_assert!(request_chars(&c) <= MAX_TOTAL_CHARS);
        prop_assert!(c.history.len() <= MAX_MESSAGES);
        prop_assert!(c.history.iter().all(|h| h.content.chars().count() <= MAX_MESSAGE_CHARS));
        prop_assert!(c.user_prompt.as_deref().is_none_or(|p| p.chars().count() <= MAX_QUERY_CHARS));
        if !c.history.is_empty() {
            prop_assert_eq!(history_chars(&c.history), naive_dumps(&c.history).chars().count());
        }
        // The history is a suffix of the eligible turns (each cut to the cap at most).
        let eligible: Vec<ChatMessage> = msgs[..msgs.len() - 1]
            .iter()
            .filter(|x| (x.role == "user" || x.role == "assistant") && !x.content.trim().is_empty())
            .cloned()
            .collect();
        let tail = &eligible[eligible.len() - c.history.len()..];
        for (sent, orig) in c.history.iter().zip(tail) {
            prop_assert_eq!(&sent.role, &orig.role);
            prop_assert!(orig.content.starts_with(&sent.content));
        }
        prop_assert_eq!(c.trimmed.dropped_turns, eligible.len() - c.history.len());
    }
}

#[test]
fn the_previous_services_perplexity_body() {
    let filter = default_domain_filter();
    let p = QueryParams {
        model: "sonar",
        temperature: 0.1,
        search_domain_filter: &filter,
        system_prompt: SYSTEM_PROMPT,
    };
    let body: Value =
        serde_json::from_str(&query_body("  What is new in lipidomics? ", &p, false).unwrap())
            .unwrap();
    assert_eq!(
        body,
        json!({
            "model": "sonar",
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": "What is new in lipidomics?"},
            ],
            "temperature": 0.1,
            "search_domain_filter": ["-wikipedia.org"],
        })
    );
    assert!(SYSTEM_PROMPT.contains("formatted as (confidence score: X.X)"));
    assert!(
        SYSTEM_PROMPT.contains("You respond to user queries"),
        "the literals' missing spaces restored"
    );
    let none = BTreeSet::new();
    let body: Value = serde_json::from_str(
        &query_body(
            "q?",
            &QueryParams {
                search_domain_filter: &none,
                ..p
            },
            true,
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(body["search_domain_filter"], json!([]));
    assert_eq!(body["stream"], json!(true));
    assert!(query_body("  ", &p, false).is_err());
}

#[test]
fn confidence_scores_per_citation_as_the_previous_service_read_them() {
    let s = extract_confidence(
        "Lactate rises in sepsis (confidence score: 0.9) [1][3] and falls with treatment \
         (Confidence Score: 0.6)  [2]. Some say confidence score: 0.4 based on [4]. \
         A repeat (confidence score: 0.2) [1]. Odd (confidence score: 1.2.3) [5].",
    );
    let got: Vec<(&str, f64)> = s
        .confidence_scores
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(got, [("1", 0.9), ("2", 0.6), ("3", 0.9), ("4", 0.4)]);
    assert_eq!(
        s.content,
        "Lactate rises in sepsis [1][3] and falls with treatment [2]. Some say confidence score: 0.4 based on [4]. A repeat [1]. Odd [5]."
    );
    let plain = extract_confidence("No annotations [1].\n\nSecond paragraph.");
    assert!(plain.confidence_scores.is_empty());
    assert_eq!(plain.content, "No annotations [1]. Second paragraph.");
}
