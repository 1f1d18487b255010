//! `POST /webhooks/stripe`: the provider tells us money moved. The raw body
//! is verified against the configured signing secrets (any `v1` signature,
//! 5 minutes of tolerance) before anything is read from it; then
//! `billing::webhook` re-fetches the object and applies it once. Answers:
//! 200 when applied, ignored or a duplicate (so the provider stops sending),
//! 400 for a bad signature, 503 when we could not apply it (so it retries).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::WebState;
use crate::billing::webhook::{apply_event, WebhookOutcome};
use crate::payments::verify;

pub(crate) async fn stripe(
    State(state): State<WebState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (Some(provider), Some(stripe)) = (&state.app.payments, &state.app.config.payments) else {
        return (StatusCode::NOT_FOUND, "payments are not configured").into_response();
    };
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let now = state.app.clock.now_millis() / 1000;
    let event = match verify(&body, signature, &stripe.webhook_secrets, now) {
        Ok(event) => event,
        Err(e) => {
            tracing::warn!(reason = %e, "webhook refused");
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "signature not valid"})),
            )
                .into_response();
        }
    };
    match apply_event(&state.app, provider, &event).await {
        Ok(outcome) => {
            let result = match outcome {
                WebhookOutcome::Applied => "applied",
                WebhookOutcome::Duplicate => "duplicate",
                WebhookOutcome::Ignored(why) => why,
            };
            tracing::info!(event = %event.id, result, "webhook");
            (StatusCode::OK, Json(json!({ "result": result }))).into_response()
        }
        Err(e) => {
            tracing::error!(event = %event.id, error = %format!("{e:#}"), "webhook not applied");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "try again"})),
            )
                .into_response()
        }
    }
}
