//! Signing in and out. `POST /ui/login` takes one field, `key`: a tenant's API key (its role
//! decides what the session may do) or the runner's admin token (every tenant). A wrong key sets
//! no cookie. `POST /ui/logout` deletes the session row, so the cookie is worthless afterwards.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::api::AppState;
use crate::auth::{self, KEY_PREFIX};
use crate::store::{KeyRole, UiSessionCreateParams};
use crate::ui::error::{UiResult, render};
use crate::ui::session;

/// Bounds the stored sessions' cleanup done at each sign-in.
const PRUNE_PER_LOGIN: i64 = 100;

#[derive(Template)]
#[template(path = "ui/login.html")]
struct LoginPage {
    error: Option<String>,
    next: String,
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// Only a path of the dashboard itself may be the place to return to (no open redirect).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with("/ui")
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.starts_with("/ui/login")
                && !n.starts_with("/ui/logout") =>
        {
            n.to_string()
        }
        _ => "/ui".to_string(),
    }
}

pub async fn form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> UiResult<Response> {
    if session::current(&headers, &state).await?.is_some() {
        return Ok(Redirect::to(&safe_next(q.next.as_deref())).into_response());
    }
    let page = LoginPage {
        error: None,
        next: safe_next(q.next.as_deref()),
    };
    Ok(render(&page)?.into_response())
}

pub async fn submit(State(state): State<AppState>, body: Bytes) -> UiResult<Response> {
    let mut key = String::new();
    let mut next = None;
    for (k, v) in form_urlencoded::parse(&body) {
        match &*k {
            "key" => key = v.trim().to_string(),
            "next" => next = Some(v.into_owned()),
            _ => {}
        }
    }
    let next = safe_next(next.as_deref());
    let settings = &state.settings;
    let grant = if settings
        .admin_token
        .as_deref()
        .is_some_and(|t| !key.is_empty() && auth::same_secret(&key, t))
    {
        Some((true, session::admin_token_hash(&key), KeyRole::Full, None))
    } else if key.starts_with(KEY_PREFIX) {
        let hash = auth::hash_key(&key);
        state
            .store
            .key_grant_by_hash(&hash)
            .await?
            .map(|g| (false, hash, g.role, Some(g.tenant.id)))
    } else {
        None
    };
    let Some((admin, key_hash, role, tenant_id)) = grant else {
        tracing::info!("dashboard: sign-in refused (unknown or disabled key)");
        let page = LoginPage {
            error: Some(
                "That key is not known, or it or its tenant is disabled. Use a tenant API key \
                 (sfk_…) or the runner's admin token."
                    .to_string(),
            ),
            next,
        };
        return Ok((StatusCode::UNAUTHORIZED, render(&page)?).into_response());
    };
    let _ = state.store.ui_session_prune(PRUNE_PER_LOGIN).await;
    let (id, id_hash) = session::new_session_id();
    let ttl = settings.ui.session_ttl;
    state
        .store
        .ui_session_create(UiSessionCreateParams {
            id_hash,
            admin,
            key_hash,
            role,
            tenant_id,
            ttl_ms: ttl.as_millis() as i64,
        })
        .await?;
    let mut res = Redirect::to(&next).into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        session::cookie(&id, ttl.as_secs(), settings.ui.secure_cookie),
    );
    Ok(res)
}

pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> UiResult<Response> {
    if let Some(id_hash) = session::cookie_hash(&headers) {
        state.store.ui_session_delete(&id_hash).await?;
    }
    let mut res = Redirect::to("/ui/login").into_response();
    res.headers_mut()
        .insert(header::SET_COOKIE, session::clear_cookie());
    Ok(res)
}
