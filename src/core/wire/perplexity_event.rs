//! A fast reader for Perplexity's usual streamed event, tried before the general one.
//!
//! Why: every event of a Perplexity stream repeats the whole answer so far (`message`), the
//! `citations`, the `search_results` and the `usage` (tests/fixtures/perplexity/README.md), and
//! [`super::perplexity::parse_stream_event`] read each one into a `serde_json::Value` (a
//! `BTreeMap` per object, every string copied) and parsed the sources again: ~6 % of a streamed
//! request's samples in a workerd profile of the router (benches/profile_edge.mjs --stream), the
//! largest item of its own code per event, on the way to the first text too. This reader walks
//! the event once, copies only the delta text, and reads the sources without copying them; it
//! gives them on only when they differ from the ones it gave last.
//!
//! What the router does with the sources is fold them into the answer
//! ([`super::StreamAccumulator`], merging by URL), and merging a list already merged changes
//! nothing; so a `Citations` item equal to the last one this reader gave is left out. Otherwise
//! the items are the general reader's, in its order. Like [`super::perplexity_reply`], it is
//! exact by construction: it reads only events whose meaning it can read the way the general
//! reader does and hands everything else (`[DONE]`, an `error` member, an oddly typed field, a
//! member read twice, invalid JSON) to the general reader. `tests/native/wire_upstreams.rs`
//! compares the two over captured-shape, escaped, unicode and odd events. The usual event is
//! read by a hand-written scanner ([`super::perplexity_scan`]) before the serde visitors here.

use super::answer::{merge_citations, Citation, StreamItem};
use super::perplexity::parse_stream_event;
use super::perplexity_reply::{
    give_up, members, Checked, CitationEntry, SearchEntry, Source, Text,
};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// Reads the events of one stream, in order (it remembers the sources it gave last).
#[derive(Debug, Default)]
pub struct EventReader {
    /// The `citations` and `search_results` of the last event whose sources were given on.
    last: Option<(Vec<Citation>, Vec<Citation>)>,
    /// The last event's `citations` and `search_results` as the scanner saw them: an event
    /// whose sources are the same text is not read for them again (a real stream repeats them
    /// in every event, ~1/3 of the scan's time per event, docs/performance.md).
    prev: [Raw; 2],
}

impl EventReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// The items of one event's `data`: [`parse_stream_event`]'s, less a `Citations` item equal
    /// to the last one given.
    pub fn read(&mut self, data: &str) -> Vec<StreamItem> {
        let data = data.trim();
        // The hand-written scanner first (`perplexity_scan` says why); what it leaves, serde's.
        let mut e = super::perplexity_scan::scan(data, &self.prev);
        if e.as_ref().is_some_and(|e| self.partly_same(e)) {
            // One member is the last event's text, the other not: both are read after all.
            e = super::perplexity_scan::scan(data, &[Raw::Unknown, Raw::Unknown]);
        }
        let e = e.or_else(|| serde_json::from_str(data).ok());
        let Some(e) = e else {
            // The general reader decides; what it gives of the sources is not remembered.
            self.last = None;
            self.prev = [Raw::Unknown, Raw::Unknown];
            return parse_stream_event(data);
        };
        let mut items = Vec::with_capacity(2);
        if let Some(t) = e.text.filter(|t| !t.is_empty()) {
            items.push(StreamItem::Delta(t.into_owned()));
        }
        // Both members as in the last event, which the scanner read: its sources, which were
        // given on then (or are the ones given before) or were none, so nothing to give.
        let unchanged = self.unchanged(e.seen.as_ref());
        self.remember(e.seen.as_ref());
        let has_sources = !e.citations.is_empty() || !e.search_results.is_empty();
        if !unchanged && has_sources && !self.same(&e.citations, &e.search_results) {
            let keep = |l: Vec<Source<'_>>| l.into_iter().map(Source::into_citation).collect();
            let (citations, search_results): (Vec<Citation>, Vec<Citation>) =
                (keep(e.citations), keep(e.search_results));
            let mut merged = Vec::with_capacity(citations.len());
            merge_citations(&mut merged, citations.clone());
            merge_citations(&mut merged, search_results.clone());
            merged.retain(|c| c.url.is_some() || c.title.is_some());
            if !merged.is_empty() {
                items.push(StreamItem::Citations(merged));
            }
            self.last = Some((citations, search_results));
        }
        if e.finish.is_some_and(|r| !r.is_empty()) {
            items.push(StreamItem::Done);
        }
        items
    }

    /// Whether each sources member of a scanned event is the last event's, text for text or
    /// absent in both.
    fn unchanged(&self, seen: Option<&[Seen<'_>; 2]>) -> bool {
        seen.is_some_and(|seen| {
            seen.iter().zip(&self.prev).all(|(s, p)| match s {
                Seen::Same => true,
                Seen::Absent => *p == Raw::Absent,
                Seen::Read(_) => false,
            })
        })
    }

    /// Whether one member was left unread as the last event's while the other changed.
    fn partly_same(&self, e: &Event<'_>) -> bool {
        e.seen
            .as_ref()
            .is_some_and(|seen| seen.iter().any(|s| matches!(s, Seen::Same)))
            && !self.unchanged(e.seen.as_ref())
    }

    /// Keeps an event's sources members as the scanner saw them for the next event.
    fn remember(&mut self, seen: Option<&[Seen<'_>; 2]>) {
        let Some(seen) = seen else {
            self.prev = [Raw::Unknown, Raw::Unknown];
            return;
        };
        for (s, p) in seen.iter().zip(self.prev.iter_mut()) {
            match s {
                Seen::Same => {}
                Seen::Absent => *p = Raw::Absent,
                Seen::Read(t) => *p = Raw::Text((*t).to_string()),
            }
        }
    }

    /// Whether `e`'s sources are the ones given last.
    fn same(&self, citations: &[Source<'_>], search_results: &[Source<'_>]) -> bool {
        let same = |a: &[Source<'_>], b: &[Citation]| {
            a.len() == b.len() && a.iter().zip(b).all(|(s, c)| s.is(c))
        };
        self.last
            .as_ref()
            .is_some_and(|(c, s)| same(citations, c) && same(search_results, s))
    }
}

/// What the router needs of a usual event.
#[derive(Default)]
pub(super) struct Event<'de> {
    pub(super) text: Option<Cow<'de, str>>,
    pub(super) finish: Option<Cow<'de, str>>,
    pub(super) citations: Vec<Source<'de>>,
    pub(super) search_results: Vec<Source<'de>>,
    /// How the scanner found `citations` and `search_results` (in that order) against the
    /// last event's ([`Raw`]); `None` from the serde reader.
    pub(super) seen: Option<[Seen<'de>; 2]>,
}

/// A sources member of an event as the scanner ([`super::perplexity_scan`]) found it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Seen<'de> {
    /// Not in the event.
    Absent,
    /// Its value's text is the last event's, byte for byte: not read again (its sources are
    /// the last event's).
    Same,
    /// Read; its value's text.
    Read(&'de str),
}

/// A sources member of the last event, for the scanner to compare the next one's with.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) enum Raw {
    /// The last event was not the scanner's (or there was none): nothing to compare with.
    #[default]
    Unknown,
    Absent,
    /// Its value's text.
    Text(String),
}

impl<'de> Deserialize<'de> for Event<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Event<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a Perplexity stream event")
            }
            fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<Event<'de>, A::Error> {
                let mut e = Event::default();
                members(a, |key, a| {
                    match key {
                        // An error member (not null) is the general reader's to report.
                        "error" => {
                            if a.next_value::<Option<Checked>>()?.is_some() {
                                return Err(give_up());
                            }
                        }
                        "choices" => {
                            let c = a.next_value::<FirstChoice>()?;
                            (e.text, e.finish) = (c.text, c.finish);
                        }
                        "citations" => {
                            e.citations = a
                                .next_value::<Option<Vec<CitationEntry>>>()?
                                .unwrap_or_default()
                                .into_iter()
                                .map(|c| c.0)
                                .collect()
                        }
                        "search_results" => {
                            e.search_results = a
                                .next_value::<Option<Vec<SearchEntry>>>()?
                                .unwrap_or_default()
                                .into_iter()
                                .map(|c| c.0)
                                .collect()
                        }
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                Ok(e)
            }
        }
        d.deserialize_map(V)
    }
}

/// `choices`: an array whose first entry (if any) is a choice object; the others checked.
#[derive(Default)]
struct FirstChoice<'de> {
    text: Option<Cow<'de, str>>,
    finish: Option<Cow<'de, str>>,
}

impl<'de> Deserialize<'de> for FirstChoice<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Choices;
        impl<'de> Visitor<'de> for Choices {
            type Value = FirstChoice<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of choices")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<FirstChoice<'de>, A::Error> {
                let first = a.next_element::<Choice>()?.map(|c| c.0).unwrap_or_default();
                while a.next_element::<Checked>()?.is_some() {}
                Ok(first)
            }
        }
        d.deserialize_seq(Choices)
    }
}

/// A choice object: `delta.content` and `finish_reason`, each a string or absent / `null`.
struct Choice<'de>(FirstChoice<'de>);

impl<'de> Deserialize<'de> for Choice<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Choice<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a choice object")
            }
            fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<Choice<'de>, A::Error> {
                let mut c = FirstChoice::default();
                members(a, |key, a| {
                    match key {
                        "delta" => c.text = a.next_value::<Option<Delta>>()?.and_then(|d| d.0),
                        "finish_reason" => c.finish = a.next_value::<Option<Text>>()?.map(|t| t.0),
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                Ok(Choice(c))
            }
        }
        d.deserialize_map(V)
    }
}

/// A delta object, as its `content` (a string or absent / `null`).
struct Delta<'de>(Option<Cow<'de, str>>);

impl<'de> Deserialize<'de> for Delta<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Delta<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a delta object")
            }
            fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<Delta<'de>, A::Error> {
                let mut content = None;
                members(a, |key, a| {
                    if key != "content" {
                        return Ok(false);
                    }
                    content = a.next_value::<Option<Text>>()?.map(|t| t.0);
                    Ok(true)
                })?;
                Ok(Delta(content))
            }
        }
        d.deserialize_map(V)
    }
}
