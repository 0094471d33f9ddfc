//! The API's one error type: every failure a client can see, as `{"error": {code, message}}`.
//!
//! [`ApiError`] has one variant per error code, and the table in [`api_errors!`] below is the
//! one place that maps each variant to its HTTP status and its code: the response, the OpenAPI
//! document (`ErrorCode`) and `docs/api.md` all follow it. Client mistakes (4xx) are not logged
//! as errors; server-side failures are logged with their details and answered with a message
//! that leaks nothing internal.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::StoreError;

/// What an error says: its message, and when retrying may succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub text: String,
    /// Seconds after which retrying may succeed (sent as `Retry-After`).
    pub retry_after: Option<u64>,
}

impl<T: Into<String>> From<T> for Message {
    fn from(text: T) -> Message {
        Message {
            text: text.into(),
            retry_after: None,
        }
    }
}

/// Defines [`ApiError`], [`ErrorCode`] and their one mapping to status and code.
macro_rules! api_errors {
    ($( $(#[doc = $doc:literal])* $variant:ident => $status:ident, $code:literal; )*) => {
        /// Every error the API answers with. The status and code of each variant are fixed by
        /// the table in `error.rs`; clients match on the code.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum ApiError {
            $( $(#[doc = $doc])* $variant(Message), )*
        }

        /// The `code` of an error body: one per [`ApiError`] variant.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, in the order of the table.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $( ErrorCode::$variant => $code, )* }
            }

            pub fn status(self) -> StatusCode {
                match self { $( ErrorCode::$variant => StatusCode::$status, )* }
            }
        }

        impl ApiError {
            /// The error of this code, with its message.
            pub fn new(code: ErrorCode, message: impl Into<Message>) -> ApiError {
                match code { $( ErrorCode::$variant => ApiError::$variant(message.into()), )* }
            }

            pub fn code(&self) -> ErrorCode {
                match self { $( ApiError::$variant(_) => ErrorCode::$variant, )* }
            }

            fn detail(&self) -> &Message {
                match self { $( ApiError::$variant(m) => m, )* }
            }

            fn detail_mut(&mut self) -> &mut Message {
                match self { $( ApiError::$variant(m) => m, )* }
            }
        }
    };
}

api_errors! {
    /// The request is malformed: JSON syntax, a missing or unknown field, a bad query
    /// parameter or id.
    BadRequest => BAD_REQUEST, "bad_request";
    /// A name in the path is longer than names may be.
    NameTooLong => BAD_REQUEST, "name_too_long";
    /// No, an unknown or a disabled key, or the wrong admin token.
    Unauthorized => UNAUTHORIZED, "unauthorized";
    /// A read-only key on a route that changes something.
    Forbidden => FORBIDDEN, "forbidden";
    /// An admin route on a runner started without `SANDFIRE_ADMIN_TOKEN`.
    AdminDisabled => FORBIDDEN, "admin_disabled";
    /// No such route, or the tenant has no such object.
    NotFound => NOT_FOUND, "not_found";
    /// The request body did not arrive in time.
    RequestTimeout => REQUEST_TIMEOUT, "request_timeout";
    /// The object's state does not allow the operation, or a name is taken.
    Conflict => CONFLICT, "conflict";
    /// The body is larger than this runner accepts.
    PayloadTooLarge => PAYLOAD_TOO_LARGE, "payload_too_large";
    /// A JSON route called without `Content-Type: application/json`.
    UnsupportedMediaType => UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type";
    /// A name that breaks the naming rules.
    InvalidName => UNPROCESSABLE_ENTITY, "invalid_name";
    /// A run option or setting out of its range (the message names the field).
    InvalidOption => UNPROCESSABLE_ENTITY, "invalid_option";
    /// A value the database cannot store (e.g. NUL in text).
    InvalidValue => UNPROCESSABLE_ENTITY, "invalid_value";
    /// An entry of a batch is wrong (the message names it).
    InvalidBatch => UNPROCESSABLE_ENTITY, "invalid_batch";
    /// A cron expression that does not parse or never fires.
    InvalidCron => UNPROCESSABLE_ENTITY, "invalid_cron";
    /// An unknown IANA time zone.
    InvalidTimezone => UNPROCESSABLE_ENTITY, "invalid_timezone";
    /// A schedule's misfire policy is wrong.
    InvalidMisfire => UNPROCESSABLE_ENTITY, "invalid_misfire";
    /// A schedule's overlap policy is wrong.
    InvalidOverlap => UNPROCESSABLE_ENTITY, "invalid_overlap";
    /// A host pattern of a policy is wrong.
    InvalidPattern => UNPROCESSABLE_ENTITY, "invalid_pattern";
    /// A config name in a job's grant is wrong.
    InvalidConfigName => UNPROCESSABLE_ENTITY, "invalid_config_name";
    /// A grant names more config entries than allowed.
    TooManyConfigNames => UNPROCESSABLE_ENTITY, "too_many_config_names";
    /// A policy has more patterns than allowed.
    TooManyPatterns => UNPROCESSABLE_ENTITY, "too_many_patterns";
    /// A config value is larger than allowed.
    ValueTooLarge => UNPROCESSABLE_ENTITY, "value_too_large";
    /// A job's grant asks for more than the tenant's policy allows.
    OutsidePolicy => UNPROCESSABLE_ENTITY, "outside_policy";
    /// A schedule names a job the tenant does not have.
    UnknownJob => UNPROCESSABLE_ENTITY, "unknown_job";
    /// The uploaded bytes are not WebAssembly.
    NotWasm => UNPROCESSABLE_ENTITY, "not_wasm";
    /// A core module was uploaded where a component is needed.
    CoreModule => UNPROCESSABLE_ENTITY, "core_module";
    /// The component does not validate.
    InvalidComponent => UNPROCESSABLE_ENTITY, "invalid_component";
    /// The component imports something the sandbox does not provide.
    DisallowedImports => UNPROCESSABLE_ENTITY, "disallowed_imports";
    /// The component does not export the job world.
    WrongWorld => UNPROCESSABLE_ENTITY, "wrong_world";
    /// The component uses a wasm proposal the runner does not enable.
    UnsupportedProposal => UNPROCESSABLE_ENTITY, "unsupported_proposal";
    /// The component is beyond what a compile may cost.
    ComponentTooComplex => UNPROCESSABLE_ENTITY, "component_too_complex";
    /// Compiling the component took too long.
    CompileTimeout => UNPROCESSABLE_ENTITY, "compile_timeout";
    /// Compiling the component needed too much memory.
    CompileMemory => UNPROCESSABLE_ENTITY, "compile_memory";
    /// The compile probe failed.
    CompileProbeFailed => UNPROCESSABLE_ENTITY, "compile_probe_failed";
    /// A tenant quota refused the request (may carry `Retry-After`).
    QuotaExceeded => TOO_MANY_REQUESTS, "quota_exceeded";
    /// A bug or a broken database; details are in the runner's log.
    Internal => INTERNAL_SERVER_ERROR, "internal";
    /// The runner cannot reach its database right now.
    DatabaseUnavailable => SERVICE_UNAVAILABLE, "database_unavailable";
    /// The runner has as many requests in flight as it allows (`Retry-After`).
    Overloaded => SERVICE_UNAVAILABLE, "overloaded";
    /// Every compile slot stayed busy (`Retry-After`).
    CompilerBusy => SERVICE_UNAVAILABLE, "compiler_busy";
    /// Config values need the runner's secrets key, which is not set.
    SecretsKeyMissing => SERVICE_UNAVAILABLE, "secrets_key_missing";
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        self.code().status()
    }

    pub fn message(&self) -> &str {
        &self.detail().text
    }

    pub fn retry_after(&self) -> Option<u64> {
        self.detail().retry_after
    }

    /// The same error with `Retry-After: secs`.
    pub fn with_retry_after(mut self, secs: Option<u64>) -> ApiError {
        self.detail_mut().retry_after = secs;
        self
    }

    /// The same error with its message rewritten (e.g. prefixed with the entry it concerns).
    pub fn map_message(mut self, f: impl FnOnce(&str) -> String) -> ApiError {
        let detail = self.detail_mut();
        detail.text = f(&detail.text);
        self
    }

    /// `429 quota_exceeded`: the message names the limit and its value.
    pub fn quota(limit: &str, value: i64, hint: &str, retry_after: Option<u64>) -> ApiError {
        ApiError::QuotaExceeded(
            format!("quota exceeded: {limit} is {value} for this tenant; {hint}").into(),
        )
        .with_retry_after(retry_after)
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::BadRequest(message.into().into())
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::NotFound(message.into().into())
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::Conflict(message.into().into())
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::Unauthorized(message.into().into())
    }

    pub fn too_large(message: impl Into<String>) -> ApiError {
        ApiError::PayloadTooLarge(message.into().into())
    }

    pub fn invalid_option(message: impl Into<String>) -> ApiError {
        ApiError::InvalidOption(message.into().into())
    }

    pub fn invalid_name(message: impl Into<String>) -> ApiError {
        ApiError::InvalidName(message.into().into())
    }

    pub fn invalid_value(message: impl Into<String>) -> ApiError {
        ApiError::InvalidValue(message.into().into())
    }

    pub fn internal() -> ApiError {
        ApiError::Internal("the runner hit an internal error; it is logged on the runner".into())
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        match err {
            StoreError::Conflict(message) => ApiError::conflict(message),
            StoreError::JobChanged => ApiError::conflict(
                "the job changed (a new version was uploaded) while the run was being enqueued; \
                 nothing was created: retry",
            ),
            StoreError::QuotaExceeded { limit, value } => ApiError::quota(
                limit,
                value,
                "nothing was created; ask the operator to raise it or delete what you no longer need",
                None,
            ),
            // The store words these itself; the database's text is only logged (L1).
            StoreError::Invalid(message) => ApiError::invalid_value(format!(
                "a value of this request cannot be stored: {message}; fix it and retry"
            )),
            StoreError::Unavailable(e) => {
                tracing::warn!(error = %e, "database unavailable");
                ApiError::DatabaseUnavailable(
                    "the runner cannot reach its database right now; retry shortly".into(),
                )
            }
            StoreError::Other(e) => {
                tracing::error!(error = %e, "database error");
                ApiError::internal()
            }
        }
    }
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// What was wrong and how to fix it, in words.
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = axum::Json(ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.message().to_owned(),
            },
        });
        let mut response = (self.status(), body).into_response();
        if let Some(secs) = self.retry_after() {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.max(1).into());
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_table_entry() {
        for code in ErrorCode::ALL {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::Value::String(code.as_str().to_owned())
            );
            assert!(code.status().is_client_error() || code.status().is_server_error());
        }
    }

    #[test]
    fn the_body_keeps_its_wire_format() {
        let resp = ApiError::quota("max_active_runs", 3, "wait", Some(2)).into_response();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()[axum::http::header::RETRY_AFTER], "2");
        let body = ErrorBody {
            error: ErrorDetail {
                code: ErrorCode::NotFound,
                message: "no run".into(),
            },
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"error":{"code":"not_found","message":"no run"}}"#
        );
    }
}
