//! Conditional routing rules (docs/architecture.md#the-routing-decision, step 6): an ordered list, first match wins.
//!
//! Why rules at all: some questions suit one upstream whatever the rollout says — "latest news"
//! needs Perplexity's web search, a pathway question suits LightRAG's graph — and operators want
//! to pin a client, a header or a few users without redeploying. Rules run after the safety
//! steps (rollback, breaker, quality gate), so a rule can never send traffic to a LightRAG that
//! is known to be failing.
//!
//! # Schema (`LIGHTRAG_ROUTING_RULES`, a JSON array, as a string or a native array)
//!
//! ```json
//! [{"name": "news-to-web",
//!   "when": {"query_type": ["temporal"], "min_length": 3},
//!   "action": "perplexity"},
//!  {"name": "graph-questions",
//!   "when": {"keywords_any": ["pathway", "mechanism"], "max_length": 2000},
//!   "action": "lightrag"},
//!  {"name": "mobile-beta",
//!   "when": {"headers": [{"name": "X-Client", "equals": "mobile-beta"}]},
//!   "action": "rollout"}]
//! ```
//!
//! - `name`: required, unique, 1–64 characters of `[A-Za-z0-9_.-]`. It appears in the decision
//!   reason `rule:<name>` and in the `X-Route-Reason` response header, so it must be header-safe.
//! - `action`: `lightrag` or `perplexity` (routed by the rule: out of the experiment), or
//!   `rollout` (stop evaluating rules and fall through to the hash, staying in the experiment).
//! - `when`: every present condition must hold (AND); an empty or absent `when` matches all.
//!   - `min_length` / `max_length`: inclusive bounds on the query length in Unicode characters.
//!   - `keywords_any` / `keywords_all`: case-insensitive whole-word (or whole-phrase) matches;
//!     a keyword matches where it is not glued to letters or digits on either side, so
//!     `"news"` does not match "newsletter" and `"current guidelines"` matches as a phrase.
//!   - `regex`: a regex-lite pattern (at most 512 characters, compiled once at load with a
//!     64 KiB size limit and nesting limit 50 so one rule cannot make every request slow);
//!     `regex_case_insensitive` (default `true`).
//!   - `query_type`: one class name or a list (see [`crate::core::classify`]); any may match.
//!   - `headers`: a list of `{"name", "equals" | "contains"}`; header names and values compare
//!     ASCII-case-insensitively; a missing header fails the condition; each entry must hold.
//!   - `users`: a list of stickiness keys (exact match).
//!
//! Unknown fields are errors (a typo such as `"keyword_any"` would otherwise turn a rule into a
//! match-everything rule). An invalid rule is skipped *and* reported with its index and reason
//! when the config loads, never dropped silently.
//!
//! Why regex-lite: it has no Unicode tables, which keeps the wasm build roughly ten times
//! smaller than with `regex` (about 100 KB of code instead of ~1 MB of tables), and rule
//! patterns are operator-written ASCII in practice. The cost: `\w`, `\d` and case-folding are
//! ASCII-only, and matching is slower than `regex`'s (a backtracker/PikeVM without a DFA), which
//! is fine for short chat queries. Keywords and lengths, the common cases, never touch the
//! regex engine.

use crate::core::classify::{self, QueryType};
use crate::core::model::Upstream;
use crate::core::text;
use regex_lite::{Regex, RegexBuilder};
use serde::{Deserialize, Deserializer, Serialize};
use std::cell::OnceCell;
use std::fmt;

/// Longest accepted regex pattern, in bytes.
pub const MAX_REGEX_LEN: usize = 512;
/// regex-lite compiled-program size limit, in bytes.
pub const REGEX_SIZE_LIMIT: usize = 64 * 1024;
/// Most rules a config may hold; the rest are reported.
pub const MAX_RULES: usize = 100;
/// Longest rule name.
pub const MAX_NAME_LEN: usize = 64;

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Lightrag,
    Perplexity,
    /// Stop evaluating rules; route by the rollout hash.
    Rollout,
}

impl Action {
    /// The upstream a rule forces, or `None` for `rollout`.
    pub fn upstream(self) -> Option<Upstream> {
        match self {
            Action::Lightrag => Some(Upstream::Lightrag),
            Action::Perplexity => Some(Upstream::Perplexity),
            Action::Rollout => None,
        }
    }
}

/// One or several query types: `"lookup"` or `["lookup", "temporal"]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(QueryType),
    Many(Vec<QueryType>),
}

// By hand, as serde's untagged derive reads (each form in turn, then its one error), without
// its `Content` buffer (`json::deserialize_with` says why).
impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::core::json::deserialize_with(d, |v| {
            if let Ok(t) = QueryType::deserialize(v) {
                return Ok(OneOrMany::One(t));
            }
            if let Ok(ts) = Vec::<QueryType>::deserialize(v) {
                return Ok(OneOrMany::Many(ts));
            }
            Err(serde::de::Error::custom(
                "data did not match any variant of untagged enum OneOrMany",
            ))
        })
    }
}

impl OneOrMany {
    fn contains(&self, t: QueryType) -> bool {
        match self {
            OneOrMany::One(x) => *x == t,
            OneOrMany::Many(v) => v.contains(&t),
        }
    }
}

/// A header condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderCondition {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<String>,
}

/// The conditions of a rule, as written (all must hold).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords_any: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords_all: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex_case_insensitive: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_type: Option<OneOrMany>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderCondition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
}

/// A rule as written in the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    #[serde(default)]
    pub when: When,
    pub action: Action,
}

/// A validated rule, ready to match: keywords lower-cased and the regex compiled once.
/// Serializes as its [`RuleSpec`], so the status API shows what the operator wrote.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct Rule {
    spec: RuleSpec,
    #[serde(skip)]
    keywords_any: Vec<String>,
    #[serde(skip)]
    keywords_all: Vec<String>,
    #[serde(skip)]
    regex: Option<Regex>,
    #[serde(skip)]
    headers: Vec<(String, HeaderTest)>,
}

#[derive(Debug, Clone)]
enum HeaderTest {
    Equals(String),
    Contains(String),
}

/// What is wrong with a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleInvalid {
    NotAList,
    TooMany,
    /// The JSON does not fit the schema (serde's message names the field).
    Schema(String),
    DuplicateName(String),
    NameLength,
    NameCharacters,
    LengthOrder {
        min: usize,
        max: usize,
    },
    EmptyKeyword {
        field: &'static str,
    },
    CaseWithoutRegex,
    RegexTooLong {
        bytes: usize,
    },
    Regex(String),
    EmptyQueryTypes,
    HeaderWithoutName,
    HeaderEmptyContains {
        header: String,
    },
    HeaderTest {
        header: String,
    },
    EmptyUser,
}

impl fmt::Display for RuleInvalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleInvalid::NotAList => f.write_str("expected a JSON array of rules"),
            RuleInvalid::TooMany => {
                write!(f, "more than {MAX_RULES} rules; the rest are ignored")
            }
            RuleInvalid::Schema(e) => f.write_str(e),
            RuleInvalid::DuplicateName(n) => write!(f, "duplicate rule name {n:?}"),
            RuleInvalid::NameLength => {
                write!(f, "name must be 1 to {MAX_NAME_LEN} characters")
            }
            RuleInvalid::NameCharacters => {
                f.write_str("name may only contain letters, digits, '_', '-' and '.'")
            }
            RuleInvalid::LengthOrder { min, max } => {
                write!(f, "min_length {min} is greater than max_length {max}")
            }
            RuleInvalid::EmptyKeyword { field } => write!(f, "{field} contains an empty keyword"),
            RuleInvalid::CaseWithoutRegex => {
                f.write_str("regex_case_insensitive given without regex")
            }
            RuleInvalid::RegexTooLong { bytes } => {
                write!(
                    f,
                    "regex is {bytes} bytes; at most {MAX_REGEX_LEN} accepted"
                )
            }
            RuleInvalid::Regex(e) => write!(f, "invalid regex: {e}"),
            RuleInvalid::EmptyQueryTypes => f.write_str("query_type list is empty"),
            RuleInvalid::HeaderWithoutName => f.write_str("header condition without a name"),
            RuleInvalid::HeaderEmptyContains { header } => {
                write!(f, "header {header}: empty 'contains'")
            }
            RuleInvalid::HeaderTest { header } => {
                write!(
                    f,
                    "header {header}: give exactly one of 'equals' or 'contains'"
                )
            }
            RuleInvalid::EmptyUser => f.write_str("users list contains an empty key"),
        }
    }
}

/// A rejected rule: where it was in the list, its name if it had one, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub index: usize,
    pub name: Option<String>,
    pub reason: RuleInvalid,
}

/// The outcome of parsing a rule list: the valid rules in order, and one error per bad rule.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub rules: Vec<Rule>,
    pub errors: Vec<RuleError>,
}

impl Rule {
    pub fn name(&self) -> &str {
        &self.spec.name
    }
    pub fn action(&self) -> Action {
        self.spec.action
    }
    pub fn spec(&self) -> &RuleSpec {
        &self.spec
    }

    /// Validates and compiles one rule.
    pub fn compile(spec: RuleSpec) -> Result<Rule, RuleInvalid> {
        let name = &spec.name;
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(RuleInvalid::NameLength);
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            return Err(RuleInvalid::NameCharacters);
        }
        let w = &spec.when;
        if let (Some(min), Some(max)) = (w.min_length, w.max_length) {
            if min > max {
                return Err(RuleInvalid::LengthOrder { min, max });
            }
        }
        let keywords_any = keywords(&w.keywords_any, "keywords_any")?;
        let keywords_all = keywords(&w.keywords_all, "keywords_all")?;
        if w.regex_case_insensitive.is_some() && w.regex.is_none() {
            return Err(RuleInvalid::CaseWithoutRegex);
        }
        let regex = match &w.regex {
            None => None,
            Some(p) if p.len() > MAX_REGEX_LEN => {
                return Err(RuleInvalid::RegexTooLong { bytes: p.len() })
            }
            Some(p) => Some(
                RegexBuilder::new(p)
                    .case_insensitive(w.regex_case_insensitive.unwrap_or(true))
                    .size_limit(REGEX_SIZE_LIMIT)
                    .nest_limit(50)
                    .build()
                    .map_err(|e| RuleInvalid::Regex(e.to_string()))?,
            ),
        };
        if let Some(OneOrMany::Many(v)) = &w.query_type {
            if v.is_empty() {
                return Err(RuleInvalid::EmptyQueryTypes);
            }
        }
        let mut headers = Vec::with_capacity(w.headers.len());
        for h in &w.headers {
            let header = h.name.trim().to_ascii_lowercase();
            if header.is_empty() {
                return Err(RuleInvalid::HeaderWithoutName);
            }
            let test = match (&h.equals, &h.contains) {
                (Some(e), None) => HeaderTest::Equals(e.trim().to_string()),
                (None, Some(c)) if !c.is_empty() => HeaderTest::Contains(c.to_string()),
                (None, Some(_)) => return Err(RuleInvalid::HeaderEmptyContains { header }),
                _ => return Err(RuleInvalid::HeaderTest { header }),
            };
            headers.push((header, test));
        }
        if w.users.iter().any(|u| u.is_empty()) {
            return Err(RuleInvalid::EmptyUser);
        }
        Ok(Rule {
            spec,
            keywords_any,
            keywords_all,
            regex,
            headers,
        })
    }

    /// Whether every condition holds for `q`.
    pub fn matches(&self, q: &Query<'_>) -> bool {
        let w = &self.spec.when;
        if w.min_length.is_some() || w.max_length.is_some() {
            let n = q.char_len();
            if w.min_length.is_some_and(|lo| n < lo) || w.max_length.is_some_and(|hi| n > hi) {
                return false;
            }
        }
        if let Some(t) = &w.query_type {
            if !t.contains(q.query_type()) {
                return false;
            }
        }
        if !w.users.is_empty() && !q.key.is_some_and(|k| w.users.iter().any(|u| u == k)) {
            return false;
        }
        for (name, test) in &self.headers {
            let ok = q.headers.iter().any(|(n, v)| {
                n.eq_ignore_ascii_case(name)
                    && match test {
                        HeaderTest::Equals(e) => v.trim().eq_ignore_ascii_case(e),
                        HeaderTest::Contains(c) => text::contains_ignore_ascii_case(v, c),
                    }
            });
            if !ok {
                return false;
            }
        }
        if !self.keywords_any.is_empty() && !self.keywords_any.iter().any(|k| q.has_word(k)) {
            return false;
        }
        if !self.keywords_all.iter().all(|k| q.has_word(k)) {
            return false;
        }
        if let Some(re) = &self.regex {
            if !re.is_match(q.text) {
                return false;
            }
        }
        true
    }
}

fn keywords(list: &[String], field: &'static str) -> Result<Vec<String>, RuleInvalid> {
    list.iter()
        .map(|k| {
            let k = k.trim();
            if k.is_empty() {
                Err(RuleInvalid::EmptyKeyword { field })
            } else {
                Ok(k.to_lowercase())
            }
        })
        .collect()
}

/// Parses a rule list from its JSON value. A value that is not an array is one error at index 0
/// with no rules; each bad element is one error and is skipped.
pub fn parse(value: &serde_json::Value) -> Parsed {
    let mut out = Parsed::default();
    let Some(items) = value.as_array() else {
        out.errors.push(RuleError {
            index: 0,
            name: None,
            reason: RuleInvalid::NotAList,
        });
        return out;
    };
    for (index, item) in items.iter().enumerate() {
        let name = item
            .get("name")
            .and_then(|n| n.as_str())
            .map(str::to_string);
        let err = |reason: RuleInvalid| RuleError {
            index,
            name: name.clone(),
            reason,
        };
        if index >= MAX_RULES {
            out.errors.push(err(RuleInvalid::TooMany));
            continue;
        }
        let spec = match RuleSpec::deserialize(item) {
            Ok(s) => s,
            Err(e) => {
                out.errors.push(err(RuleInvalid::Schema(e.to_string())));
                continue;
            }
        };
        if out.rules.iter().any(|r| r.name() == spec.name) {
            out.errors
                .push(err(RuleInvalid::DuplicateName(spec.name.clone())));
            continue;
        }
        match Rule::compile(spec) {
            Ok(r) => out.rules.push(r),
            Err(reason) => out.errors.push(err(reason)),
        }
    }
    out
}

/// What rules may ask about a query's text, computed once up front — for a query decided for
/// many users (the preview's "who goes where for this question", [`crate::core::decide::PreparedQuery`]).
/// The one fast path of the rules: a single-word keyword on an ASCII query is a lookup in the
/// query's sorted words instead of a search of its text (the same answer: such a keyword matches
/// exactly a maximal run of letters and digits; proptested in `tests/native/decide_props.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryFacts {
    query_type: QueryType,
    char_len: usize,
    /// The lower-cased words of an ASCII query, sorted; `None` for other text.
    words: Option<Vec<String>>,
}

impl QueryFacts {
    pub fn new(text: &str) -> QueryFacts {
        let words = text.is_ascii().then(|| {
            let mut w: Vec<String> = text::words(text)
                .map(|w| w.text.to_ascii_lowercase())
                .collect();
            w.sort_unstable();
            w.dedup();
            w
        });
        QueryFacts {
            query_type: classify::classify(text),
            char_len: text.chars().count(),
            words,
        }
    }

    pub fn query_type(&self) -> QueryType {
        self.query_type
    }
}

/// The request as rules see it. Derived facts — the query's class, its length in characters,
/// its lower-cased text (non-ASCII queries only) — are computed at most once and only when a
/// rule asks, so a request that meets no `query_type` condition is never classified; or they
/// come precomputed ([`QueryFacts`]).
pub struct Query<'a> {
    pub text: &'a str,
    pub key: Option<&'a str>,
    pub headers: &'a [(String, String)],
    facts: Option<&'a QueryFacts>,
    /// A class the caller declared (the seed `/query`'s `query_type`): used instead of the
    /// classifier.
    declared: Option<QueryType>,
    query_type: OnceCell<QueryType>,
    char_len: OnceCell<usize>,
    lower: OnceCell<String>,
}

impl<'a> Query<'a> {
    /// `facts`: precomputed facts about `text`, if the caller has them.
    pub fn new(
        text: &'a str,
        facts: Option<&'a QueryFacts>,
        key: Option<&'a str>,
        headers: &'a [(String, String)],
    ) -> Query<'a> {
        Query {
            text,
            key,
            headers,
            facts,
            declared: None,
            query_type: OnceCell::new(),
            char_len: OnceCell::new(),
            lower: OnceCell::new(),
        }
    }

    /// The same query with a class the caller declared, if any.
    pub fn with_declared_type(mut self, declared: Option<QueryType>) -> Query<'a> {
        self.declared = declared;
        self
    }

    /// The query's class ([`classify::classify`]).
    pub fn query_type(&self) -> QueryType {
        if let Some(t) = self.declared {
            return t;
        }
        match self.facts {
            Some(f) => f.query_type,
            None => *self
                .query_type
                .get_or_init(|| classify::classify(self.text)),
        }
    }

    fn char_len(&self) -> usize {
        match self.facts {
            Some(f) => f.char_len,
            None => *self.char_len.get_or_init(|| self.text.chars().count()),
        }
    }

    /// Whole-word, case-insensitive search for an already lower-cased keyword. ASCII queries
    /// are compared in place; others are lower-cased once.
    fn has_word(&self, keyword: &str) -> bool {
        let words = self.facts.and_then(|f| f.words.as_ref());
        if let Some(words) = words.filter(|_| keyword.bytes().all(|b| b.is_ascii_alphanumeric())) {
            return words.binary_search_by(|w| w.as_str().cmp(keyword)).is_ok();
        }
        if self.text.is_ascii() {
            text::contains_word(self.text.as_bytes(), keyword.as_bytes(), true)
        } else {
            let lower = self.lower.get_or_init(|| self.text.to_lowercase());
            text::contains_word(lower.as_bytes(), keyword.as_bytes(), false)
        }
    }
}

/// Rule-based routing over a query: the first matching rule, if any.
pub fn first_match<'r>(rules: &'r [Rule], q: &Query<'_>) -> Option<&'r Rule> {
    rules.iter().find(|r| r.matches(q))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(v: serde_json::Value) -> Result<Rule, String> {
        Rule::compile(serde_json::from_value(v).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())
    }

    fn q<'a>(text: &'a str, headers: &'a [(String, String)]) -> Query<'a> {
        Query::new(text, None, Some("u1"), headers)
    }

    /// The hand-written `OneOrMany` reader against serde's untagged derive it replaced.
    #[test]
    fn one_or_many_reads_as_the_untagged_derive_did() {
        #[derive(Debug, Serialize, Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(QueryType),
            Many(Vec<QueryType>),
        }
        for v in [
            json!("lookup"),
            json!(["lookup", "temporal"]),
            json!([]),
            json!("nope"),
            json!(["lookup", "nope"]),
            json!(3),
            json!(null),
            json!({"lookup": null}),
            json!({}),
        ] {
            match (
                super::OneOrMany::deserialize(&v),
                OneOrMany::deserialize(&v),
            ) {
                (Ok(a), Ok(b)) => assert_eq!(
                    serde_json::to_value(&a).unwrap(),
                    serde_json::to_value(&b).unwrap(),
                    "{v}"
                ),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{v}"),
                (a, b) => panic!("{v}: {:?} vs {:?}", a.is_ok(), b.is_ok()),
            }
        }
    }

    #[test]
    fn keywords_are_whole_words_case_insensitive() {
        let r = rule(json!({"name":"k","when":{"keywords_any":["News","current guidelines"]},"action":"perplexity"}))
            .unwrap();
        assert!(r.matches(&q("any NEWS today?", &[])));
        assert!(r.matches(&q(
            "the Current  Guidelines".replace("  ", " ").as_str(),
            &[]
        )));
        assert!(!r.matches(&q("newsletter", &[])));
        assert!(r.matches(&q("current data vs current guidelines", &[])));
        assert!(!r.matches(&q("recurrent guidelines", &[])));
        assert!(!r.matches(&q("current guidelinesX", &[])));
        // Non-ASCII query: lower-cased once, still whole-word.
        let r = rule(
            json!({"name":"k","when":{"keywords_all":["métabolome","ÉTUDE"]},"action":"lightrag"}),
        )
        .unwrap();
        assert!(r.matches(&q("Étude du MÉTABOLOME", &[])));
        assert!(!r.matches(&q("Étude du métabolomes", &[])));
    }

    #[test]
    fn length_counts_characters() {
        let r =
            rule(json!({"name":"l","when":{"min_length":3,"max_length":4},"action":"lightrag"}))
                .unwrap();
        assert!(r.matches(&q("βββ", &[])));
        assert!(!r.matches(&q("ββ", &[])));
        assert!(!r.matches(&q("βββββ", &[])));
    }

    #[test]
    fn headers_and_users() {
        let h = vec![("x-client".to_string(), "Mobile-Beta ".to_string())];
        let r = rule(json!({"name":"h","when":{"headers":[{"name":"X-Client","equals":"mobile-beta"}]},"action":"rollout"}))
            .unwrap();
        assert!(r.matches(&q("x", &h)));
        assert!(!r.matches(&q("x", &[])));
        let r = rule(json!({"name":"h","when":{"headers":[{"name":"x-client","contains":"BETA"}]},"action":"rollout"}))
            .unwrap();
        assert!(r.matches(&q("x", &h)));
        let r = rule(json!({"name":"u","when":{"users":["u1"]},"action":"lightrag"})).unwrap();
        assert!(r.matches(&q("x", &[])));
        assert!(!r.matches(&Query::new("x", None, None, &[])));
    }

    #[test]
    fn regex_compiled_and_limited() {
        let r = rule(json!({"name":"r","when":{"regex":"^how (does|do)\\b"},"action":"lightrag"}))
            .unwrap();
        assert!(r.matches(&q("HOW does it work", &[])));
        let r = rule(json!({"name":"r","when":{"regex":"^how","regex_case_insensitive":false},"action":"lightrag"}))
            .unwrap();
        assert!(!r.matches(&q("HOW", &[])));
        assert!(
            rule(json!({"name":"r","when":{"regex":"(unclosed"},"action":"lightrag"})).is_err()
        );
        let long = "a".repeat(MAX_REGEX_LEN + 1);
        assert!(rule(json!({"name":"r","when":{"regex":long},"action":"lightrag"})).is_err());
        assert!(
            rule(json!({"name":"r","when":{"regex":"(a{1,100}){1,100}"},"action":"lightrag"}))
                .is_err()
        );
    }

    #[test]
    fn parse_reports_each_bad_rule_with_index() {
        let v = json!([
            {"name":"ok","when":{"query_type":"temporal"},"action":"perplexity"},
            {"name":"typo","when":{"keyword_any":["x"]},"action":"lightrag"},
            {"name":"ok","action":"lightrag"},
            {"name":"bad action","action":"somewhere"},
            {"name":"types","when":{"query_type":["mechanism","definition"]},"action":"lightrag"},
            "not an object"
        ]);
        let p = parse(&v);
        let names: Vec<_> = p.rules.iter().map(Rule::name).collect();
        assert_eq!(names, ["ok", "types"]);
        let idx: Vec<_> = p.errors.iter().map(|e| e.index).collect();
        assert_eq!(idx, [1, 2, 3, 5]);
        assert!(
            p.errors[0].reason.to_string().contains("keyword_any"),
            "{:?}",
            p.errors[0]
        );
        assert!(p.errors[1].reason.to_string().contains("duplicate"));
        assert_eq!(parse(&json!({"a":1})).errors.len(), 1);
    }

    #[test]
    fn first_match_wins_and_serializes_as_written() {
        let p = parse(&json!([
            {"name":"a","when":{"keywords_any":["pathway"]},"action":"lightrag"},
            {"name":"b","action":"perplexity"}
        ]));
        assert_eq!(
            first_match(&p.rules, &q("a pathway", &[])).map(Rule::name),
            Some("a")
        );
        assert_eq!(
            first_match(&p.rules, &q("other", &[])).map(Rule::name),
            Some("b")
        );
        let s = serde_json::to_value(&p.rules[0]).unwrap();
        assert_eq!(
            s,
            json!({"name":"a","when":{"keywords_any":["pathway"]},"action":"lightrag"})
        );
    }
}
