//! The whole conversation for LightRAG: earlier turns as `conversation_history`, system
//! messages as `user_prompt`, within the server's limits.
//!
//! Why: a follow-up ("And isocitrate?") means nothing without the turns before it. Perplexity
//! gets the whole conversation; LightRAG used to get only the last user message, which both
//! lost the context and biased the A/B comparison against LightRAG. LightRAG's `QueryRequest`
//! takes `conversation_history: [{role, content}]` and `user_prompt`.
//!
//! The server's limits (1.5.7, `lightrag/constants.py`, `api/input_limits.py`; fixtures
//! `422_history_*`, `422_total_too_long.json`, `422_*_too_long.json`): at most
//! [`MAX_MESSAGES`] history entries, each `content` at most [`MAX_MESSAGE_CHARS`] characters;
//! `query` and `user_prompt` at most [`MAX_QUERY_CHARS`] each; and query + user_prompt +
//! `json.dumps(history, ensure_ascii=False)` at most [`MAX_TOTAL_CHARS`] (inclusive), all in
//! code points. A conversation over them is **trimmed, not refused**: the oldest turns go
//! first, an over-long turn is cut to the cap, and the system prompt is cut last (its start
//! kept). The question itself is never cut: a question over the cap is the client's, and the
//! server's 422 for it is counted as request-caused (never against LightRAG's breaker).

use super::openai::ChatMessage;
use serde::Serialize;

/// `MAX_MESSAGES_PER_REQUEST`.
pub const MAX_MESSAGES: usize = 128;
/// Per history entry `content` (`MAX_MESSAGE_CHARS`).
pub const MAX_MESSAGE_CHARS: usize = 32_768;
/// `query` and `user_prompt` (`max_length` of those fields).
pub const MAX_QUERY_CHARS: usize = 65_536;
/// `MAX_REQUEST_TEXT_CHARS`.
pub const MAX_TOTAL_CHARS: usize = 131_072;

/// What LightRAG is asked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Conversation {
    /// The question (the last user message), trimmed.
    pub query: String,
    /// The system / developer messages, joined by a blank line; `None` without any.
    pub user_prompt: Option<String>,
    /// Earlier user / assistant turns, oldest first, within the limits.
    pub history: Vec<ChatMessage>,
    /// What had to go to fit.
    pub trimmed: Trimmed,
}

/// What [`conversation`] left out to fit the server's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Trimmed {
    /// Oldest turns dropped.
    pub dropped_turns: usize,
    /// Turns cut to [`MAX_MESSAGE_CHARS`].
    pub cut_turns: usize,
    /// The system prompt was cut.
    pub user_prompt_cut: bool,
}

impl Trimmed {
    pub fn any(&self) -> bool {
        self.dropped_turns > 0 || self.cut_turns > 0 || self.user_prompt_cut
    }
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

fn cut(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => s[..i].to_string(),
        None => s.to_string(),
    }
}

/// Length in code points of a string as Python's `json.dumps(..., ensure_ascii=False)`
/// writes it, quotes included: `"` `\` and `\b \f \n \r \t` take 2, other control characters
/// below U+0020 take 6 (`\u00XX`), everything else 1.
pub fn py_json_str_len(s: &str) -> usize {
    2 + s
        .chars()
        .map(|c| match c {
            '"' | '\\' | '\u{8}' | '\u{c}' | '\n' | '\r' | '\t' => 2,
            c if (c as u32) < 0x20 => 6,
            _ => 1,
        })
        .sum::<usize>()
}

/// Length of one entry `{"role": R, "content": C}` in `json.dumps` (", " and ": " separators).
fn entry_len(m: &ChatMessage) -> usize {
    // {"role": R, "content": C} = 1 + 6 + 2 + R + 2 + 9 + 2 + C + 1.
    23 + py_json_str_len(&m.role) + py_json_str_len(&m.content)
}

/// `len(json.dumps(history, ensure_ascii=False))`: `[]` plus entries joined by `", "`.
pub fn history_chars(history: &[ChatMessage]) -> usize {
    if history.is_empty() {
        return 2;
    }
    2 + history.iter().map(entry_len).sum::<usize>() + 2 * (history.len() - 1)
}

/// The request text LightRAG counts against [`MAX_TOTAL_CHARS`] (an empty history is not
/// sent, so it counts nothing).
pub fn request_chars(c: &Conversation) -> usize {
    chars(&c.query)
        + c.user_prompt.as_deref().map_or(0, chars)
        + if c.history.is_empty() {
            0
        } else {
            history_chars(&c.history)
        }
}

/// Splits an OpenAI conversation into LightRAG's question, `user_prompt` and
/// `conversation_history`, trimmed to the server's limits (module docs). Tool / function turns
/// and empty turns are left out; turns after the last user message are not history.
pub fn conversation(messages: &[ChatMessage]) -> Conversation {
    let last_user = messages.iter().rposition(|m| m.role == "user");
    let query = last_user
        .and_then(|i| messages.get(i))
        .map(|m| m.content.trim().to_string())
        .unwrap_or_default();
    let mut system: Vec<&str> = Vec::new();
    let mut history: Vec<ChatMessage> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        match m.role.as_str() {
            "system" | "developer" if !m.content.trim().is_empty() => system.push(m.content.trim()),
            "user" | "assistant" if Some(i) < last_user && !m.content.trim().is_empty() => {
                history.push(m.clone())
            }
            _ => {}
        }
    }
    let mut trimmed = Trimmed::default();
    let mut user_prompt = (!system.is_empty()).then(|| system.join("\n\n"));
    if let Some(p) = &user_prompt {
        if chars(p) > MAX_QUERY_CHARS {
            user_prompt = Some(cut(p, MAX_QUERY_CHARS));
            trimmed.user_prompt_cut = true;
        }
    }
    for m in &mut history {
        if chars(&m.content) > MAX_MESSAGE_CHARS {
            m.content = cut(&m.content, MAX_MESSAGE_CHARS);
            trimmed.cut_turns += 1;
        }
    }
    if history.len() > MAX_MESSAGES {
        let extra = history.len() - MAX_MESSAGES;
        history.drain(..extra);
        trimmed.dropped_turns += extra;
    }
    let mut c = Conversation {
        query,
        user_prompt,
        history,
        trimmed,
    };
    // Oldest turns first, one at a time (the sum is recomputed incrementally).
    let fixed = chars(&c.query) + c.user_prompt.as_deref().map_or(0, chars);
    let mut hist = if c.history.is_empty() {
        0
    } else {
        history_chars(&c.history)
    };
    let mut drop = 0;
    while fixed + hist > MAX_TOTAL_CHARS && drop < c.history.len() {
        let left = c.history.len() - drop;
        hist = if left == 1 {
            0
        } else {
            hist - c.history.get(drop).map_or(0, entry_len) - 2
        };
        drop += 1;
    }
    if drop > 0 {
        c.history.drain(..drop);
        c.trimmed.dropped_turns += drop;
    }
    // Still over: only the question and the system prompt are left; the prompt gives way.
    if fixed > MAX_TOTAL_CHARS {
        if let Some(p) = &c.user_prompt {
            let room = MAX_TOTAL_CHARS.saturating_sub(chars(&c.query));
            c.user_prompt = (room > 0).then(|| cut(p, room));
            c.trimmed.user_prompt_cut = true;
        }
    }
    c
}
