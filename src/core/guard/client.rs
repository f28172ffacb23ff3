//! Client authentication on the chat routes (`/v1/chat/completions`, `/query`).
//!
//! Why: in production the chat app's server is the router's only client, so every chat request
//! must prove it with the `ROUTER_CLIENT_TOKEN` secret — without it the router is an open proxy
//! onto the paid upstream keys. The token travels as `Authorization: Bearer <token>`, what an
//! OpenAI client sends for its API key, so pointing the chat app at the router stays a
//! base-URL-and-key change. The admin token is accepted there too (an operator testing a route
//! or using `X-Route-Override` is a client), and it is what unlocks the operator-only detail.
//!
//! Outside `ROUTER_ENV=development` a router without `ROUTER_CLIENT_TOKEN` refuses chat traffic
//! (503 naming the secret) instead of quietly running open; in development the token is
//! optional and, when unset, any caller is let through.

use super::deployment::Deployment;
use crate::core::identity::{bearer, tokens_match};

/// What a chat request's `Authorization` header proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// The admin token: a client, and an operator.
    Admin,
    /// The client token.
    Client,
    /// Development without a client token: anyone may call.
    Open,
    /// A client token is configured and none was presented.
    Missing,
    /// A token was presented and matches neither.
    Invalid,
    /// Outside development and no client token is configured: chat traffic is refused.
    Unconfigured,
}

impl ClientAuth {
    /// Whether the request may go on.
    pub fn admitted(self) -> bool {
        matches!(
            self,
            ClientAuth::Admin | ClientAuth::Client | ClientAuth::Open
        )
    }

    /// The refusal: status, error code and message (`None` when admitted).
    pub fn refusal(self) -> Option<(u16, &'static str, &'static str)> {
        match self {
            ClientAuth::Admin | ClientAuth::Client | ClientAuth::Open => None,
            ClientAuth::Missing => Some((
                401,
                "unauthorized",
                "missing `Authorization: Bearer <ROUTER_CLIENT_TOKEN>`",
            )),
            ClientAuth::Invalid => Some((401, "unauthorized", "invalid client token")),
            ClientAuth::Unconfigured => Some((
                503,
                "client_auth_unconfigured",
                "chat traffic is refused: no ROUTER_CLIENT_TOKEN secret is configured and ROUTER_ENV is not development (wrangler secret put ROUTER_CLIENT_TOKEN)",
            )),
        }
    }
}

/// Everything the verdict depends on.
#[derive(Debug, Clone, Copy)]
pub struct ClientCheck<'a> {
    pub deployment: Deployment,
    pub client_token: Option<&'a str>,
    pub admin_token: Option<&'a str>,
    /// The request's `Authorization` header.
    pub authorization: Option<&'a str>,
}

fn configured(t: Option<&str>) -> Option<&str> {
    t.filter(|t| !t.trim().is_empty())
}

/// The verdict for one chat request.
pub fn check_client(c: &ClientCheck<'_>) -> ClientAuth {
    let client_token = configured(c.client_token);
    if client_token.is_none() && c.deployment.requires_client_token() {
        return ClientAuth::Unconfigured;
    }
    let presented = c.authorization.and_then(bearer);
    if let (Some(p), Some(admin)) = (presented, configured(c.admin_token)) {
        if tokens_match(p, admin) {
            return ClientAuth::Admin;
        }
    }
    match (client_token, presented) {
        (None, _) => ClientAuth::Open,
        (Some(_), None) => ClientAuth::Missing,
        (Some(t), Some(p)) if tokens_match(p, t) => ClientAuth::Client,
        (Some(_), Some(_)) => ClientAuth::Invalid,
    }
}
