//! The no-context detector (core::answer::detect) on the real server's bytes
//! (tests/fixtures/lightrag/, captured from lightrag-server 1.5.7), under every split of a
//! stream, and against the complete-answer judgement it must agree with.

use cmo_edge_router::core::answer::detect::{CANNED_REPLIES, HEAD_CHARS, NO_CONTEXT_MARKER};
use cmo_edge_router::core::answer::{AnswerHead, Judgement, NoContextCause, NoContextDetector};
use cmo_edge_router::core::wire::ndjson::NdjsonDecoder;
use cmo_edge_router::core::wire::{lightrag, StreamItem};
use proptest::prelude::*;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/lightrag/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn complete(text: &str, llm_generated: Option<bool>) -> AnswerHead<'_> {
    AnswerHead {
        text,
        llm_generated,
        complete: true,
    }
}

fn partial(text: &str) -> AnswerHead<'_> {
    AnswerHead {
        text,
        llm_generated: None,
        complete: false,
    }
}

fn judge_json(d: &NoContextDetector, name: &str) -> Judgement {
    let a = lightrag::parse_query_response(&fixture(name)).unwrap();
    d.judge(&complete(&a.content, a.llm_generated))
}

#[test]
fn the_real_servers_replies_as_json() {
    let d = NoContextDetector::default();
    assert_eq!(
        judge_json(&d, "query_no_context.json"),
        Judgement::NoContext(NoContextCause::NotGenerated)
    );
    assert_eq!(
        judge_json(&d, "query_llm_down.json"),
        Judgement::NoContext(NoContextCause::NotGenerated)
    );
    assert_eq!(judge_json(&d, "query_answer.json"), Judgement::Answer);
    assert_eq!(judge_json(&d, "query_cache_hit.json"), Judgement::Answer);
    // Without `llm_generated` (a proxy that drops it), the text alone still tells.
    for (text, cause) in [
        (CANNED_REPLIES[0], NoContextCause::Marker),
        (CANNED_REPLIES[1], NoContextCause::CannedReply),
        (CANNED_REPLIES[2], NoContextCause::CannedReply),
        (
            "  no relevant context found for the query.\n",
            NoContextCause::CannedReply,
        ),
        ("", NoContextCause::Empty),
        (" \n\t", NoContextCause::Empty),
    ] {
        assert_eq!(
            d.judge(&complete(text, None)),
            Judgement::NoContext(cause),
            "{text:?}"
        );
    }
    // `llm_generated: true` with a real answer, or absent: an answer.
    assert_eq!(
        d.judge(&complete("Pyruvate is reduced to lactate.", Some(true))),
        Judgement::Answer
    );
}

/// Feeds a captured NDJSON body to the decoder in the given pieces and judges after each, as
/// the edge's hold-back does; returns the first decided judgement and after how many bytes.
fn first_decision(d: &NoContextDetector, body: &[u8], cuts: &[usize]) -> (Judgement, usize) {
    let mut dec = Some(NdjsonDecoder::new());
    let mut items: Vec<StreamItem> = Vec::new();
    let mut last = 0;
    let ends: Vec<usize> = cuts.iter().copied().chain([body.len()]).collect();
    for (i, &c) in ends.iter().enumerate() {
        if let Some(dd) = dec.as_mut() {
            for l in dd.push(&body[last..c]).unwrap() {
                items.extend(lightrag::parse_stream_line(&l));
            }
        }
        last = c;
        let ended = i == ends.len() - 1;
        if ended {
            if let Some(l) = dec.take().and_then(|dd| dd.finish().unwrap()) {
                items.extend(lightrag::parse_stream_line(&l));
            }
        }
        let text: String = items
            .iter()
            .filter_map(|i| match i {
                StreamItem::Delta(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        let generated = items.contains(&StreamItem::NotGenerated).then_some(false);
        // The edge waits for the first text before judging (open_stream), unless the body ended.
        if text.is_empty() && !ended {
            continue;
        }
        let j = d.judge(&AnswerHead {
            text: &text,
            llm_generated: generated,
            complete: ended,
        });
        if j != Judgement::Undecided {
            return (j, c);
        }
    }
    (Judgement::Undecided, body.len())
}

proptest! {
    /// The marker split across chunks: whatever the split, the no-context stream is never
    /// taken for an answer, and the real answer stream commits on its first text line.
    #[test]
    fn any_split_of_the_real_streams(cuts in prop::collection::btree_set(1usize..200, 0..8)) {
        let d = NoContextDetector::default();
        for name in ["query_stream_no_context.ndjson", "query_stream_llm_down.ndjson", "query_stream_no_context_no_refs.ndjson"] {
            let body = fixture(name);
            let cuts: Vec<usize> = cuts.iter().copied().filter(|&c| c < body.len()).collect();
            let (j, _) = first_decision(&d, body.as_bytes(), &cuts);
            prop_assert_eq!(j, Judgement::NoContext(NoContextCause::NotGenerated), "{}", name);
        }
        let body = fixture("query_stream_answer.ndjson");
        let cuts: Vec<usize> = cuts.iter().copied().filter(|&c| c < body.len()).collect();
        let (j, at) = first_decision(&d, body.as_bytes(), &cuts);
        prop_assert_eq!(j, Judgement::Answer);
        // Decided as soon as the first text line was whole: before the body ended.
        let first_text_line_end = body
            .match_indices('\n')
            .map(|(i, _)| i + 1)
            .find(|&i| body[..i].contains("\"response\""))
            .unwrap();
        let decided_by = cuts.iter().copied().chain([body.len()]).find(|&c| c >= first_text_line_end).unwrap();
        prop_assert_eq!(at, decided_by);
    }
}

#[test]
fn a_stream_that_reads_like_a_canned_reply_is_held_until_it_leaves_it() {
    let d = NoContextDetector::default();
    for t in ["No", "No relevant", "Sorry, I'm not able", "sorry, i'm NOT"] {
        assert_eq!(d.judge(&partial(t)), Judgement::Undecided, "{t:?}");
    }
    for t in ["No, glucose", "Sorry, we", "Pyruvate", "1."] {
        assert_eq!(d.judge(&partial(t)), Judgement::Answer, "{t:?}");
    }
    // The marker decides at once, wherever it is in the head.
    assert_eq!(
        d.judge(&partial(
            "Sorry, I'm not able to provide an answer to that question.[no-context]"
        )),
        Judgement::NoContext(NoContextCause::Marker)
    );
    // Blank so far: undecided; blank and over: empty.
    assert_eq!(d.judge(&partial("  ")), Judgement::Undecided);
}

#[test]
fn operator_patterns_hold_a_stream_until_its_head_is_complete() {
    let d = NoContextDetector::new(["  Do Not Have Enough Information ", "", "keine angaben"]);
    assert_eq!(
        d.patterns(),
        ["do not have enough information", "keine angaben"]
    );
    let decline = "I'm sorry, but I do not have enough information to answer.";
    assert_eq!(
        d.judge(&complete(decline, Some(true))),
        Judgement::NoContext(NoContextCause::Pattern(0))
    );
    assert_eq!(
        d.judge(&partial("I'm sorry, but I do not")),
        Judgement::Undecided,
        "the pattern may still come"
    );
    assert_eq!(
        d.judge(&partial(decline)),
        Judgement::NoContext(NoContextCause::Pattern(0))
    );
    // Past the head a pattern no longer counts, in a stream and in a complete answer alike.
    let late = format!("{} KEINE ANGABEN", "x".repeat(HEAD_CHARS));
    assert_eq!(d.judge(&complete(&late, None)), Judgement::Answer);
    assert_eq!(d.judge(&partial(&late)), Judgement::Answer);
    let early = format!("Keine Angaben. {}", "x".repeat(HEAD_CHARS));
    assert_eq!(
        d.judge(&partial(&early)),
        Judgement::NoContext(NoContextCause::Pattern(1))
    );
}

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Sorry, I'm not able to provide an answer to that question.".to_string()),
        Just("No relevant context found for the query.".to_string()),
        Just("not enough information".to_string()),
        Just("No".to_string()),
        Just(" ".to_string()),
        "[a-zA-Z ,.]{1,12}",
        "[\\PC]{1,4}",
    ]
}

proptest! {
    /// A stream is judged as its complete text would be: the first decision the hold-back
    /// reaches on any prefix is the complete answer's (the one exception, a marker arriving
    /// after a stream was decided, is excluded: LightRAG sends its marker only in its one-line
    /// canned reply).
    #[test]
    fn a_streams_first_decision_is_the_complete_answers(
        words in prop::collection::vec(word(), 0..30),
        with_patterns in any::<bool>(),
        cuts in prop::collection::btree_set(0usize..400, 0..10),
    ) {
        let text: String = words.concat();
        prop_assume!(!text.contains(NO_CONTEXT_MARKER));
        let d = if with_patterns {
            NoContextDetector::new(["not enough information"])
        } else {
            NoContextDetector::default()
        };
        let whole = d.judge(&complete(&text, None));
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        let mut decided = None;
        for c in cuts {
            let Some(&(at, _)) = chars.get(c) else { break };
            let j = d.judge(&partial(&text[..at]));
            if j != Judgement::Undecided {
                decided = Some(j);
                break;
            }
        }
        let decided = decided.unwrap_or(whole);
        let same_kind = matches!(
            (decided, whole),
            (Judgement::Answer, Judgement::Answer) | (Judgement::NoContext(_), Judgement::NoContext(_))
        );
        prop_assert!(same_kind, "{:?} vs {:?} for {:?}", decided, whole, text);
    }
}
