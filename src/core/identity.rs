//! Who is asking: the stickiness key (docs/architecture.md#cohort-hashing), the router's anonymous-id cookie, and the
//! bearer token checks (admin and client).
//!
//! Why here: these rules decide cohort membership and admin access, so they must be exact and
//! tested: the key order (user id, else session id, else the router's cookie), which cookie
//! values are accepted (only ids the router could have issued, so a client cannot smuggle a
//! chosen string into the hash input unnoticed), and a token comparison whose time does not
//! depend on the tokens' contents or lengths (fixed-size digests, compared whole).

use crate::core::digest;

/// The cookie that keeps anonymous users sticky.
pub const COOKIE_NAME: &str = "cmo_rid";
/// One year.
pub const COOKIE_MAX_AGE_S: u64 = 365 * 24 * 3600;

/// Where the stickiness key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    User,
    Session,
    /// A valid `cmo_rid` cookie the client sent back.
    Cookie,
    /// A fresh id the router issues in this response.
    Issued,
}

impl KeySource {
    pub fn as_str(self) -> &'static str {
        match self {
            KeySource::User => "user",
            KeySource::Session => "session",
            KeySource::Cookie => "cookie",
            KeySource::Issued => "issued",
        }
    }
}

/// The stickiness key of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub key: String,
    pub source: KeySource,
}

impl Identity {
    /// The `Set-Cookie` value to send, when the id was issued now.
    pub fn set_cookie(&self) -> Option<String> {
        (self.source == KeySource::Issued).then(|| set_cookie_header(&self.key))
    }
}

/// Whether `v` looks like an id this router issues: 16–64 characters of `[0-9a-zA-Z_-]`.
pub fn valid_cookie_id(v: &str) -> bool {
    (16..=64).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The value of cookie `name` in a `Cookie` header, if present and valid.
pub fn cookie_value(header: &str, name: &str) -> Option<String> {
    header
        .split(';')
        .filter_map(|part| part.trim().split_once('='))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .filter(|v| valid_cookie_id(v))
}

/// Hex of 16 random bytes (the caller draws them).
pub fn new_id(random: &[u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(32);
    for b in random {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 15)]));
    }
    s
}

/// `Set-Cookie` for an issued id: long-lived, not readable by scripts, first-party only.
pub fn set_cookie_header(id: &str) -> String {
    format!(
        "{COOKIE_NAME}={id}; Path=/; Max-Age={COOKIE_MAX_AGE_S}; HttpOnly; Secure; SameSite=Lax"
    )
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

/// The stickiness key: user id, else session id, else the cookie, else a fresh id made from
/// `random()` (only called when an id is issued).
pub fn identify(
    user: Option<&str>,
    session: Option<&str>,
    cookie_header: Option<&str>,
    random: impl FnOnce() -> [u8; 16],
) -> Identity {
    if let Some(u) = non_empty(user) {
        return Identity {
            key: u.to_string(),
            source: KeySource::User,
        };
    }
    if let Some(s) = non_empty(session) {
        return Identity {
            key: s.to_string(),
            source: KeySource::Session,
        };
    }
    if let Some(c) = cookie_header.and_then(|h| cookie_value(h, COOKIE_NAME)) {
        return Identity {
            key: c,
            source: KeySource::Cookie,
        };
    }
    Identity {
        key: new_id(&random()),
        source: KeySource::Issued,
    }
}

/// The fixed-size value a token is compared through: SHA-256 of the token with surrounding
/// whitespace removed (a secret stored with `echo … | wrangler secret put` ends in a newline).
pub fn token_digest(token: &str) -> [u8; 32] {
    digest::sha256(token.trim().as_bytes())
}

/// Whether a presented token equals the configured one. Both are trimmed and hashed first, so
/// the comparison always runs over 32 bytes: its time depends neither on how many leading bytes
/// matched nor on either token's length (comparing the raw bytes leaked the length).
pub fn tokens_match(presented: &str, configured: &str) -> bool {
    let (a, b) = (token_digest(presented), token_digest(configured));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |diff, (x, y)| diff | (x ^ y))
        == 0
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// The admin check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminAuth {
    /// No `ADMIN_TOKEN` configured: the admin API is off.
    Disabled,
    Missing,
    Invalid,
    Ok,
}

/// Checks an `Authorization` header against the configured admin token. The configured token is
/// trimmed like the presented one: a secret stored with a trailing newline (`echo tok | wrangler
/// secret put`) would otherwise lock every operator out, since a header cannot carry it.
pub fn check_admin(configured: Option<&str>, authorization: Option<&str>) -> AdminAuth {
    let Some(expected) = configured.filter(|t| !t.trim().is_empty()) else {
        return AdminAuth::Disabled;
    };
    match authorization.and_then(bearer) {
        None => AdminAuth::Missing,
        Some(t) if tokens_match(t, expected) => AdminAuth::Ok,
        Some(_) => AdminAuth::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `make fuzz` (target `admin_token`): the configured token, sent as a bearer
    /// token, was refused when the stored secret ended in a newline.
    #[test]
    fn a_stored_token_with_surrounding_whitespace_still_admits_its_holder() {
        for stored in ["tok-123\n", "tok-123\r\n", " tok-123", "tok-123\t"] {
            assert_eq!(
                check_admin(Some(stored), Some("Bearer tok-123")),
                AdminAuth::Ok
            );
            assert_eq!(
                check_admin(Some(stored), Some("Bearer tok-12")),
                AdminAuth::Invalid
            );
        }
        assert_eq!(
            check_admin(Some(" \n"), Some("Bearer x")),
            AdminAuth::Disabled
        );
    }
}
