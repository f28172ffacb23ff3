//! The edge's half of answer-aware routing (docs/answer-aware.md): reading on from a stream the
//! exchange holds back and asking the no-context detector (core) for a verdict, and the
//! response cache's I/O (the Workers Cache API). What counts as a no-context reply, how long a
//! stream may be held and what the cache key is are decided in `core::answer`.

use super::isolate::{now_ms, with};
use super::upstream::{Next, UpstreamStream};
use crate::core::answer::cache::cache_key;
use crate::core::answer::{AnswerHead, Judgement, NoContextDetector};
use crate::core::exchange::Verdict;
use crate::core::model::Upstream;
use crate::core::wire::{StreamItem, UpstreamAnswer};
use worker::{console_error, Cache, Context, Response};

/// The verdict on a complete answer. Perplexity's answers are not judged (the detector knows
/// LightRAG's replies): they answer at once.
pub fn judge_complete(d: &NoContextDetector, u: Upstream, a: Option<&UpstreamAnswer>) -> Verdict {
    let Some(a) = a else {
        return Verdict::Answer;
    };
    if u == Upstream::Perplexity {
        return Verdict::Answer;
    }
    verdict(d.judge(&AnswerHead {
        text: &a.content,
        llm_generated: a.llm_generated,
        complete: true,
    }))
}

fn verdict(j: Judgement) -> Verdict {
    match j {
        Judgement::NoContext(_) => Verdict::NoAnswer,
        // Undecided only for an unfinished stream whose hold-back ran out: it commits.
        Judgement::Answer | Judgement::Undecided => Verdict::Answer,
    }
}

/// What has arrived of a held-back stream, as the detector reads it.
fn head(items: &[StreamItem]) -> (String, Option<bool>) {
    let mut text = String::new();
    let mut generated = None;
    for i in items {
        match i {
            StreamItem::Delta(t) => text.push_str(t),
            StreamItem::NotGenerated => generated = Some(false),
            _ => {}
        }
    }
    (text, generated)
}

/// Reads on from a stream the exchange holds back ([`crate::core::exchange::Step::Inspect`])
/// until the detector decides, the stream ends, or `until_ms` passes (then it commits: an
/// undecided stream is an answer). What was read stays in `s.initial` for the pipe; a break
/// is kept for the pipe's next read.
pub async fn judge_stream(d: &NoContextDetector, s: &mut UpstreamStream, until_ms: u64) -> Verdict {
    if s.upstream == Upstream::Perplexity {
        return Verdict::Answer;
    }
    loop {
        let complete = s.is_ended();
        let (text, llm_generated) = head(&s.initial);
        match d.judge(&AnswerHead {
            text: &text,
            llm_generated,
            complete,
        }) {
            Judgement::Answer => return Verdict::Answer,
            Judgement::NoContext(_) => return Verdict::NoAnswer,
            Judgement::Undecided => {}
        }
        if complete || now_ms() >= until_ms {
            return Verdict::Answer;
        }
        match s.next(until_ms).await {
            Next::Items(v) | Next::End(v) => s.initial.extend(v),
            Next::Broken(detail) => {
                s.defer_break(detail);
                return Verdict::Answer;
            }
            Next::Timer => return Verdict::Answer,
        }
    }
}

/// Where a complete answer is looked up and stored (docs/answer-aware.md#response-cache).
#[derive(Clone)]
pub struct CacheSpot {
    pub upstream: Upstream,
    pub key: String,
    pub ttl_seconds: u64,
}

impl CacheSpot {
    /// The spot for `query` asked of `upstream` in `mode`; `None` when caching is off or the
    /// key cannot be built.
    pub fn new(upstream: Upstream, mode: &str, query: &str, ttl_seconds: u64) -> Option<CacheSpot> {
        if ttl_seconds == 0 {
            return None;
        }
        Some(CacheSpot {
            upstream,
            key: cache_key(upstream, mode, query)?,
            ttl_seconds,
        })
    }
}

/// A cached answer, counted as a hit or a miss.
pub async fn lookup(spot: &CacheSpot) -> Option<UpstreamAnswer> {
    let got = match Cache::default().get(spot.key.as_str(), false).await {
        Ok(Some(mut r)) => r
            .text()
            .await
            .ok()
            .and_then(|t| crate::core::json::from_text::<UpstreamAnswer>(&t).ok()),
        Ok(None) => None,
        Err(e) => {
            console_error!("response cache lookup failed: {e}");
            None
        }
    };
    with(|i| {
        i.count_cache(spot.upstream, |c| {
            if got.is_some() {
                c.hits += 1
            } else {
                c.misses += 1
            }
        })
    });
    got
}

/// Stores an answer in the background (`wait_until`), for `ttl_seconds`.
pub fn store(ctx: &Context, spot: CacheSpot, answer: &UpstreamAnswer) {
    let Ok(text) = serde_json::to_string(answer) else {
        return;
    };
    ctx.wait_until(async move {
        let resp = match Response::ok(text) {
            Ok(r) => r,
            Err(_) => return,
        };
        let h = resp.headers();
        if h.set("content-type", "application/json").is_err()
            || h.set("cache-control", &format!("max-age={}", spot.ttl_seconds))
                .is_err()
        {
            return;
        }
        match Cache::default().put(spot.key.as_str(), resp).await {
            Ok(()) => {
                with(|i| i.count_cache(spot.upstream, |c| c.stored += 1));
            }
            Err(e) => console_error!("response cache store failed: {e}"),
        }
    });
}
