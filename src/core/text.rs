//! Words in text, defined once: the query classifier, the routing rules' keywords and the
//! answer-quality scorer all split text the same way.
//!
//! A word is a maximal run of *word bytes*: ASCII letters and digits, and every non-ASCII byte.
//! Keeping non-ASCII bytes inside words means "β-oxidation" yields the words "β" and
//! "oxidation", "métabolome" stays one word, and a run never starts or ends inside a UTF-8
//! sequence — so every word is a `&str` slice of the text, with no copying and no allocation.
//! Case folding is ASCII-only; callers that need Unicode lower-casing (rule keywords on
//! non-ASCII queries) do it themselves, once.

/// ASCII letters and digits, and every non-ASCII byte.
#[inline]
pub fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || !b.is_ascii()
}

/// One word and where it starts in the text (byte offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Word<'a> {
    pub start: usize,
    pub text: &'a str,
}

impl Word<'_> {
    /// The byte offset just past the word.
    pub fn end(&self) -> usize {
        self.start + self.text.len()
    }
}

/// The words of `text`, in order.
pub fn words(text: &str) -> Words<'_> {
    Words { text, pos: 0 }
}

/// Iterator over the words of a text; see [`words`].
#[derive(Debug, Clone)]
pub struct Words<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Iterator for Words<'a> {
    type Item = Word<'a>;

    fn next(&mut self) -> Option<Word<'a>> {
        let bytes = self.text.as_bytes();
        let rest = bytes.get(self.pos..)?;
        let start = self.pos + rest.iter().position(|&b| is_word_byte(b))?;
        let len = bytes
            .get(start..)
            .map_or(0, |r| r.iter().take_while(|&&b| is_word_byte(b)).count());
        self.pos = start + len;
        // Runs start and end next to ASCII bytes (or the text's ends), so these are char
        // boundaries; `get` keeps it panic-free regardless.
        self.text
            .get(start..start + len)
            .map(|text| Word { start, text })
    }
}

/// Whether `needle` occurs in `hay` as a whole word (or phrase): not glued to word bytes on a
/// side where the needle itself starts/ends with a word byte, so `news` does not match
/// "newsletter" but `c++` matches in "x c++ y". `needle` must already be lower-case; with
/// `fold`, `hay` is compared ASCII-case-insensitively.
pub fn contains_word(hay: &[u8], needle: &[u8], fold: bool) -> bool {
    let (Some(&first), Some(&last)) = (needle.first(), needle.last()) else {
        return false;
    };
    let Some(last_start) = hay.len().checked_sub(needle.len()) else {
        return false;
    };
    let check_left = is_word_byte(first);
    let check_right = is_word_byte(last);
    let lower = |b: u8| if fold { b.to_ascii_lowercase() } else { b };
    let mut prev_is_word = false;
    for (start, &b) in hay.iter().enumerate().take(last_start + 1) {
        let boundary_ok = !check_left || !prev_is_word;
        prev_is_word = is_word_byte(b);
        if !boundary_ok || lower(b) != first {
            continue;
        }
        let end = start + needle.len();
        let eq = hay.get(start..end).is_some_and(|window| {
            if fold {
                window.eq_ignore_ascii_case(needle)
            } else {
                window == needle
            }
        });
        if eq && (!check_right || hay.get(end).is_none_or(|&n| !is_word_byte(n))) {
            return true;
        }
    }
    false
}

/// ASCII-case-insensitive substring test (`needle` empty: true).
pub fn contains_ignore_ascii_case(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &str) -> Vec<&str> {
        words(s).map(|w| w.text).collect()
    }

    #[test]
    fn words_are_runs_of_word_bytes() {
        assert_eq!(
            texts("What's new, β-oxidation?"),
            ["What", "s", "new", "β", "oxidation"]
        );
        assert_eq!(texts("  métabolome 2025 "), ["métabolome", "2025"]);
        assert_eq!(texts("代谢组学 latest"), ["代谢组学", "latest"]);
        assert!(texts("?!- ''").is_empty());
        let w: Vec<Word> = words("ab  cd").collect();
        assert_eq!((w[1].start, w[1].end()), (4, 6));
    }

    #[test]
    fn whole_word_search() {
        assert!(contains_word(b"any NEWS today", b"news", true));
        assert!(!contains_word(b"newsletter", b"news", true));
        assert!(contains_word(b"x c++ y", b"c++", true));
        assert!(!contains_word(b"ab", b"abc", true));
        assert!(contains_word(
            b"the current guidelines",
            b"current guidelines",
            true
        ));
        assert!(!contains_word(
            b"recurrent guidelines",
            b"current guidelines",
            true
        ));
        assert!(contains_ignore_ascii_case("Mobile-Beta", "BETA"));
        assert!(!contains_ignore_ascii_case("I can", "i cannot"));
    }
}
