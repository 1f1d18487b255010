//! The admin JSON API under `/api/v1` (documented in `docs/openapi.yaml`):
//! clients, contacts, invoices, quotes, manual payments and tickets, for the
//! operator's own tools. Every request needs `Authorization: Bearer
//! <web.admin_token>`; without a configured token the API does not exist
//! (404). Errors are JSON: `{"error": "<message>"}`.
//!
//! Handlers only translate HTTP: creation reuses the import's validation,
//! billing goes through `billing`, ticket actions are written as the mail a
//! technician would send and take the ingest path. No SQL here.

mod clients;
mod invoices;
mod tickets;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::WebState;

pub(super) fn router(state: WebState) -> Router<WebState> {
    Router::new()
        .route("/clients", get(clients::list).post(clients::create))
        .route("/clients/{id}", get(clients::show))
        .route("/contacts", post(clients::add_contact))
        .route("/hour-blocks", post(clients::add_hour_block))
        .route("/invoices", get(invoices::list).post(invoices::create))
        .route("/invoices/{number}", get(invoices::show))
        .route("/invoices/{number}/send", post(invoices::send))
        .route("/invoices/{number}/void", post(invoices::void))
        .route("/invoices/{number}/remind", post(invoices::remind))
        .route("/invoices/{number}/dispute", post(invoices::dispute))
        .route("/invoices/{number}/payments", post(invoices::pay))
        .route("/quotes", post(invoices::create_quote))
        .route("/quotes/{number}", get(invoices::show_quote))
        .route("/quotes/{number}/send", post(invoices::send_quote))
        .route("/tickets", get(tickets::list).post(tickets::create))
        .route("/tickets/{number}", get(tickets::show))
        .route("/tickets/{number}/replies", post(tickets::reply))
        .route("/tickets/{number}/status", post(tickets::set_status))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_token,
        ))
        // Outside the token check: refused calls are recorded too.
        .layer(axum::middleware::from_fn_with_state(
            state,
            super::audit::api_layer,
        ))
}

/// An error answer: a status and a message for the operator.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("{what} not found"))
    }

    /// A failure of ours: logged once here, answered without details.
    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "admin API");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error; see the server log",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> Self {
        if e.is_transient() {
            tracing::warn!(error = %e, "admin API: database unavailable");
            return Self::new(StatusCode::SERVICE_UNAVAILABLE, "database unavailable");
        }
        Self::internal(e)
    }
}

pub(crate) type ApiResult = Result<Response, ApiError>;

/// `200` with `value` as JSON.
pub(crate) fn ok(value: impl serde::Serialize) -> ApiResult {
    Ok(Json(value).into_response())
}

/// `201` with `value` as JSON.
pub(crate) fn created(value: impl serde::Serialize) -> ApiResult {
    Ok((StatusCode::CREATED, Json(value)).into_response())
}

/// The JSON body, or a 400 that says where it is wrong.
pub(crate) fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            ApiError::bad_request(format!("request body: {inner}"))
        } else {
            ApiError::bad_request(format!("request body: {path}: {inner}"))
        }
    })
}

pub(crate) async fn require_token(
    State(state): State<WebState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = state.app.config.web.admin_token.as_deref() else {
        return ApiError::new(StatusCode::NOT_FOUND, "the admin API is not enabled")
            .into_response();
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        let mut response = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "a valid `Authorization: Bearer <token>` header is required",
        )
        .into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return response;
    }
    next.run(request).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
