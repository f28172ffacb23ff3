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

/// Packs a word of at most 16 bytes into an integer, right-aligned: `pack(b"ab") == 0x6162`.
/// Words never contain a zero byte, so distinct words give distinct integers. The scan builds
/// the same integer from one 16-byte load per word ([`pack_run`]), not byte by byte: a
/// byte-wise `x << 8 | b` on a `u128` is a loop-carried double-word shift costing ~5 cycles a
/// byte, more than everything else in the pass.
pub(crate) const fn pack(w: &[u8]) -> u128 {
    let mut x = 0u128;
    let mut i = 0;
    while i < w.len() && i < WORD_MAX {
        x = (x << 8) | w[i] as u128;
        i += 1;
    }
    x
}

/// Second words of the two-word phrases, and the phrase heads each one completes.
const TAILS: &[(&[u8], &[Head])] = &[
    (b"year", &[Head::ThisLastPast]),
    (b"month", &[Head::ThisLastPast]),
    (b"week", &[Head::ThisLastPast]),
    (b"decade", &[Head::ThisLastPast]),
    (
        b"of",
        &[Head::As, Head::Role, Head::Meaning, Head::Overview],
    ),
    (b"new", &[Head::Whats]),
    (b"now", &[Head::Right]),
    (b"far", &[Head::So]),
    (
        b"between",
        &[Head::DifferenceBetween, Head::RelationBetween],
    ),
    (b"than", &[Head::Than]),
    (b"and", &[Head::Pros]),
    (b"does", &[Head::How]),
    (b"do", &[Head::How]),
    (b"is", &[Head::How, Head::What]),
    (b"are", &[Head::How, Head::What]),
    (b"can", &[Head::How]),
    (b"s", &[Head::What]),
    (b"to", &[Head::LeadTo, Head::Introduction]),
    (b"for", &[Head::Stand]),
    (b"by", &[Head::Meant]),
];

/// The signal a two-word phrase gives, by its first word's head.
const fn phrase_signal(h: Head) -> u8 {
    match h {
        Head::None => 0,
        Head::ThisLastPast | Head::As | Head::Whats | Head::Right | Head::So => T,
        Head::DifferenceBetween | Head::Than | Head::Pros => C,
        Head::How | Head::RelationBetween | Head::Role | Head::LeadTo => M,
        Head::What
        | Head::Meaning
        | Head::Stand
        | Head::Meant
        | Head::Overview
        | Head::Introduction => D,
    }
}

/// What the table knows about a word: its own signals, the phrase it may start, and the phrase
/// heads it completes (bit `h` for head `h`), so a phrase check is one AND, not a string match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    own: u8,
    head: Head,
    completes: u32,
}

const MISS: Entry = Entry {
    own: 0,
    head: Head::None,
    completes: 0,
};

/// Open-addressing hash table over [`WORDS`] and [`TAILS`], built at compile time: a lookup is
/// usually one hash, one load and one compare (load factor about 1/4, linear probing).
const SLOTS: usize = 512;

const fn slot(key: u128) -> usize {
    let x = (key as u64) ^ ((key >> 64) as u64);
    // Fibonacci hashing: the top 9 bits of the product index 512 slots.
    (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 55) as usize
}

/// The slot holding `key`, or the empty slot where it would go.
const fn find_slot(keys: &[u128; SLOTS], key: u128) -> usize {
    let mut j = slot(key);
    while keys[j] != 0 && keys[j] != key {
        j = (j + 1) % SLOTS;
    }
    j
}

const KEYS_AND_VALUES: ([u128; SLOTS], [Entry; SLOTS]) = {
    let mut keys = [0u128; SLOTS];
    let mut vals = [MISS; SLOTS];
    let mut i = 0;
    while i < WORDS.len() {
        let key = pack(WORDS[i].0);
        let j = find_slot(&keys, key);
        // A duplicate word would silently shadow another entry: refuse to compile.
        assert!(keys[j] == 0, "duplicate word in WORDS");
        keys[j] = key;
        vals[j] = Entry {
            own: WORDS[i].1,
            head: WORDS[i].2,
            completes: 0,
        };
        i += 1;
    }
    let mut i = 0;
    while i < TAILS.len() {
        let key = pack(TAILS[i].0);
        let j = find_slot(&keys, key);
        assert!(vals[j].completes == 0, "duplicate word in TAILS");
        keys[j] = key;
        let heads = TAILS[i].1;
        let mut k = 0;
        while k < heads.len() {
            vals[j].completes |= 1 << (heads[k] as u32);
            k += 1;
        }
        i += 1;
    }
    (keys, vals)
};
const KEYS: [u128; SLOTS] = KEYS_AND_VALUES.0;
const VALUES: [Entry; SLOTS] = KEYS_AND_VALUES.1;

/// The table entry of a word, from its packed form and length.
#[inline(always)]
fn lookup(key: u128, len: usize) -> Entry {
    // A four-digit year from 2000 to 2039: asking about a recent year needs fresh data. Years
    // are not in the table (its words are letters), so this only adds the signal; computed
    // without a branch.
    let [y0, y1, y2, y3] = (key as u32).to_be_bytes();
    let year = len == 4
        && (key >> 32) == 0
        && y0 == b'2'
        && y1 == b'0'
        && (b'0'..=b'3').contains(&y2)
        && y3.is_ascii_digit();
    let mut e = probe(key);
    e.own |= T * u8::from(year);
    e
}

#[inline(always)]
fn probe(key: u128) -> Entry {
    let mut j = slot(key);
    for _ in 0..SLOTS {
        match KEYS.get(j) {
            Some(&k) if k == key => return VALUES.get(j).copied().unwrap_or(MISS),
            Some(&0) | None => return MISS,
            Some(_) => j = (j + 1) & (SLOTS - 1),
        }
    }
    MISS
}

/// First words of the two-word phrases. Remembering which one the previous word was (instead
/// of the word itself) keeps the phrase check to one bit test on the current word's entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
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

/// [`pack`] of the lower-cased `n`-byte run of ASCII letters and digits at `start`
/// (`1 <= n <= 16`): one big-endian 16-byte load shifted right, and `| 0x20` per byte, which
/// lower-cases letters and leaves digits alone. Near the end of the text the load is padded.
#[inline(always)]
fn pack_run(bytes: &[u8], start: usize, n: usize) -> u128 {
    let drop = 8 * (WORD_MAX - n.clamp(1, WORD_MAX)) as u32;
    let window = match bytes.get(start..).and_then(<[u8]>::first_chunk::<WORD_MAX>) {
        Some(w) => u128::from_be_bytes(*w),
        None => {
            let mut buf = [0u8; WORD_MAX];
            let tail = bytes.get(start..).unwrap_or_default();
            let n = tail.len().min(WORD_MAX);
            if let (Some(dst), Some(src)) = (buf.get_mut(..n), tail.get(..n)) {
                dst.copy_from_slice(src);
            }
            u128::from_be_bytes(buf)
        }
    };
    (window | 0x2020_2020_2020_2020_2020_2020_2020_2020) >> drop
}

/// ASCII letters and digits (a table load is cheaper than the two range checks).
const IS_ALNUM: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    t
};

/// A Bloom filter over a query's words as rules see them — maximal runs of ASCII letters and
/// digits, lower-cased, of 1 to 16 bytes — filled during the classification pass (256 bits, two
/// bits per word: about 1 % false positives at a dozen words). A rule keyword that is one such
/// word and whose bits are not both set is certainly absent, so most keyword checks never scan
/// the query again; a positive is confirmed by the exact whole-word search.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct WordFilter([u64; 4]);

impl WordFilter {
    /// The two bits of a packed word (see [`pack`]).
    #[inline(always)]
    pub(crate) fn bits(key: u128) -> (u8, u8) {
        let x = (key as u64) ^ ((key >> 64) as u64).rotate_left(31);
        let m = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        ((m >> 56) as u8, (m >> 48) as u8)
    }

    #[inline(always)]
    fn insert(&mut self, key: u128) {
        let (a, b) = Self::bits(key);
        for bit in [a, b] {
            if let Some(w) = self.0.get_mut(usize::from(bit >> 6)) {
                *w |= 1 << (bit & 63);
            }
        }
    }

    /// `false` only if no word with these bits was inserted.
    #[inline(always)]
    pub(crate) fn may_contain(&self, (a, b): (u8, u8)) -> bool {
        let has = |bit: u8| {
            self.0
                .get(usize::from(bit >> 6))
                .is_some_and(|w| w & (1 << (bit & 63)) != 0)
        };
        has(a) && has(b)
    }
}

/// What one pass over a query gives the decision: its signals, whether it is pure ASCII, and
/// (for ASCII queries, when asked for) the filter of its words for rule keywords.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scan {
    pub signals: Signals,
    pub ascii: bool,
    pub words: WordFilter,
}

/// Classifies `query` and, if `words`, fills the keyword filter, in one pass.
pub(crate) fn scan(query: &str, words: bool) -> Scan {
    if words {
        scan_with::<true>(query)
    } else {
        scan_with::<false>(query)
    }
}

fn signals(query: &str) -> Signals {
    scan_with::<false>(query).signals
}

/// The state of the pass: the current run of word bytes, and the classifier's current word
/// (runs joined by apostrophes: "what's" is the word "whats" but the runs "what" and "s").
struct Scanner<const WORDS: bool> {
    flags: u8,
    prev: Head,
    filter: WordFilter,
    word: u128,
    word_len: usize,
    word_fits: bool,
    run_len: usize,
    run_ascii: bool,
}

impl<const WORDS: bool> Scanner<WORDS> {
    /// Ends the run of `self.run_len` word bytes that stops before `end`.
    #[inline(always)]
    fn end_run(&mut self, bytes: &[u8], end: usize) {
        if self.run_ascii && self.run_len <= WORD_MAX {
            let run = pack_run(bytes, end - self.run_len, self.run_len);
            if WORDS {
                self.filter.insert(run);
            }
            if self.word_fits && self.word_len + self.run_len <= WORD_MAX {
                // word_len >= 1 leaves run_len <= 15, so the shift stays below 128.
                self.word = if self.word_len == 0 {
                    run
                } else {
                    (self.word << (8 * self.run_len)) | run
                };
                self.word_len += self.run_len;
            } else {
                self.word_fits = false;
            }
        } else {
            self.word_fits = false;
        }
        self.run_len = 0;
        self.run_ascii = true;
    }

    #[inline(always)]
    fn end_word(&mut self) {
        if self.word_fits {
            let e = lookup(self.word, self.word_len);
            let completed = ((e.completes >> (self.prev as u32)) & 1) as u8;
            self.flags |= e.own | (phrase_signal(self.prev) & completed.wrapping_neg());
            self.prev = e.head;
        } else {
            self.prev = Head::None;
        }
        self.word = 0;
        self.word_len = 0;
        self.word_fits = true;
    }
}

/// The pass itself. ASCII text without apostrophes — most queries — takes the block path: 64
/// bytes at a time, a bitmask of the letters and digits is computed with word-wide arithmetic
/// (no branch per byte), and words are walked with bit tricks, so the work is per word, not per
/// byte, and word boundaries do not cost a branch misprediction each. Anything else (a
/// non-ASCII byte, an apostrophe, a word of 64+ bytes) hands over to the byte-wise path at the
/// start of that block, which is always a word boundary.
#[inline(always)]
fn scan_with<const WORDS: bool>(query: &str) -> Scan {
    let bytes = query.as_bytes();
    let mut s = Scanner::<WORDS> {
        flags: 0,
        prev: Head::None,
        filter: WordFilter::default(),
        word: 0,
        word_len: 0,
        word_fits: true,
        run_len: 0,
        run_ascii: true,
    };
    let mut base = 0usize;
    let ascii = loop {
        let Some(rest) = bytes.get(base..).filter(|r| !r.is_empty()) else {
            break true;
        };
        let Some(mut words) = alnum_mask(rest) else {
            break s.bytewise(bytes, base);
        };
        let more = rest.len() > BLOCK;
        let mut next = base + BLOCK;
        if more && words >> (BLOCK - 1) != 0 {
            // The last word may continue in the next block: leave it to that block.
            let from = BLOCK - words.leading_ones() as usize;
            if from == 0 {
                break s.bytewise(bytes, base);
            }
            words &= (1u64 << from) - 1;
            next = base + from;
        }
        while words != 0 {
            let start = words.trailing_zeros() as usize;
            let len = (!(words >> start)).trailing_zeros() as usize;
            // Clear the lowest run of ones.
            words &= words.wrapping_add(words & words.wrapping_neg());
            if len <= WORD_MAX {
                let key = pack_run(bytes, base + start, len);
                if WORDS {
                    s.filter.insert(key);
                }
                s.word = key;
                s.word_len = len;
            } else {
                s.word_fits = false;
            }
            s.end_word();
        }
        base = next;
    };
    Scan {
        signals: Signals {
            temporal: s.flags & T != 0,
            comparison: s.flags & C != 0,
            mechanism: s.flags & M != 0,
            definition: s.flags & D != 0,
        },
        ascii,
        words: s.filter,
    }
}

/// Bytes per block of the block path (one bit each in a `u64`).
const BLOCK: usize = 64;

/// Bit `j` set iff `bytes[j]` (`j < 64`) is an ASCII letter or digit; `None` if those bytes hold
/// a non-ASCII byte or an apostrophe (the byte-wise path handles those). Bytes past the end
/// count as separators. Eight bytes at a time:
/// for bytes below 0x80, `(x + (0x80 - lo)) & !(x + (0x7f - hi)) & 0x80` flags `lo <= x <= hi`
/// without carries between bytes, and a multiply gathers the eight flags into one byte.
#[inline(always)]
fn alnum_mask(bytes: &[u8]) -> Option<u64> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x80 * ONES;
    let in_range = |x: u64, lo: u64, hi: u64| {
        (x.wrapping_add((0x80 - lo) * ONES) & !x.wrapping_add((0x7f - hi) * ONES)) & HIGH
    };
    let mut mask = 0u64;
    let mut odd = 0u64;
    for (k, chunk) in bytes.chunks(8).take(BLOCK / 8).enumerate() {
        let x = match chunk.first_chunk::<8>() {
            Some(c) => u64::from_le_bytes(*c),
            // The last, short chunk: zero-padded.
            None => chunk
                .iter()
                .rev()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
        };
        // Any byte >= 0x80, or any apostrophe (a zero byte in x ^ '\'').
        let q = x ^ (u64::from(b'\'') * ONES);
        odd |= x | (q.wrapping_sub(ONES) & !q);
        let hits = in_range(x, 0x30, 0x39) | in_range(x | (0x20 * ONES), 0x61, 0x7a);
        let bits = ((hits >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56;
        mask |= bits << (8 * k);
    }
    (odd & HIGH == 0).then_some(mask)
}

impl<const WORDS: bool> Scanner<WORDS> {
    /// The byte-wise path from `start` (a word boundary) to the end; returns whether the bytes
    /// it read were all ASCII.
    fn bytewise(&mut self, bytes: &[u8], start: usize) -> bool {
        let mut ascii = true;
        let mut i = start;
        while let Some(&b) = bytes.get(i) {
            i += 1;
            if IS_ALNUM.get(usize::from(b)).copied().unwrap_or(false) {
                self.run_len += 1;
                continue;
            }
            if !b.is_ascii() {
                // Non-ASCII bytes stay inside words, which then match no table entry.
                ascii = false;
                self.run_ascii = false;
                self.run_len += 1;
                continue;
            }
            if self.run_len == 0 {
                continue;
            }
            self.end_run(bytes, i - 1);
            // An apostrophe between word bytes joins the classifier's word ("what's" -> "whats").
            if b == b'\'' && bytes.get(i).is_some_and(|&n| is_word_byte(n)) {
                continue;
            }
            self.end_word();
        }
        if self.run_len != 0 {
            self.end_run(bytes, bytes.len());
            self.end_word();
        }
        ascii
    }
}

/// ASCII letters and digits, and every non-ASCII byte (so accented and Greek words stay whole).
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || !b.is_ascii()
}

/// The first implementation (a word buffer, a left-aligned packed key and string matches for
/// phrases), kept as the reference the one-pass scan is checked against.
#[cfg(test)]
mod reference {
    #![allow(clippy::all)]
    use super::{Head, Signals, C, D, M, T, WORDS, WORD_MAX};

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

    pub(super) fn lookup(w: &[u8]) -> (u8, Head) {
        lookup_packed(pack(w), w)
    }

    /// Signals of a two-word phrase (previous word's head, this word).
    pub(super) fn phrase_flags(h: Head, w: &[u8]) -> u8 {
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

    pub(super) fn signals(query: &str) -> Signals {
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
        let mut distinct: Vec<&[u8]> = WORDS.iter().map(|(w, _, _)| *w).collect();
        distinct.extend(TAILS.iter().map(|(w, _)| *w));
        distinct.sort();
        distinct.dedup();
        assert_eq!(KEYS.iter().filter(|k| **k != 0).count(), distinct.len());
        for (w, f, h) in WORDS {
            let e = lookup(pack(w), w.len());
            assert_eq!((e.own, e.head), (*f, *h), "{}", String::from_utf8_lossy(w));
            assert_eq!(reference::lookup(w), (*f, *h));
        }
        assert_eq!(lookup(pack(b"metabolite"), 10), MISS);
    }

    /// Every (head, word) pair gives the same phrase signal as the reference's string matches.
    #[test]
    fn phrase_bits_match_reference() {
        let heads: Vec<Head> = WORDS.iter().map(|(_, _, h)| *h).collect();
        let mut words: Vec<&[u8]> = WORDS.iter().map(|(w, _, _)| *w).collect();
        words.extend(TAILS.iter().map(|(w, _)| *w));
        words.extend([&b"zebra"[..], b"2025", b"x"]);
        for h in heads {
            for w in &words {
                let e = lookup(pack(w), w.len());
                let got = if e.completes & (1 << (h as u32)) != 0 {
                    phrase_signal(h)
                } else {
                    0
                };
                assert_eq!(got, reference::phrase_flags(h, w), "{h:?} {w:?}");
            }
        }
    }

    /// The one-pass scan agrees with the reference on queries built from table words, phrase
    /// tails, years, apostrophes, non-ASCII words, long words and assorted separators.
    #[test]
    fn scan_matches_reference_on_generated_queries() {
        let mut pieces: Vec<String> = WORDS
            .iter()
            .map(|(w, _, _)| String::from_utf8_lossy(w).into_owned())
            .collect();
        pieces.extend(
            TAILS
                .iter()
                .map(|(w, _)| String::from_utf8_lossy(w).into_owned()),
        );
        pieces.extend(
            [
                "2025",
                "2040",
                "1999",
                "β",
                "métabolome",
                "代谢",
                "What's",
                "what'",
                "'s",
                "s'",
                "LATEST",
                "PathWay",
                "abcdefghijklmnop",
                "abcdefghijklmnopq",
                "a'b'c",
                "x",
                "9",
                "don't",
                "doesn't",
                "whats",
                "''",
                "-",
                "?",
                "é",
                "glossaryglossary",
            ]
            .map(str::to_string),
        );
        let seps = [" ", "  ", "-", "'", ", ", "?", "\n", "/", "é", "’", ""];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        for _ in 0..20_000 {
            let mut q = String::new();
            for _ in 0..next(9) {
                q.push_str(&pieces[next(pieces.len())]);
                q.push_str(seps[next(seps.len())]);
            }
            assert_eq!(signals(&q), reference::signals(&q), "{q:?}");
        }
        for (q, _) in CASES {
            assert_eq!(signals(q), reference::signals(q), "{q:?}");
        }
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
