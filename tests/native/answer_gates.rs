//! The no-context watch (when no-context replies become breaker failures), the shadow gate and
//! the response cache key, as timelines and properties.

use cmo_edge_router::core::answer::cache::{cache_key, normalise_query, KEY_ORIGIN, MAX_KEY_BYTES};
use cmo_edge_router::core::answer::shadow::{ShadowAsk, ShadowGate, ShadowSettings, ShadowSkip};
use cmo_edge_router::core::answer::watch::{NoContextWatch, WatchSettings};
use cmo_edge_router::core::cohort::Percent;
use cmo_edge_router::core::model::Upstream::{Lightrag, Perplexity};
use proptest::prelude::*;

fn watch(rate: Option<f64>) -> NoContextWatch<u64> {
    NoContextWatch::new(WatchSettings {
        rate,
        min_keys: 3,
        window: 10,
        minimum: 4,
    })
}

#[test]
fn the_watch_escalates_only_over_enough_replies_rate_and_callers() {
    // Off (no rate): never, whatever comes.
    let mut w = watch(None);
    for k in 0..20 {
        w.observe(true, k);
    }
    assert!(!w.escalated());
    assert_eq!(w.status().no_context, 10, "the window keeps 10 replies");

    let mut w = watch(Some(0.8));
    // Three callers, three no-context replies: too few replies (minimum 4).
    for k in 0..3 {
        w.observe(true, k);
    }
    assert!(!w.escalated());
    // A fourth: 4 replies, all no-context, 3 callers: escalated.
    w.observe(true, 0);
    let s = w.status();
    assert!(s.escalated, "{s:?}");
    assert_eq!((s.replies, s.distinct_keys), (4, 3));
    // Answers bring the rate down: 4 of 6 = 0.67 < 0.8.
    w.observe(false, 7);
    w.observe(false, 8);
    assert!(!w.escalated());
    // Ten no-context replies from ONE caller push the others out: rate 1.0, but one caller.
    for _ in 0..10 {
        w.observe(true, 42);
    }
    let s = w.status();
    assert_eq!(
        (s.rate, s.distinct_keys, s.escalated),
        (Some(1.0), 1, false)
    );
    // New settings trim the window at once.
    w.set_settings(WatchSettings {
        rate: Some(0.5),
        min_keys: 1,
        window: 3,
        minimum: 1,
    });
    assert_eq!(w.status().replies, 3);
    assert!(w.escalated());
}

fn settings(share: f64, max: u64) -> ShadowSettings {
    ShadowSettings {
        share: Percent::from_percent(share).unwrap(),
        max_per_minute: max,
    }
}

fn ask(roll: f64) -> ShadowAsk {
    ShadowAsk {
        decided: Perplexity,
        served: Perplexity,
        fallback: false,
        lightrag_breaker_closed: true,
        rollback_active: false,
        roll,
    }
}

const MIN: u64 = 60_000;
const T0: u64 = 1_700_000_000_000 / MIN * MIN;

#[test]
fn the_shadow_gate_admits_perplexity_answers_within_share_breaker_and_cap() {
    let mut g = ShadowGate::new();
    assert_eq!(
        g.admit(&settings(0.0, 10), &ask(0.0), T0),
        Err(ShadowSkip::Off)
    );
    let s = settings(50.0, 2);
    assert_eq!(g.admit(&s, &ask(0.6), T0), Err(ShadowSkip::NotDrawn));
    for bad in [
        ShadowAsk {
            decided: Lightrag,
            ..ask(0.1)
        },
        ShadowAsk {
            served: Lightrag,
            ..ask(0.1)
        },
        ShadowAsk {
            fallback: true,
            ..ask(0.1)
        },
    ] {
        assert_eq!(g.admit(&s, &bad, T0), Err(ShadowSkip::NotPerplexity));
    }
    assert_eq!(
        g.admit(
            &s,
            &ShadowAsk {
                lightrag_breaker_closed: false,
                ..ask(0.1)
            },
            T0
        ),
        Err(ShadowSkip::BreakerNotClosed)
    );
    assert_eq!(
        g.admit(
            &s,
            &ShadowAsk {
                rollback_active: true,
                ..ask(0.1)
            },
            T0
        ),
        Err(ShadowSkip::Rollback)
    );
    // Minute one: two admitted, the third capped.
    assert_eq!(g.admit(&s, &ask(0.1), T0 + 1_000), Ok(()));
    assert_eq!(g.admit(&s, &ask(0.49), T0 + 59_000), Ok(()));
    assert_eq!(
        g.admit(&s, &ask(0.0), T0 + 59_999),
        Err(ShadowSkip::CapReached)
    );
    // Minute two: the cap starts over.
    assert_eq!(g.counts(T0 + MIN).this_minute, 0);
    assert_eq!(g.admit(&s, &ask(0.2), T0 + MIN), Ok(()));
    let c = g.counts(T0 + MIN);
    assert_eq!(
        (
            c.started,
            c.skipped_cap,
            c.skipped_breaker,
            c.skipped_rollback,
            c.this_minute
        ),
        (3, 1, 1, 1, 1)
    );
    // A roll that is not a number is never drawn.
    assert_eq!(
        g.admit(&settings(100.0, 9), &ask(f64::NAN), T0 + MIN),
        Err(ShadowSkip::NotDrawn)
    );
}

proptest! {
    /// However requests arrive, no minute sees more starts than the cap.
    #[test]
    fn the_cap_holds_per_minute(gaps in prop::collection::vec(0u64..20_000, 1..200), cap in 1u64..5) {
        let mut g = ShadowGate::new();
        let s = settings(100.0, cap);
        let mut now = T0;
        let mut per_minute = cmo_edge_router::core::sorted_map::SortedMap::new();
        for gap in gaps {
            now += gap;
            if g.admit(&s, &ask(0.0), now).is_ok() {
                *per_minute.entry(now / MIN).or_insert(0u64) += 1;
            }
        }
        prop_assert!(per_minute.values().all(|&n| n <= cap), "{:?}", per_minute);
    }

    /// Two questions share a key exactly when they normalise alike and go to the same upstream
    /// in the same mode: the key is the normalised text itself, never a hash.
    #[test]
    fn cache_keys_never_collide(a in "[\\PC]{0,40}", b in "[\\PC]{0,40}", mode in "[a-z:]{1,8}") {
        let (ka, kb) = (cache_key(Lightrag, &mode, &a), cache_key(Lightrag, &mode, &b));
        if let (Some(ka), Some(kb)) = (&ka, &kb) {
            prop_assert_eq!(ka == kb, normalise_query(&a) == normalise_query(&b));
            prop_assert!(ka.starts_with(KEY_ORIGIN));
            prop_assert!(ka.is_ascii() && !ka.contains(' '));
        }
        // Never across upstreams or modes.
        if let (Some(l), Some(p)) = (cache_key(Lightrag, &mode, &a), cache_key(Perplexity, &mode, &a)) {
            prop_assert_ne!(l, p);
        }
        if let (Some(x), Some(y)) = (cache_key(Lightrag, "hybrid", &a), cache_key(Lightrag, "mix", &a)) {
            prop_assert_ne!(x, y);
        }
    }
}

#[test]
fn questions_normalise_by_case_space_and_final_punctuation() {
    assert_eq!(
        normalise_query("  How is  PYRUVATE\tturned into lactate?? "),
        "how is pyruvate turned into lactate"
    );
    assert_eq!(normalise_query("Ätiologie!"), "ätiologie");
    assert_eq!(normalise_query(" ?! "), "");
    assert_eq!(cache_key(Lightrag, "hybrid", " ? "), None);
    assert_eq!(
        cache_key(Lightrag, "hybrid", "What is ATP?").unwrap(),
        format!("{KEY_ORIGIN}/v1/lightrag/hybrid?q=what%20is%20atp")
    );
    let long = "a".repeat(MAX_KEY_BYTES);
    assert_eq!(cache_key(Perplexity, "chat:sonar", &long), None);
}
