//! Identity targets: the stickiness key (user → session → cookie → issued), the `Cookie` header
//! reader, and the admin bearer-token check.
//!
//! What must hold: no panic; the key is the first non-blank of user and session, else a cookie
//! value the router could have issued (never a client-chosen string), else a fresh hex id; the
//! cookie reader agrees with a plain model of RFC 6265 pairs; and the admin check lets in exactly
//! the configured token sent as a bearer token — never anything else, never a blank token.

use crate::gen::hostile_string;
use cmo_edge_router::core::identity::{
    self, bearer, check_admin, cookie_value, identify, valid_cookie_id, AdminAuth, KeySource,
    COOKIE_NAME,
};
use proptest::prelude::*;

fn cookie_header() -> BoxedStrategy<String> {
    let value = prop_oneof![
        3 => "[0-9a-f]{32}",
        2 => "[A-Za-z0-9_-]{10,70}",
        1 => hostile_string(),
        1 => "\"[0-9a-f]{20}\"",
    ];
    let name = prop_oneof![
        4 => Just(COOKIE_NAME.to_string()),
        1 => Just(format!(" {COOKIE_NAME} ")),
        1 => prop::sample::select(vec!["cmo_rid2", "CMO_RID", "session", "", "x_cmo_rid"]).prop_map(str::to_string),
    ];
    let pair = (
        name,
        value,
        prop::sample::select(vec!["=", "=", " = ", "=="]),
    )
        .prop_map(|(n, v, eq)| format!("{n}{eq}{v}"));
    (
        prop::collection::vec(prop_oneof![4 => pair, 1 => hostile_string()], 0..4),
        prop::sample::select(vec!["; ", ";", " ;  ", ";;"]),
    )
        .prop_map(|(pairs, sep)| pairs.join(sep))
        .boxed()
}

/// The plain reading: `;`-separated pairs, split at the first `=`, names and values trimmed,
/// one pair of quotes removed; the first pair named `name` wins if its value is a valid id.
fn cookie_model(header: &str, name: &str) -> Option<String> {
    for part in header.split(';') {
        let Some((k, v)) = part.trim().split_once('=') else {
            continue;
        };
        if k.trim() == name {
            let v = v.trim().trim_matches('"');
            return valid_cookie_id(v).then(|| v.to_string());
        }
    }
    None
}

fn blankish() -> BoxedStrategy<Option<String>> {
    prop_oneof![
        2 => Just(None),
        1 => prop::sample::select(vec!["", " ", "\t\n"]).prop_map(|s| Some(s.to_string())),
        4 => hostile_string().prop_map(Some),
    ]
    .boxed()
}

pub fn identity_and_cookie() {
    crate::harness::run(
        "identity_cookie",
        (
            blankish(),
            blankish(),
            prop::option::of(cookie_header()),
            any::<[u8; 16]>(),
        ),
        |(user, session, cookie, random)| {
            if let Some(h) = &cookie {
                prop_assert_eq!(cookie_value(h, COOKIE_NAME), cookie_model(h, COOKIE_NAME));
            }
            let id = identify(
                user.as_deref(),
                session.as_deref(),
                cookie.as_deref(),
                || random,
            );
            let nb = |s: &Option<String>| {
                s.as_deref()
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
            };
            match (
                nb(&user),
                nb(&session),
                cookie.as_deref().and_then(|h| cookie_model(h, COOKIE_NAME)),
            ) {
                (Some(u), _, _) => {
                    prop_assert_eq!((id.key.clone(), id.source), (u, KeySource::User))
                }
                (None, Some(s), _) => {
                    prop_assert_eq!((id.key.clone(), id.source), (s, KeySource::Session))
                }
                (None, None, Some(c)) => {
                    prop_assert_eq!((id.key.clone(), id.source), (c, KeySource::Cookie))
                }
                (None, None, None) => {
                    prop_assert_eq!(id.source, KeySource::Issued);
                    prop_assert_eq!(&id.key, &identity::new_id(&random));
                    prop_assert!(
                        valid_cookie_id(&id.key),
                        "issued id {} would not be read back",
                        id.key
                    );
                    let set = id.set_cookie().unwrap_or_default();
                    prop_assert_eq!(cookie_model(&set, COOKIE_NAME), Some(id.key.clone()));
                }
            }
            prop_assert_eq!(id.set_cookie().is_some(), id.source == KeySource::Issued);
            Ok(())
        },
    );
}

fn token() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[A-Za-z0-9_-]{1,48}",
        1 => ("[A-Za-z0-9]{8,16}", prop::sample::select(vec!["\n", "\r\n", " ", "\t"])).prop_map(|(t, ws)| format!("{t}{ws}")),
        1 => hostile_string(),
        1 => "[a-z]{200,300}",
    ]
    .boxed()
}

pub fn admin_token() {
    let header = |t: BoxedStrategy<String>| {
        prop_oneof![
            4 => (prop::sample::select(vec!["Bearer ", "bearer ", "BEARER  ", " Bearer\t", "Basic ", "Bearer", "Token "]), t.clone())
                .prop_map(|(s, t)| format!("{s}{t}")),
            1 => hostile_string(),
        ]
        .boxed()
    };
    crate::harness::run(
        "admin_token",
        (
            prop::option::of(token()),
            prop::option::weighted(0.9, header(token())),
            token(),
        ),
        |(configured, authorization, other)| {
            let verdict = check_admin(configured.as_deref(), authorization.as_deref());
            let expected = configured
                .as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty());
            let given = authorization.as_deref().and_then(bearer);
            if let Some(t) = given {
                prop_assert!(!t.is_empty() && t.trim() == t, "bearer gave {t:?}");
            }
            match expected {
                None => prop_assert_eq!(verdict, AdminAuth::Disabled),
                Some(want) => {
                    let ok = given.is_some_and(|g| g == want);
                    prop_assert_eq!(
                        verdict == AdminAuth::Ok,
                        ok,
                        "verdict {:?} for {:?}",
                        verdict,
                        authorization
                    );
                    if given.is_none() {
                        prop_assert_eq!(verdict, AdminAuth::Missing);
                    }
                    // The configured token, sent as a bearer token, always gets in (a stray
                    // newline in the stored secret must not lock every operator out).
                    let right = format!("Bearer {}", configured.as_deref().unwrap_or_default());
                    prop_assert_eq!(
                        check_admin(configured.as_deref(), Some(&right)),
                        AdminAuth::Ok
                    );
                    // And a different token never does.
                    if other.trim() != want {
                        let wrong = format!("Bearer {other}");
                        prop_assert_ne!(
                            check_admin(configured.as_deref(), Some(&wrong)),
                            AdminAuth::Ok
                        );
                    }
                }
            }
            Ok(())
        },
    );
}
