//! The dashboard's errors as HTML pages: 404 for anything the session may not see (another
//! tenant's run answers exactly like a run that does not exist), 403 for a read-only session's
//! actions, 400 for bad parameters, and 500 with nothing internal in it (the details are logged).

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::store::StoreError;

#[derive(Debug)]
pub struct UiError {
    pub status: StatusCode,
    pub title: &'static str,
    pub message: String,
}

pub type UiResult<T> = Result<T, UiError>;

impl UiError {
    pub fn not_found(message: impl Into<String>) -> UiError {
        UiError {
            status: StatusCode::NOT_FOUND,
            title: "Not found",
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> UiError {
        UiError {
            status: StatusCode::BAD_REQUEST,
            title: "Bad request",
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> UiError {
        UiError {
            status: StatusCode::FORBIDDEN,
            title: "Not allowed",
            message: message.into(),
        }
    }

    pub fn internal() -> UiError {
        UiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            title: "Something went wrong",
            message: "The dashboard could not load this page; the runner's log says why. Try \
                      again in a moment."
                .to_string(),
        }
    }
}

impl From<StoreError> for UiError {
    fn from(e: StoreError) -> Self {
        // The dashboard pool's statement timeout cancelled the query (SQLSTATE 57014).
        if let StoreError::Other(sqlx::Error::Database(db)) = &e
            && db.code().as_deref() == Some("57014")
        {
            tracing::warn!(error = %e, "dashboard: a query ran past the statement timeout");
            return UiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                title: "This page took too long",
                message: "The database stopped this page's query at the dashboard's time limit \
                          (--ui-statement-timeout), so it could not slow down the runs. Narrow \
                          the filters (a job, a state) or try again."
                    .to_string(),
            };
        }
        tracing::error!(error = %e, "dashboard: store error");
        UiError::internal()
    }
}

impl From<askama::Error> for UiError {
    fn from(e: askama::Error) -> Self {
        tracing::error!(error = %e, "dashboard: template error");
        UiError::internal()
    }
}

#[derive(Template)]
#[template(path = "ui/error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

/// A page with a title and a message, outside the signed-in layout.
pub fn plain_page(title: &str, message: &str) -> Html<String> {
    Html(
        ErrorPage { title, message }
            .render()
            .unwrap_or_else(|_| message.to_string()),
    )
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        (self.status, plain_page(self.title, &self.message)).into_response()
    }
}

/// Renders a template as a page.
pub fn render(t: &impl Template) -> UiResult<Html<String>> {
    Ok(Html(t.render()?))
}
