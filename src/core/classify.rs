//! Query classification: a cheap guess at what kind of question a chat query is.
//!
//! Why: the two upstreams are good at different things (DESIGN §3, step 6). Perplexity searches
//! the live web, so "latest", "2025", "current guidelines" and news questions suit it; LightRAG
//! walks a curated clinical-metabolomics knowledge graph, so mechanism, pathway and relationship
//! questions suit it. Conditional rules use the class (`"query_type": "temporal"`), and every
//! decision reports it so operators can see the traffic mix.
//!
//! Why heuristics and not a model: this runs on every request inside `decide`, natively and in
//! wasm, with a budget of tens of nanoseconds and no allocation. So it is one pass over the
//! query's bytes, splitting on ASCII non-alphanumerics (non-ASCII bytes stay inside words, so
//! "β-oxidation" yields the word "oxidation"), lower-casing each ASCII word into a small stack
//! buffer and looking it up in fixed tables. Two-word phrases ("what is", "how does",
//! "difference between", "current guidelines") are matched by remembering the previous word.
//!
//! Priority when several signals fire, most specific need first:
//! 1. **Temporal** — needs fresh information, which only web search has, whatever else it asks
//!    ("latest research on the kynurenine pathway").
//! 2. **Comparison** — "compare", "vs", "difference between" ("what is the difference between
//!    LC-MS and GC-MS" is a comparison, not a definition).
//! 3. **Mechanism** — pathway / mechanism / "how does X affect Y" / "relationship between" /
//!    regulates / interacts...
//! 4. **Definition** — "what is", "define", "meaning of", "stands for".
//! 5. **General** — anything else.
//!
//! The heuristics are English-only and deliberately conservative: a miss falls back to
//! `General`, which routes by the ordinary rollout hash, so a wrong guess costs little.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The class of a query. Serialized in lowercase (`"temporal"`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueryType {
    /// Recent events, news, "latest", years, current guidelines: suits web search.
    Temporal,
    /// Mechanisms, pathways, relationships, regulation: suits the knowledge graph.
    Mechanism,
    /// "What is X", definitions, meanings.
    Definition,
    /// Comparisons: "X vs Y", "difference between".
    Comparison,
    /// Nothing more specific was recognised.
    General,
}

impl QueryType {
    pub const ALL: [QueryType; 5] = [
        QueryType::Temporal,
        QueryType::Mechanism,
        QueryType::Definition,
        QueryType::Comparison,
        QueryType::General,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            QueryType::Temporal => "temporal",
            QueryType::Mechanism => "mechanism",
            QueryType::Definition => "definition",
            QueryType::Comparison => "comparison",
            QueryType::General => "general",
        }
    }

    /// Parses the lowercase name (case-insensitive, surrounding spaces ignored).
    pub fn parse(s: &str) -> Option<QueryType> {
        let s = s.trim();
        QueryType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for QueryType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which signals fired, for the preview page and for tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Signals {
    pub temporal: bool,
    pub comparison: bool,
    pub mechanism: bool,
    pub definition: bool,
}

impl Signals {
    /// The class these signals give, by the documented priority.
    pub fn query_type(self) -> QueryType {
        if self.temporal {
            QueryType::Temporal
        } else if self.comparison {
            QueryType::Comparison
        } else if self.mechanism {
            QueryType::Mechanism
        } else if self.definition {
            QueryType::Definition
        } else {
            QueryType::General
        }
    }
}

/// The class and the signals behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Explanation {
    pub query_type: QueryType,
    pub signals: Signals,
}

/// Classifies a query. Pure, allocation-free, linear in the query's length.
pub fn classify(query: &str) -> QueryType {
    signals(query).query_type()
}

/// Classifies a query and says which signals fired.
pub fn classify_explain(query: &str) -> Explanation {
    let signals = signals(query);
    Explanation {
        query_type: signals.query_type(),
        signals,
    }
}

/// Longest word we look up; longer words cannot be in the tables.
const WORD_MAX: usize = 16;

const T: u8 = 1;
const C: u8 = 2;
const M: u8 = 4;
const D: u8 = 8;

/// Signals of a single word: one lookup for all four tables.
fn word_flags(w: &[u8]) -> u8 {
    match w {
        // Temporal.
        b"latest" | b"recent" | b"recently" | b"newest" | b"current" | b"currently" | b"today"
        | b"yesterday" | b"tonight" | b"news" | b"update" | b"updates" | b"updated"
        | b"upcoming" | b"ongoing" | b"announced" | b"breaking" | b"nowadays" => T,
        // Comparison.
        b"compare" | b"compared" | b"compares" | b"comparing" | b"comparison" | b"comparisons"
        | b"vs" | b"versus" | b"differ" | b"differs" | b"contrast" | b"similarities"
        | b"tradeoffs" | b"advantages" | b"disadvantages" => C,
        // Mechanism / pathway / relationship.
        b"mechanism" | b"mechanisms" | b"mechanistic" | b"pathway" | b"pathways" | b"regulate"
        | b"regulates" | b"regulated" | b"regulating" | b"regulation" | b"upregulate"
        | b"upregulates" | b"upregulation" | b"downregulate" | b"downregulates"
        | b"downregulation" | b"interact" | b"interacts" | b"interaction" | b"interactions"
        | b"mediate" | b"mediates" | b"mediated" | b"signaling" | b"signalling" | b"cascade"
        | b"inhibit" | b"inhibits" | b"inhibition" | b"activate" | b"activates" | b"activation"
        | b"catalyze" | b"catalyzes" | b"catalyse" | b"catalyses" | b"biosynthesis"
        | b"metabolized" | b"metabolised" | b"crosstalk" | b"modulate" | b"modulates"
        | b"affect" | b"affects" | b"influence" | b"influences" | b"why" => M,
        // Definition.
        b"define" | b"definition" | b"whats" | b"meaning" | b"glossary" => D,
        // A four-digit year from 2000 to 2039: asking about a recent year needs fresh data.
        [b'2', b'0', b'0'..=b'3', b'0'..=b'9'] => T,
        _ => 0,
    }
}

/// First words of the two-word phrases. Remembering which one the previous word was (instead
/// of the word itself) keeps the phrase check to one small match on the current word.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Head {
    None,
    ThisLastPast,
    As,
    Whats,
    Right,
    So,
    DifferenceBetween,
    Than,
    Pros,
    How,
    RelationBetween,
    Role,
    LeadTo,
    What,
    Meaning,
    Stand,
    Meant,
    Overview,
    Introduction,
}

fn head(w: &[u8]) -> Head {
    match w {
        b"this" | b"last" | b"past" => Head::ThisLastPast,
        b"as" => Head::As,
        b"whats" | b"s" => Head::Whats,
        b"right" => Head::Right,
        b"so" => Head::So,
        b"difference" | b"differences" | b"distinguish" => Head::DifferenceBetween,
        b"better" | b"worse" | b"faster" | b"more" | b"less" => Head::Than,
        b"pros" => Head::Pros,
        b"how" => Head::How,
        b"relationship" | b"relation" | b"link" | b"association" | b"connection" => {
            Head::RelationBetween
        }
        b"role" => Head::Role,
        b"lead" | b"leads" | b"contribute" | b"contributes" => Head::LeadTo,
        b"what" => Head::What,
        b"meaning" => Head::Meaning,
        b"stand" | b"stands" => Head::Stand,
        b"meant" => Head::Meant,
        b"overview" => Head::Overview,
        b"introduction" => Head::Introduction,
        _ => Head::None,
    }
}

/// Signals of a two-word phrase (previous word's head, this word).
fn phrase_flags(h: Head, w: &[u8]) -> u8 {
    let hit = |words: &[&[u8]]| words.contains(&w);
    match h {
        Head::None => 0,
        Head::ThisLastPast if hit(&[b"year", b"month", b"week", b"decade"]) => T,
        Head::As if w == b"of" => T,
        Head::Whats if w == b"new" => T,
        Head::Right if w == b"now" => T,
        Head::So if w == b"far" => T,
        Head::DifferenceBetween if w == b"between" => C,
        Head::Than if w == b"than" => C,
        Head::Pros if w == b"and" => C,
        Head::How if hit(&[b"does", b"do", b"is", b"are", b"can"]) => M,
        Head::RelationBetween if w == b"between" => M,
        Head::Role if w == b"of" => M,
        Head::LeadTo if w == b"to" => M,
        Head::What if hit(&[b"is", b"are", b"s"]) => D,
        Head::Meaning if w == b"of" => D,
        Head::Stand if w == b"for" => D,
        Head::Meant if w == b"by" => D,
        Head::Overview if w == b"of" => D,
        Head::Introduction if w == b"to" => D,
        _ => 0,
    }
}

fn signals(query: &str) -> Signals {
    let bytes = query.as_bytes();
    let mut flags = 0u8;
    let mut prev = Head::None;
    let mut cur = [0u8; WORD_MAX];
    let mut i = 0usize;
    while i < bytes.len() {
        // Skip separators (ASCII non-alphanumerics).
        while bytes.get(i).is_some_and(|&b| !is_word_byte(b)) {
            i += 1;
        }
        // Read one word; an apostrophe between word bytes joins ("what's" -> "whats").
        let mut len = 0usize;
        let mut fits = true;
        while let Some(&b) = bytes.get(i) {
            if is_word_byte(b) {
                if b.is_ascii() && len < WORD_MAX {
                    cur[len] = b.to_ascii_lowercase();
                    len += 1;
                } else {
                    fits = false;
                }
            } else if !(b == b'\'' && bytes.get(i + 1).is_some_and(|&n| is_word_byte(n))) {
                break;
            }
            i += 1;
        }
        if len == 0 && fits {
            continue;
        }
        if fits {
            let w = &cur[..len];
            flags |= word_flags(w) | phrase_flags(prev, w);
            prev = head(w);
        } else {
            prev = Head::None;
        }
    }
    Signals {
        temporal: flags & T != 0,
        comparison: flags & C != 0,
        mechanism: flags & M != 0,
        definition: flags & D != 0,
    }
}

/// ASCII letters and digits, and every non-ASCII byte (so accented and Greek words stay whole).
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || !b.is_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;
    use QueryType::*;

    const CASES: &[(&str, QueryType)] = &[
        // Temporal / recent events.
        (
            "What are the latest advances in NMR-based metabolomics?",
            Temporal,
        ),
        (
            "Recent studies on gut microbiome metabolites and depression",
            Temporal,
        ),
        (
            "current guidelines for newborn screening of inborn errors of metabolism",
            Temporal,
        ),
        (
            "Any news about FDA approval of metabolomics diagnostics?",
            Temporal,
        ),
        ("What metabolomics papers were published in 2025?", Temporal),
        (
            "latest research on the kynurenine pathway in cancer",
            Temporal,
        ),
        ("What's new in lipidomics this year?", Temporal),
        ("Is there an update on the MetaboLights database?", Temporal),
        ("compare the 2024 and 2019 ESC lipid guidelines", Temporal),
        ("Which metabolomics conferences are upcoming?", Temporal),
        // Comparison.
        (
            "What is the difference between LC-MS and GC-MS for metabolite profiling?",
            Comparison,
        ),
        (
            "Compare targeted and untargeted metabolomics approaches",
            Comparison,
        ),
        (
            "NMR vs mass spectrometry for urine metabolomics",
            Comparison,
        ),
        (
            "HILIC versus reversed-phase chromatography for polar metabolites",
            Comparison,
        ),
        ("How do plasma and serum metabolomes differ?", Comparison),
        (
            "Is Orbitrap better than Q-TOF for lipid identification?",
            Comparison,
        ),
        // Mechanism / pathway / relationship.
        ("How does metformin affect the TCA cycle?", Mechanism),
        (
            "What is the mechanism of insulin resistance in skeletal muscle?",
            Mechanism,
        ),
        (
            "Explain the relationship between gut microbiota and bile acid metabolism",
            Mechanism,
        ),
        ("Which pathways are altered in type 2 diabetes?", Mechanism),
        (
            "How is tryptophan metabolized via the kynurenine pathway?",
            Mechanism,
        ),
        ("Role of ceramides in cardiovascular disease", Mechanism),
        ("Does AMPK regulate fatty acid oxidation?", Mechanism),
        ("Why do ketone bodies rise during fasting?", Mechanism),
        (
            "How do branched-chain amino acids interact with mTOR signaling?",
            Mechanism,
        ),
        (
            "TMAO production and its link between diet and atherosclerosis",
            Mechanism,
        ),
        (
            "What is the role of the urea cycle in hyperammonemia?",
            Mechanism,
        ),
        // Definition.
        ("What is metabolomics?", Definition),
        ("Define metabolic flux analysis", Definition),
        ("what's a metabolite?", Definition),
        ("What does HMDB stand for?", Definition),
        ("meaning of the term exposome", Definition),
        ("What are acylcarnitines?", Definition),
        ("Give me an overview of lipidomics", Definition),
        // General.
        (
            "List biomarkers of chronic kidney disease found in urine",
            General,
        ),
        (
            "Metabolite panel for early detection of pancreatic cancer",
            General,
        ),
        (
            "Which sample preparation is recommended for plasma metabolomics",
            General,
        ),
        ("Tell me about β-hydroxybutyrate", General),
        ("", General),
        ("???", General),
        ("biomarkers", General),
    ];

    #[test]
    fn table() {
        let mut failures = Vec::new();
        for (q, want) in CASES {
            let got = classify(q);
            if got != *want {
                failures.push(format!("{q:?}: got {got}, want {want}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        assert!(CASES.len() >= 30);
    }

    #[test]
    fn case_and_punctuation_do_not_matter() {
        assert_eq!(classify("WHAT IS METABOLOMICS"), Definition);
        assert_eq!(classify("pathway?!"), Mechanism);
        assert_eq!(classify("...LATEST..."), Temporal);
    }

    #[test]
    fn words_not_substrings() {
        // "newsletter" is not "news", "pathwayless" is not "pathway", "2050" is not recent.
        assert_eq!(classify("metabolomics newsletter archive"), General);
        assert_eq!(classify("pathwayless"), General);
        assert_eq!(classify("projections for 2050"), General);
        assert_eq!(
            classify("a verylongwordthatexceedsthebuffer pathway"),
            Mechanism
        );
    }

    #[test]
    fn non_ascii_is_safe() {
        assert_eq!(classify("Qu'est-ce que la métabolomique ?"), General);
        assert_eq!(classify("代谢组学 latest"), Temporal);
        assert_eq!(classify("β-oxidation pathway"), Mechanism);
    }

    #[test]
    fn explain_reports_all_signals() {
        let e = classify_explain("What is the latest pathway model?");
        assert_eq!(e.query_type, Temporal);
        assert!(e.signals.temporal && e.signals.mechanism && e.signals.definition);
        assert!(!e.signals.comparison);
    }

    #[test]
    fn parse_round_trips() {
        for t in QueryType::ALL {
            assert_eq!(QueryType::parse(t.as_str()), Some(t));
            assert_eq!(QueryType::parse(&t.as_str().to_uppercase()), Some(t));
        }
        assert_eq!(QueryType::parse("news"), None);
    }
}
