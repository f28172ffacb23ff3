//! A hand-written scanner for Perplexity's usual streamed event, tried before serde's reader.
//!
//! Why: the Worker is built at opt-level "z", and serde_json's generic parser, instantiated in
//! this crate, is built with it: reading the first event of a stream through
//! [`super::perplexity_event`]'s serde visitors took ~33 µs in workerd (in-worker timestamps,
//! docs/performance.md "Seventh round"), on the way to the client's first answer text. This
//! scanner walks the same bytes once with a handful of small loops.
//!
//! It is exact by construction, in the way the serde reader is: it reads a strict subset of
//! JSON — unescaped keys, numbers without exponents and of at most 18 digits, strings whose
//! `\u` escapes are whole characters or whole surrogate pairs, nesting at most 100 deep — and
//! within it the members the serde reader reads, with the same types, the same `null`s and the
//! same refusal of a member read twice; every value it skips is checked as that reader checks
//! it. Anything else (`None`) goes to the serde reader, which decides as before.
//! `tests/native/wire_upstreams.rs` compares the readers over usual, escaped and odd events.

use super::perplexity_event::{Event, Raw, Seen};
use super::perplexity_reply::{non_blank_cow, Source};
use std::borrow::Cow;

/// The usual event `data` holds, or `None` when the serde reader must decide.
/// `prev`: the last event's `citations` and `search_results` ([`Raw`]); a member whose value
/// is the same text is stepped over unread ([`Seen::Same`]).
pub(super) fn scan<'a>(data: &'a str, prev: &[Raw; 2]) -> Option<Event<'a>> {
    let mut s = Scan {
        src: data,
        b: data.as_bytes(),
        i: 0,
        depth: 0,
    };
    let e = s.event(prev)?;
    s.ws();
    (s.i == s.b.len()).then_some(e)
}

/// Deeper than this, the serde reader decides (serde_json's own limit is 128).
const MAX_DEPTH: u32 = 100;

/// Digits a number may have here (an `i64`/`u64`/`f64` reads them all the same way).
const MAX_DIGITS: usize = 18;

struct Scan<'a> {
    src: &'a str,
    b: &'a [u8],
    i: usize,
    depth: u32,
}

type Pair<'a> = (Option<Cow<'a, str>>, Option<Cow<'a, str>>);

impl<'a> Scan<'a> {
    fn event(&mut self, prev: &[Raw; 2]) -> Option<Event<'a>> {
        let mut e = Event::default();
        let mut seen = [Seen::Absent, Seen::Absent];
        self.object(|key, s| {
            match key {
                // An error member that is not null is the general reader's to report.
                "error" => s.null()?,
                "choices" => (e.text, e.finish) = s.choices()?,
                "citations" => seen[0] = s.member(&prev[0], true, &mut e.citations)?,
                "search_results" => seen[1] = s.member(&prev[1], false, &mut e.search_results)?,
                _ => return Some(false),
            }
            Some(true)
        })?;
        e.seen = Some(seen);
        Some(e)
    }

    /// A sources member's value: stepped over when it is `prev`'s text byte for byte (a JSON
    /// array or `null` ends where its text ends, so the same text is the same value, already
    /// checked when it was read), else read into `out`.
    fn member(
        &mut self,
        prev: &Raw,
        strings_too: bool,
        out: &mut Vec<Source<'a>>,
    ) -> Option<Seen<'a>> {
        if let Raw::Text(t) = prev {
            if self
                .b
                .get(self.i..)
                .is_some_and(|r| r.starts_with(t.as_bytes()))
            {
                self.i += t.len();
                return Some(Seen::Same);
            }
        }
        let start = self.i;
        *out = self.sources(strings_too)?;
        Some(Seen::Read(self.src.get(start..self.i)?))
    }

    /// `choices`: an array whose first entry (if any) is a choice object; the others checked.
    fn choices(&mut self) -> Option<Pair<'a>> {
        let mut first = (None, None);
        self.array(|s, i| {
            if i == 0 {
                first = s.choice()?;
                Some(())
            } else {
                s.skip()
            }
        })?;
        Some(first)
    }

    /// A choice object: `delta.content` and `finish_reason`.
    fn choice(&mut self) -> Option<Pair<'a>> {
        let (mut text, mut finish) = (None, None);
        self.object(|key, s| {
            match key {
                "delta" => text = s.delta()?,
                "finish_reason" => finish = s.string_or_null()?,
                _ => return Some(false),
            }
            Some(true)
        })?;
        Some((text, finish))
    }

    /// A delta object or `null`, as its `content`.
    fn delta(&mut self) -> Option<Option<Cow<'a, str>>> {
        if self.peek()? == b'n' {
            return self.null().map(|()| None);
        }
        let mut content = None;
        self.object(|key, s| {
            if key != "content" {
                return Some(false);
            }
            content = s.string_or_null()?;
            Some(true)
        })?;
        Some(content)
    }

    /// `citations` (URL strings or source objects) or `search_results` (source objects), or
    /// `null` (none).
    fn sources(&mut self, strings_too: bool) -> Option<Vec<Source<'a>>> {
        if self.peek()? == b'n' {
            return self.null().map(|()| Vec::new());
        }
        let mut out = Vec::new();
        self.array(|s, _| {
            let source = match s.peek()? {
                b'"' if strings_too => Source {
                    url: non_blank_cow(Some(s.string()?)),
                    title: None,
                },
                b'{' => s.source_object()?,
                _ => return None,
            };
            out.push(source);
            Some(())
        })?;
        Some(out)
    }

    /// An object with `url` and `title` (each a string or `null`), blank ones `None`.
    fn source_object(&mut self) -> Option<Source<'a>> {
        let (mut url, mut title) = (None, None);
        self.object(|key, s| {
            match key {
                "url" => url = s.string_or_null()?,
                "title" => title = s.string_or_null()?,
                _ => return Some(false),
            }
            Some(true)
        })?;
        Some(Source {
            url: non_blank_cow(url),
            title: non_blank_cow(title),
        })
    }

    /// Skips whitespace as JSON has it.
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    /// The next byte after whitespace (not taken).
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    /// Takes `c` after whitespace.
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    /// An object, member by member: `member(key, scan)` reads the value of a member it uses
    /// and says so (`Some(true)`), `Some(false)` has the value checked and skipped; a member
    /// read twice gives up (serde's reader does, `perplexity_reply::members`).
    fn object(&mut self, mut member: impl FnMut(&str, &mut Self) -> Option<bool>) -> Option<()> {
        self.eat(b'{')?;
        self.enter()?;
        let mut seen: Vec<&'a str> = Vec::new();
        if self.peek()? == b'}' {
            self.i += 1;
        } else {
            loop {
                let key = self.key()?;
                self.eat(b':')?;
                if member(key, self)? {
                    if seen.contains(&key) {
                        return None;
                    }
                    seen.push(key);
                } else {
                    self.skip()?;
                }
                match self.peek()? {
                    b',' => self.i += 1,
                    b'}' => {
                        self.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.depth -= 1;
        Some(())
    }

    /// An array, entry by entry (`entry(scan, index)` reads each).
    fn array(&mut self, mut entry: impl FnMut(&mut Self, usize) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        self.enter()?;
        if self.peek()? == b']' {
            self.i += 1;
        } else {
            let mut n = 0;
            loop {
                entry(self, n)?;
                n += 1;
                match self.peek()? {
                    b',' => self.i += 1,
                    b']' => {
                        self.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.depth -= 1;
        Some(())
    }

    /// Any value, checked and skipped.
    fn skip(&mut self) -> Option<()> {
        match self.peek()? {
            b'{' => self.object(|_, _| Some(false)),
            b'[' => self.array(|s, _| s.skip()),
            b'"' => self.string().map(drop),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.null(),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    fn null(&mut self) -> Option<()> {
        self.peek()?;
        self.literal(b"null")
    }

    /// A number as JSON writes it, without an exponent and with at most [`MAX_DIGITS`] digits.
    fn number(&mut self) -> Option<()> {
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        let mut digits = 0;
        match self.b.get(self.i)? {
            b'0' => {
                self.i += 1;
                digits += 1;
                if self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
                    return None;
                }
            }
            b'1'..=b'9' => digits += self.digits(),
            _ => return None,
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            let fraction = self.digits();
            if fraction == 0 {
                return None;
            }
            digits += fraction;
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) || digits > MAX_DIGITS {
            return None;
        }
        Some(())
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        self.i - start
    }

    /// A string or `null`.
    fn string_or_null(&mut self) -> Option<Option<Cow<'a, str>>> {
        match self.peek()? {
            b'n' => self.null().map(|()| None),
            b'"' => self.string().map(Some),
            _ => None,
        }
    }

    /// A key: a string without escapes (an escaped key goes to the serde reader).
    fn key(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        loop {
            match *self.b.get(self.i)? {
                b'"' => break,
                b'\\' | 0..=0x1f => return None,
                _ => self.i += 1,
            }
        }
        let key = self.src.get(start..self.i)?;
        self.i += 1;
        Some(key)
    }

    /// A string, borrowed when it has no escapes. A control character in it is invalid JSON.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.eat(b'"')?;
        let start = self.i;
        loop {
            match *self.b.get(self.i)? {
                b'"' => {
                    let s = self.src.get(start..self.i)?;
                    self.i += 1;
                    return Some(Cow::Borrowed(s));
                }
                b'\\' => break,
                0..=0x1f => return None,
                _ => self.i += 1,
            }
        }
        let mut out = String::from(self.src.get(start..self.i)?);
        loop {
            let run = self.i;
            loop {
                match *self.b.get(self.i)? {
                    b'"' | b'\\' => break,
                    0..=0x1f => return None,
                    _ => self.i += 1,
                }
            }
            out.push_str(self.src.get(run..self.i)?);
            if self.b[self.i] == b'"' {
                self.i += 1;
                return Some(Cow::Owned(out));
            }
            self.i += 1;
            let c = match *self.b.get(self.i)? {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => {
                    self.i += 1;
                    let c = self.unicode()?;
                    out.push(c);
                    continue;
                }
                _ => return None,
            };
            self.i += 1;
            out.push(c);
        }
    }

    /// The character of a `\u` escape whose four hex digits start here: a surrogate only as a
    /// whole pair (`\uD83D\uDE00`); a lone one goes to the serde reader.
    fn unicode(&mut self) -> Option<char> {
        let hi = self.hex4()?;
        match hi {
            0xD800..=0xDBFF => {
                self.literal(b"\\u")?;
                let lo = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&lo) {
                    return None;
                }
                char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
            }
            0xDC00..=0xDFFF => None,
            _ => char::from_u32(hi),
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let mut v = 0;
        for _ in 0..4 {
            let d = char::from(*self.b.get(self.i)?).to_digit(16)?;
            v = v * 16 + d;
            self.i += 1;
        }
        Some(v)
    }
}
