//! Dashboard sessions: a random id in an `HttpOnly; SameSite=Strict; Path=/ui` cookie, stored in
//! PostgreSQL only as its SHA-256 (`ui_sessions`), so any runner can serve it and a copy of the
//! table signs no one in.
//!
//! Every request reads the session together with its key and tenant as they are now: a disabled
//! key or tenant, a changed admin token or an expired session ends it at once (the row is deleted
//! and the browser is sent to the login page). The cookie never authenticates `/v1`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::error::UiError;
use crate::api::AppState;
use crate::store::{KeyRole, Tenant};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "sf_session";

/// How stale `last_seen_at` may get before a request writes it again (one write per minute per
/// session, not one per page).
const TOUCH_AFTER_S: i64 = 60;

/// A new random session id (the cookie's value) and the hash that is stored.
pub fn new_session_id() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let id = hex::encode(bytes);
    let hash = Sha256::digest(id.as_bytes()).to_vec();
    (id, hash)
}

/// The hash stored for an admin session: it ends when the token changes.
pub fn admin_token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Constant-time comparison of two hashes.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `Set-Cookie` value that opens a session.
pub fn cookie(id: &str, max_age_s: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={id}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}"
    ))
    .expect("a hex id makes a valid header")
}

/// The `Set-Cookie` value that ends it in the browser.
pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("sf_session=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The session id hash from the request's cookie, if any.
pub fn cookie_hash(headers: &HeaderMap) -> Option<Vec<u8>> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == SESSION_COOKIE && !value.is_empty() && value.len() <= 128)
        .map(|(_, value)| Sha256::digest(value.as_bytes()).to_vec())
}

/// Who is looking: a tenant's key (full or read) or the admin.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// `None` for the admin, who sees every tenant.
    pub tenant: Option<Tenant>,
    pub role: KeyRole,
    /// The key's prefix (`sfk_1234abcd`), for tenant sessions.
    pub key_prefix: Option<String>,
}

impl Viewer {
    pub fn is_admin(&self) -> bool {
        self.tenant.is_none()
    }

    /// The tenant every query is scoped to (`None`: every tenant, the admin).
    pub fn scope(&self) -> Option<i64> {
        self.tenant.as_ref().map(|t| t.id)
    }

    pub fn can_act(&self) -> bool {
        self.role == KeyRole::Full
    }

    /// Who acted, as the run's history names it ("retried {actor}").
    pub fn actor(&self) -> String {
        match &self.key_prefix {
            Some(prefix) => format!("via dashboard (key {prefix}…)"),
            None => "via dashboard (admin)".to_string(),
        }
    }

    /// The header's "signed in as".
    pub fn label(&self) -> String {
        match &self.tenant {
            Some(t) => format!(
                "{} · {} key {}…",
                t.name,
                self.role.as_str(),
                self.key_prefix.as_deref().unwrap_or("")
            ),
            None => "admin · all tenants".to_string(),
        }
    }
}

/// Sends the browser to the login page (htmx requests are told to navigate, not to swap the
/// login form into a fragment) and forgets the cookie.
pub fn to_login(parts: &Parts) -> Response {
    let next = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .filter(|p| p.starts_with("/ui") && *p != "/ui/login")
        .unwrap_or("/ui");
    let target = format!("/ui/login?next={}", super::view::url_encode(next));
    let mut res = if parts.headers.contains_key("hx-request") {
        let mut res = StatusCode::NO_CONTENT.into_response();
        if let Ok(v) = HeaderValue::from_str(&target) {
            res.headers_mut().insert("hx-redirect", v);
        }
        res
    } else {
        Redirect::to(&target).into_response()
    };
    res.headers_mut().insert(header::SET_COOKIE, clear_cookie());
    res
}

/// Reads and checks the request's session; `None` when there is no live one.
pub async fn current(headers: &HeaderMap, state: &AppState) -> Result<Option<Viewer>, UiError> {
    let Some(id_hash) = cookie_hash(headers) else {
        return Ok(None);
    };
    let Some(session) = state.store.ui_session_get(&id_hash).await? else {
        return Ok(None);
    };
    let viewer = if session.admin {
        let token_ok = state
            .settings
            .admin_token
            .as_deref()
            .is_some_and(|t| same_bytes(&admin_token_hash(t), &session.key_hash));
        token_ok.then_some(Viewer {
            tenant: None,
            role: KeyRole::Full,
            key_prefix: None,
        })
    } else {
        session.key.map(|(prefix, role, tenant)| Viewer {
            tenant: Some(tenant),
            role,
            key_prefix: Some(prefix),
        })
    };
    let Some(viewer) = viewer else {
        // The key or tenant was disabled, or the admin token changed: the session is over.
        state.store.ui_session_delete(&id_hash).await?;
        return Ok(None);
    };
    if (chrono::Utc::now() - session.last_seen_at).num_seconds() > TOUCH_AFTER_S {
        state.store.ui_session_touch(&id_hash).await?;
    }
    Ok(Some(viewer))
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match current(&parts.headers, state).await {
            Ok(Some(viewer)) => Ok(viewer),
            Ok(None) => Err(to_login(parts)),
            Err(e) => Err(e.into_response()),
        }
    }
}

/// A viewer allowed to change things (a full key or the admin): the extractor of every action,
/// so no action can forget the check. A read-only session gets 403.
#[derive(Debug, Clone)]
pub struct Actor(pub Viewer);

impl FromRequestParts<AppState> for Actor {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let viewer = Viewer::from_request_parts(parts, state).await?;
        if !viewer.can_act() {
            return Err(UiError::forbidden(
                "This session uses a read-only key: it can see everything its tenant owns and \
                 change nothing. Sign in with a key whose role is 'full'.",
            )
            .into_response());
        }
        Ok(Actor(viewer))
    }
}
