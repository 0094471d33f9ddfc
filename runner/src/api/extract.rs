//! Extractors that turn every bad request into a clear JSON [`ApiError`]: JSON bodies, query
//! strings, raw bodies with a size limit, and the tenant behind an API key.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::{ApiError, ErrorCode};
use crate::auth::{self, KEY_PREFIX};
use crate::config::TenantLimits;
use crate::store::{KeyGrant, KeyRole, Tenant};

/// A JSON object body; a rejection names what is wrong (syntax, a missing or unknown field, a
/// type). Only an object is taken: serde would also read a struct from an array of its fields
/// in order, which no client means and the OpenAPI document does not allow.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        json_body(req, state, b'{', "an object").await.map(Json)
    }
}

/// A JSON array body (bulk routes), otherwise as [`Json`].
#[derive(Debug)]
pub struct JsonArray<T>(pub Vec<T>);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonArray<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        json_body(req, state, b'[', "an array").await.map(JsonArray)
    }
}

/// Reads a JSON body whose top level starts with `open`.
async fn json_body<T: DeserializeOwned, S: Send + Sync>(
    req: Request,
    state: &S,
    open: u8,
    what: &str,
) -> Result<T, ApiError> {
    if !json_content_type(req.headers()) {
        return Err(json_rejection(JsonRejection::MissingJsonContentType(
            Default::default(),
        )));
    }
    let bytes = Bytes::from_request(req, state)
        .await
        .map_err(bytes_rejection)?;
    if let Some(first) = bytes.iter().find(|b| !b.is_ascii_whitespace())
        && *first != open
    {
        return Err(ApiError::bad_request(format!(
            "invalid JSON body: the body must be {what}"
        )));
    }
    match axum::Json::<T>::from_bytes(&bytes) {
        Ok(axum::Json(value)) => Ok(value),
        Err(rejection) => Err(json_rejection(rejection)),
    }
}

/// `application/json` or any `application/*+json`, as axum's own `Json` takes.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.split_once('/') {
        Some(("application", subtype)) => subtype == "json" || subtype.ends_with("+json"),
        _ => false,
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the body as JSON with the header 'Content-Type: application/json'",
        ),
        JsonRejection::BytesRejection(r) => bytes_rejection(r),
        other => ApiError::bad_request(format!("invalid JSON body: {}", other.body_text())),
    }
}

pub fn bytes_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large(format!(
            "the request body is larger than this runner accepts ({})",
            rejection.body_text()
        ))
    } else {
        ApiError::bad_request(format!(
            "could not read the body: {}",
            rejection.body_text()
        ))
    }
}

/// A query string; a rejection names the parameter that is wrong.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => Err(ApiError::bad_request(
                format!("invalid query string: {}", e.body_text()),
            )),
            Err(other) => Err(ApiError::bad_request(other.body_text())),
        }
    }
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::unauthorized("missing API key: send 'Authorization: Bearer <key>'")
        })?
        .to_str()
        .map_err(|_| ApiError::unauthorized("the Authorization header is not valid text"))?;
    value
        .strip_prefix("Bearer ")
        .map(str::trim)
        .ok_or_else(|| ApiError::unauthorized("the Authorization header must be 'Bearer <key>'"))
}

/// The grant behind the request's API key; a `read` key is refused on every method that may
/// change something, so no handler can forget the check.
async fn key_grant(parts: &Parts, state: &AppState) -> Result<KeyGrant, ApiError> {
    let key = bearer(parts)?;
    if !key.starts_with(KEY_PREFIX) {
        return Err(ApiError::unauthorized(format!(
            "unknown API key: tenant keys start with '{KEY_PREFIX}'"
        )));
    }
    let hash = auth::hash_key(key);
    let grant = match state.keys.get(&hash) {
        Ok(grant) => grant,
        Err(generation) => {
            let Some(grant) = state.store.key_grant_by_hash(&hash).await? else {
                return Err(ApiError::unauthorized(
                    "unknown or disabled API key: create one with POST /v1/tenants/{name}/keys",
                ));
            };
            state.keys.put(hash, &grant, generation);
            grant
        }
    };
    let reads_only = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    if grant.role == KeyRole::Read && !reads_only {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "this API key is read-only: it can read everything its tenant owns and change \
             nothing; use a key with role 'full'",
        ));
    }
    Ok(grant)
}

/// The tenant whose API key authorised this request. Every tenant route takes one, and every
/// query it makes is scoped by its id.
#[derive(Debug, Clone)]
pub struct TenantAuth(pub Tenant);

impl FromRequestParts<AppState> for TenantAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(TenantAuth(key_grant(parts, state).await?.tenant))
    }
}

/// Like [`TenantAuth`], with the key's role and the tenant's effective quotas: for the routes
/// that create something a quota counts.
#[derive(Debug, Clone)]
pub struct TenantGrant {
    pub tenant: Tenant,
    /// The tenant's own limits, or the runner's defaults where it has none.
    pub limits: TenantLimits,
}

impl FromRequestParts<AppState> for TenantGrant {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let grant = key_grant(parts, state).await?;
        Ok(TenantGrant {
            limits: grant.limits.or(&state.settings.quotas),
            tenant: grant.tenant,
        })
    }
}

/// Proof that the request carried the admin token.
#[derive(Debug, Clone, Copy)]
pub struct AdminAuth;

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(expected) = state.settings.admin_token.as_deref() else {
            return Err(ApiError::new(
                ErrorCode::AdminDisabled,
                "admin routes are disabled: start the runner with SANDFIRE_ADMIN_TOKEN set",
            ));
        };
        let given = bearer(parts)?;
        if auth::same_secret(given, expected) {
            Ok(AdminAuth)
        } else {
            Err(ApiError::unauthorized(
                "wrong admin token: admin routes take the runner's SANDFIRE_ADMIN_TOKEN",
            ))
        }
    }
}
