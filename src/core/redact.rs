//! Redaction of upstream error text before it is logged.
//!
//! Why: an upstream's error body or in-stream error is written by software we do not control —
//! an older LightRAG that returned `str(e)`, a proxy's HTML page, a provider's message quoting
//! the key it refused, a Python traceback with the server's file paths. None of it may reach a
//! client (clients get a generic message and a request id), and the log should carry enough to
//! diagnose without becoming a place where keys and internal paths collect. So before logging:
//! the router's own secrets are replaced, anything shaped like a credential is replaced,
//! filesystem paths become `[path]`, URLs keep only their scheme and host, control characters
//! become spaces, and the text is cut to a bounded length.

/// What replaces a secret or a credential.
const PLACEHOLDER: &str = "[redacted]";

/// How much of an upstream's error text the log keeps.
pub const DEFAULT_MAX_CHARS: usize = 300;

/// Names of credentials: `name=value` keeps the name, and `name: value` / `name= value` (the
/// name followed by `:` or `=`) hides the next word. `Bearer value` always does.
const CREDENTIAL_WORDS: [&str; 8] = [
    "bearer",
    "key",
    "api_key",
    "apikey",
    "x-api-key",
    "token",
    "password",
    "secret",
];

/// Prefixes of well-known key formats (OpenAI `sk-`, Perplexity `pplx-`, Anthropic `sk-ant-`,
/// GitHub `ghp_`, Slack `xox`).
const KEY_PREFIXES: [&str; 5] = ["sk-", "pplx-", "ghp_", "xox", "key-"];

/// `text` made safe to log: `secrets` (the router's own keys and tokens) and anything shaped
/// like a credential replaced, paths and URL paths removed, at most `max_chars` characters
/// (plus `…` when cut).
pub fn redact(text: &str, secrets: &[&str], max_chars: usize) -> String {
    let mut t = text.to_string();
    for s in secrets.iter().map(|s| s.trim()).filter(|s| s.len() >= 4) {
        t = t.replace(s, PLACEHOLDER);
    }
    let t: String = t
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut out: Vec<String> = Vec::new();
    let mut credential_next = false;
    for word in t.split_whitespace() {
        let replaced = if word.contains(PLACEHOLDER) {
            None
        } else if credential_next {
            Some(format!("{}[redacted]", leading(word)))
        } else {
            redact_word(word)
        };
        credential_next = introduces_credential(word);
        out.push(replaced.unwrap_or_else(|| word.to_string()));
    }
    truncate(&out.join(" "), max_chars)
}

/// Leading punctuation kept around a replaced word (`"/app/x.py",` → `"[path]`).
fn leading(word: &str) -> &str {
    let core = word.trim_start_matches(['"', '\'', '(', '[', '{', '<', '=', '`']);
    word.get(..word.len() - core.len()).unwrap_or_default()
}

fn core_of(word: &str) -> &str {
    word.trim_start_matches(['"', '\'', '(', '[', '{', '<', '=', '`'])
        .trim_end_matches(['"', '\'', ')', ']', '}', '>', ',', ';', '.', ':', '`'])
}

fn introduces_credential(word: &str) -> bool {
    let w = word
        .trim_start_matches(['"', '\'', '(', '[', '{', '<'])
        .trim_end_matches(['"', '\''])
        .to_ascii_lowercase();
    if w == "bearer" {
        return true;
    }
    match w.strip_suffix([':', '=']) {
        Some(name) => {
            let name = name.trim_end_matches(['"', '\'']);
            CREDENTIAL_WORDS.contains(&name) || name == "authorization"
        }
        None => false,
    }
}

/// The replacement for one word, if it needs one.
fn redact_word(word: &str) -> Option<String> {
    let lead = leading(word);
    let core = core_of(word);
    let lower = core.to_ascii_lowercase();
    if let Some(i) = core.find("://") {
        let rest = core.get(i + 3..).unwrap_or_default();
        let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let host = rest.get(..host_end).unwrap_or_default();
        // user:password@host keeps only the host.
        let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
        let tail = if host_end < rest.len() { "/…" } else { "" };
        return Some(format!(
            "{lead}{}://{host}{tail}",
            core.get(..i).unwrap_or_default()
        ));
    }
    // key=value, token=value, …: keep the name.
    if let Some(eq) = core.find('=') {
        let name = lower.get(..eq).unwrap_or_default();
        if CREDENTIAL_WORDS.iter().any(|c| name.ends_with(c)) {
            return Some(format!(
                "{lead}{}=[redacted]",
                core.get(..eq).unwrap_or_default()
            ));
        }
    }
    let is_path = (core.starts_with('/') && core.len() > 1 && !core.starts_with("//"))
        || core.starts_with("~/")
        || core.starts_with("./")
        || core.starts_with("../")
        || windows_path(core);
    if is_path {
        return Some(format!("{lead}[path]"));
    }
    if looks_like_key(core) {
        return Some(format!("{lead}[redacted]"));
    }
    None
}

fn windows_path(s: &str) -> bool {
    match s.as_bytes() {
        [d, b':', sep, _, ..] => d.is_ascii_alphabetic() && matches!(sep, b'\\' | b'/'),
        _ => false,
    }
}

/// A known key prefix, or a long run of letters and digits mixed (a token, a hash).
fn looks_like_key(core: &str) -> bool {
    let lower = core.to_ascii_lowercase();
    if KEY_PREFIXES.iter().any(|p| lower.starts_with(p)) && core.len() >= 8 {
        return true;
    }
    core.len() >= 24
        && core
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '/'))
        && core.chars().any(|c| c.is_ascii_digit())
        && core.chars().any(|c| c.is_ascii_alphabetic())
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", s.get(..i).unwrap_or_default()),
        None => s.to_string(),
    }
}
