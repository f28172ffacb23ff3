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

/// Every word the classifier knows: its own signals, and which phrase it may start.
/// Looked up by binary search on the word packed into a `u128` (see [`pack`]), so a lookup is a
/// handful of integer comparisons instead of a string comparison per table entry.
const WORDS: &[(&[u8], u8, Head)] = &[
    // Temporal.
    (b"latest", T, Head::None),
    (b"recent", T, Head::None),
    (b"recently", T, Head::None),
    (b"newest", T, Head::None),
    (b"current", T, Head::None),
    (b"currently", T, Head::None),
    (b"today", T, Head::None),
    (b"yesterday", T, Head::None),
    (b"tonight", T, Head::None),
    (b"news", T, Head::None),
    (b"update", T, Head::None),
    (b"updates", T, Head::None),
    (b"updated", T, Head::None),
    (b"upcoming", T, Head::None),
    (b"ongoing", T, Head::None),
    (b"announced", T, Head::None),
    (b"breaking", T, Head::None),
    (b"nowadays", T, Head::None),
    // Comparison.
    (b"compare", C, Head::None),
    (b"compared", C, Head::None),
    (b"compares", C, Head::None),
    (b"comparing", C, Head::None),
    (b"comparison", C, Head::None),
    (b"comparisons", C, Head::None),
    (b"vs", C, Head::None),
    (b"versus", C, Head::None),
    (b"differ", C, Head::None),
    (b"differs", C, Head::None),
    (b"contrast", C, Head::None),
    (b"similarities", C, Head::None),
    (b"tradeoffs", C, Head::None),
    (b"advantages", C, Head::None),
    (b"disadvantages", C, Head::None),
    // Mechanism / pathway / relationship.
    (b"mechanism", M, Head::None),
    (b"mechanisms", M, Head::None),
    (b"mechanistic", M, Head::None),
    (b"pathway", M, Head::None),
    (b"pathways", M, Head::None),
    (b"regulate", M, Head::None),
    (b"regulates", M, Head::None),
    (b"regulated", M, Head::None),
    (b"regulating", M, Head::None),
    (b"regulation", M, Head::None),
    (b"upregulate", M, Head::None),
    (b"upregulates", M, Head::None),
    (b"upregulation", M, Head::None),
    (b"downregulate", M, Head::None),
    (b"downregulates", M, Head::None),
    (b"downregulation", M, Head::None),
    (b"interact", M, Head::None),
    (b"interacts", M, Head::None),
    (b"interaction", M, Head::None),
    (b"interactions", M, Head::None),
    (b"mediate", M, Head::None),
    (b"mediates", M, Head::None),
    (b"mediated", M, Head::None),
    (b"signaling", M, Head::None),
    (b"signalling", M, Head::None),
    (b"cascade", M, Head::None),
    (b"inhibit", M, Head::None),
    (b"inhibits", M, Head::None),
    (b"inhibition", M, Head::None),
    (b"activate", M, Head::None),
    (b"activates", M, Head::None),
    (b"activation", M, Head::None),
    (b"catalyze", M, Head::None),
    (b"catalyzes", M, Head::None),
    (b"catalyse", M, Head::None),
    (b"catalyses", M, Head::None),
    (b"biosynthesis", M, Head::None),
    (b"metabolized", M, Head::None),
    (b"metabolised", M, Head::None),
    (b"crosstalk", M, Head::None),
    (b"modulate", M, Head::None),
    (b"modulates", M, Head::None),
    (b"affect", M, Head::None),
    (b"affects", M, Head::None),
    (b"influence", M, Head::None),
    (b"influences", M, Head::None),
    (b"why", M, Head::None),
    // Definition.
    (b"define", D, Head::None),
    (b"definition", D, Head::None),
    (b"whats", D, Head::Whats),
    (b"meaning", D, Head::Meaning),
    (b"glossary", D, Head::None),
    // Phrase heads with no signal of their own.
    (b"this", 0, Head::ThisLastPast),
    (b"last", 0, Head::ThisLastPast),
    (b"past", 0, Head::ThisLastPast),
    (b"as", 0, Head::As),
    (b"s", 0, Head::Whats),
    (b"right", 0, Head::Right),
    (b"so", 0, Head::So),
    (b"difference", 0, Head::DifferenceBetween),
    (b"differences", 0, Head::DifferenceBetween),
    (b"distinguish", 0, Head::DifferenceBetween),
    (b"better", 0, Head::Than),
    (b"worse", 0, Head::Than),
    (b"faster", 0, Head::Than),
    (b"more", 0, Head::Than),
    (b"less", 0, Head::Than),
    (b"pros", 0, Head::Pros),
    (b"how", 0, Head::How),
    (b"relationship", 0, Head::RelationBetween),
    (b"relation", 0, Head::RelationBetween),
    (b"link", 0, Head::RelationBetween),
    (b"association", 0, Head::RelationBetween),
    (b"connection", 0, Head::RelationBetween),
    (b"role", 0, Head::Role),
    (b"lead", 0, Head::LeadTo),
    (b"leads", 0, Head::LeadTo),
    (b"contribute", 0, Head::LeadTo),
    (b"contributes", 0, Head::LeadTo),
    (b"what", 0, Head::What),
    (b"stand", 0, Head::Stand),
    (b"stands", 0, Head::Stand),
    (b"meant", 0, Head::Meant),
    (b"overview", 0, Head::Overview),
    (b"introduction", 0, Head::Introduction),
];

/// Packs a word of at most 16 bytes into an integer, big-endian, zero-padded. Words never
/// contain a zero byte, so distinct words give distinct integers.
const fn pack(w: &[u8]) -> u128 {
    let mut x = 0u128;
    let mut i = 0;
    while i < WORD_MAX {
        x <<= 8;
        if i < w.len() {
            x |= w[i] as u128;
        }
        i += 1;
    }
    x
}

/// Open-addressing hash table over [`WORDS`], built at compile time: a lookup is usually one
/// hash, one load and one compare (load factor about 1/4, linear probing).
const SLOTS: usize = 512;

const fn slot(key: u128) -> usize {
    let x = (key as u64) ^ ((key >> 64) as u64);
    // Fibonacci hashing: the top 9 bits of the product index 512 slots.
    (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 55) as usize
}

const KEYS_AND_VALUES: ([u128; SLOTS], [(u8, Head); SLOTS]) = {
    let mut keys = [0u128; SLOTS];
    let mut vals = [(0u8, Head::None); SLOTS];
    let mut i = 0;
    while i < WORDS.len() {
        let key = pack(WORDS[i].0);
        let mut j = slot(key);
        while keys[j] != 0 {
            // A duplicate word would silently shadow another entry: refuse to compile.
            assert!(keys[j] != key, "duplicate word in WORDS");
            j = (j + 1) % SLOTS;
        }
        keys[j] = key;
        vals[j] = (WORDS[i].1, WORDS[i].2);
        i += 1;
    }
    (keys, vals)
};
const KEYS: [u128; SLOTS] = KEYS_AND_VALUES.0;
const VALUES: [(u8, Head); SLOTS] = KEYS_AND_VALUES.1;

/// A word's own signals and the phrase it may start, from its packed form and bytes.
fn lookup_packed(key: u128, w: &[u8]) -> (u8, Head) {
    // A four-digit year from 2000 to 2039: asking about a recent year needs fresh data.
    if matches!(w, [b'2', b'0', b'0'..=b'3', b'0'..=b'9']) {
        return (T, Head::None);
    }
    let start = slot(key);
    for probe in 0..SLOTS {
        let j = (start + probe) % SLOTS;
        match KEYS.get(j) {
            Some(&k) if k == key => return VALUES.get(j).copied().unwrap_or((0, Head::None)),
            Some(&0) | None => break,
            Some(_) => {}
        }
    }
    (0, Head::None)
}

#[cfg(test)]
fn lookup(w: &[u8]) -> (u8, Head) {
    lookup_packed(pack(w), w)
}

/// First words of the two-word phrases. Remembering which one the previous word was (instead
/// of the word itself) keeps the phrase check to one small match on the current word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
        let mut packed = 0u128;
        let mut fits = true;
        while let Some(&b) = bytes.get(i) {
            if is_word_byte(b) {
                if b.is_ascii() && len < WORD_MAX {
                    let lower = b.to_ascii_lowercase();
                    cur[len] = lower;
                    packed = (packed << 8) | u128::from(lower);
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
            // Left-align to match `pack` (len >= 1 here, so the shift is below 128).
            let key = packed << (8 * (WORD_MAX - len));
            let (own, next) = lookup_packed(key, w);
            flags |= own | phrase_flags(prev, w);
            prev = next;
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
    fn word_table_is_complete() {
        assert!(WORDS
            .iter()
            .all(|(w, _, _)| !w.is_empty() && w.len() <= WORD_MAX));
        assert_eq!(KEYS.iter().filter(|k| **k != 0).count(), WORDS.len());
        for (w, f, h) in WORDS {
            assert_eq!(lookup(w), (*f, *h), "{}", String::from_utf8_lossy(w));
        }
        assert_eq!(lookup(b"metabolite"), (0, Head::None));
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
