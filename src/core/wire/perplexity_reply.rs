//! A fast reader for Perplexity's usual non-streamed answer, tried before the general one.
//!
//! Why: [`super::perplexity::parse_chat_response`] reads the whole body into a
//! `serde_json::Value` (a `BTreeMap` per object, every string and every ignored field copied)
//! and then picks the answer out: ~7 % of a request's samples in a workerd profile of the
//! router (benches/profile_edge.mjs), the largest single item of its own code. This reader walks
//! the same text once and keeps only what the answer needs.
//!
//! It is exact by construction: it accepts only documents whose answer it can read the way the
//! general reader does, and gives up (`None`) on anything else — an `error` member, a missing or
//! oddly typed field, a repeated member it reads, invalid JSON — and the general reader then
//! gives its result or its error as before. Fields it does not use are still checked as
//! `serde_json::Value` would read them (numbers in range), so a body one reader refuses the
//! other refuses too. `tests/native/wire_upstreams.rs` compares the two over typical and odd
//! bodies.

use super::answer::{merge_citations, Citation, UpstreamAnswer};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// The answer of a usual Perplexity body, or `None` when the general reader must decide.
pub fn read(body: &str) -> Option<UpstreamAnswer> {
    let r: Reply = serde_json::from_str(body).ok()?;
    let mut citations = Vec::new();
    merge_citations(&mut citations, r.citations);
    merge_citations(&mut citations, r.search_results);
    citations.retain(|c| c.url.is_some() || c.title.is_some());
    Some(UpstreamAnswer {
        content: r.content.into_owned(),
        citations,
        llm_generated: None,
    })
}

/// Gives up: the general reader decides.
pub(super) fn give_up<E: de::Error>() -> E {
    E::custom("not the usual shape")
}

/// A JSON string, borrowed from the body when it has no escapes.
pub(super) struct Text<'de>(pub(super) Cow<'de, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

/// Any JSON value, read as `serde_json::Value` reads it (so the same bodies are refused) and
/// dropped.
pub(super) struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Checked;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Checked, A::Error> {
                while a.next_element::<Checked>()?.is_some() {}
                Ok(Checked)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Checked, A::Error> {
                while a.next_key::<Text>()?.is_some() {
                    a.next_value::<Checked>()?;
                }
                Ok(Checked)
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads a JSON object member by member: `member(key, map)` reads the value of a member it
/// uses (and says so), anything else is [`Checked`]; a member read twice gives up (the general
/// reader keeps the last, this one would keep the first).
pub(super) fn members<'de, A: MapAccess<'de>>(
    mut a: A,
    mut member: impl FnMut(&str, &mut A) -> Result<bool, A::Error>,
) -> Result<(), A::Error> {
    let mut seen: Vec<Cow<'de, str>> = Vec::new();
    while let Some(Text(key)) = a.next_key::<Text>()? {
        if member(&key, &mut a)? {
            if seen.contains(&key) {
                return Err(give_up());
            }
            seen.push(key);
        } else {
            a.next_value::<Checked>()?;
        }
    }
    Ok(())
}

/// A source field: a string or `null` (`as_str` of anything else is `None` in the general
/// reader; this one gives up there).
fn source_field<'de, A: MapAccess<'de>>(a: &mut A) -> Result<Option<Cow<'de, str>>, A::Error> {
    Ok(a.next_value::<Option<Text>>()?.map(|t| t.0))
}

/// A source as the body gives it, blank fields already `None` (`perplexity::non_blank`),
/// borrowed from the body where it has no escapes.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Source<'de> {
    pub(super) url: Option<Cow<'de, str>>,
    pub(super) title: Option<Cow<'de, str>>,
}

impl Source<'_> {
    pub(super) fn into_citation(self) -> Citation {
        Citation {
            url: self.url.map(Cow::into_owned),
            title: self.title.map(Cow::into_owned),
        }
    }

    /// Whether `c` is this source.
    pub(super) fn is(&self, c: &Citation) -> bool {
        self.url.as_deref() == c.url.as_deref() && self.title.as_deref() == c.title.as_deref()
    }
}

/// A source field as given, or `None` when absent or blank.
pub(super) fn non_blank_cow(v: Option<Cow<'_, str>>) -> Option<Cow<'_, str>> {
    v.filter(|s| !s.trim().is_empty())
}

/// An object with `url` and `title` (a `search_results` entry, or a `citations` entry that is
/// an object).
fn source_object<'de, A: MapAccess<'de>>(a: A) -> Result<Source<'de>, A::Error> {
    let (mut url, mut title) = (None, None);
    members(a, |key, a| {
        Ok(match key {
            "url" => {
                url = source_field(a)?;
                true
            }
            "title" => {
                title = source_field(a)?;
                true
            }
            _ => false,
        })
    })?;
    Ok(Source {
        url: non_blank_cow(url),
        title: non_blank_cow(title),
    })
}

/// A `citations` entry: a URL string, or an object with `url` and `title`.
pub(super) struct CitationEntry<'de>(pub(super) Source<'de>);

impl<'de> Deserialize<'de> for CitationEntry<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CitationEntry<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a URL string or a source object")
            }
            fn visit_borrowed_str<E: de::Error>(
                self,
                s: &'de str,
            ) -> Result<CitationEntry<'de>, E> {
                Ok(CitationEntry(Source {
                    url: non_blank_cow(Some(Cow::Borrowed(s))),
                    title: None,
                }))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<CitationEntry<'de>, E> {
                Ok(CitationEntry(Source {
                    url: non_blank_cow(Some(Cow::Owned(s.to_string()))),
                    title: None,
                }))
            }
            fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<CitationEntry<'de>, A::Error> {
                source_object(a).map(CitationEntry)
            }
        }
        d.deserialize_any(V)
    }
}

/// A `search_results` entry: an object.
pub(super) struct SearchEntry<'de>(pub(super) Source<'de>);

impl<'de> Deserialize<'de> for SearchEntry<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SearchEntry<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a source object")
            }
            fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<SearchEntry<'de>, A::Error> {
                source_object(a).map(SearchEntry)
            }
        }
        d.deserialize_map(V)
    }
}

/// `choices[0].message.content`: the first choice, read; the others checked.
struct FirstContent<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for FirstContent<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Choices;
        impl<'de> Visitor<'de> for Choices {
            type Value = FirstContent<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of choices")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<FirstContent<'de>, A::Error> {
                let first = a.next_element::<Choice>()?.ok_or_else(give_up)?;
                while a.next_element::<Checked>()?.is_some() {}
                Ok(FirstContent(first.0))
            }
        }
        d.deserialize_seq(Choices)
    }
}

/// A choice (an object whose `message` is an object with string `content`), as its content.
struct Choice<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Choice<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Choice<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a choice object")
            }
            fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<Choice<'de>, A::Error> {
                let mut content = None;
                members(a, |key, a| {
                    if key != "message" {
                        return Ok(false);
                    }
                    content = Some(a.next_value::<Message>()?.0);
                    Ok(true)
                })?;
                content.map(Choice).ok_or_else(give_up)
            }
        }
        d.deserialize_map(V)
    }
}

/// A message object, as its string `content`.
struct Message<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Message<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Message<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a message object")
            }
            fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<Message<'de>, A::Error> {
                let mut content = None;
                members(a, |key, a| {
                    if key != "content" {
                        return Ok(false);
                    }
                    content = Some(a.next_value::<Text>()?.0);
                    Ok(true)
                })?;
                content.map(Message).ok_or_else(give_up)
            }
        }
        d.deserialize_map(V)
    }
}

/// What the answer needs of the whole body.
struct Reply<'de> {
    content: Cow<'de, str>,
    citations: Vec<Citation>,
    search_results: Vec<Citation>,
}

impl<'de> Deserialize<'de> for Reply<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Reply<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a Perplexity answer object")
            }
            fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<Reply<'de>, A::Error> {
                let mut content = None;
                let (mut citations, mut search_results) = (Vec::new(), Vec::new());
                members(a, |key, a| {
                    match key {
                        // An error member (not null) is the general reader's to report.
                        "error" => {
                            if a.next_value::<Option<Checked>>()?.is_some() {
                                return Err(give_up());
                            }
                        }
                        "choices" => content = Some(a.next_value::<FirstContent>()?.0),
                        "citations" => {
                            citations = a
                                .next_value::<Option<Vec<CitationEntry>>>()?
                                .unwrap_or_default()
                                .into_iter()
                                .map(|c| c.0.into_citation())
                                .collect()
                        }
                        "search_results" => {
                            search_results = a
                                .next_value::<Option<Vec<SearchEntry>>>()?
                                .unwrap_or_default()
                                .into_iter()
                                .map(|c| c.0.into_citation())
                                .collect()
                        }
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                Ok(Reply {
                    content: content.ok_or_else(give_up)?,
                    citations,
                    search_results,
                })
            }
        }
        d.deserialize_map(V)
    }
}
