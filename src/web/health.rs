//! What operators and their tools ask of a running daemon: `/healthz` (the
//! process answers), `/readyz` (the database answers and every mailbox's
//! IMAP session is up, or the mailbox is watched by another replica, and
//! no OAuth2 grant was revoked; 503 naming what is not: a mailbox whose
//! grant was revoked reads `oauth2-grant-revoked`, and `oauth2` lists every
//! grant) and `/metrics` (Prometheus text format, behind the admin token).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::WebState;
use crate::db::{mailbox_leases, outbox};

pub(crate) async fn healthz() -> Response {
    (StatusCode::OK, "ok\n").into_response()
}

pub(crate) async fn readyz(State(state): State<WebState>) -> Response {
    let app = &state.app;
    let database = match app.db.ping().await {
        Ok(()) => "ok".to_string(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database unavailable");
            "unavailable".to_string()
        }
    };
    let mut ready = database == "ok";
    let mut mailboxes = serde_json::Map::new();
    for m in &app.config.mailboxes {
        let revoked = app
            .oauth
            .for_mailbox(&m.name)
            .is_some_and(|t| t.is_revoked());
        let state = if app.metrics.mailbox(&m.name).get() == 1 {
            "connected"
        } else if revoked {
            "oauth2-grant-revoked"
        } else if app.metrics.mailbox_lease(&m.name).get() == 0
            && leased_elsewhere(app, &m.name).await
        {
            // Another replica watches it: nothing for this one to do.
            "standby"
        } else {
            "disconnected"
        };
        ready &= state == "connected" || state == "standby";
        mailboxes.insert(m.name.clone(), json!(state));
    }
    // Every grant, the SMTP sender's too: a revoked one needs an operator.
    let mut oauth2 = serde_json::Map::new();
    for grant in app.oauth.all() {
        let revoked = grant.is_revoked();
        ready &= !revoked;
        oauth2.insert(
            grant.name().to_string(),
            json!({
                "state": if revoked { "revoked" } else { "valid" },
                "used_by": grant.used_by(),
            }),
        );
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "ready": ready,
            "database": database,
            "mailboxes": mailboxes,
            "oauth2": oauth2,
        })),
    )
        .into_response()
}

/// Whether another replica holds a live lease on `mailbox`.
async fn leased_elsewhere(app: &crate::app::App, mailbox: &str) -> bool {
    let now = app.clock.now_millis();
    let lease = async {
        let mut conn = app.db.conn().await?;
        mailbox_leases::lease_of(&mut conn, mailbox).await
    }
    .await;
    matches!(lease, Ok(Some(l)) if *l.holder != *app.replica && l.expires_at > now)
}

pub(crate) async fn metrics(State(state): State<WebState>) -> Response {
    let app = &state.app;
    let now = app.clock.now_millis();
    let figures = async {
        let mut conn = app.db.conn().await?;
        let depth = outbox::pending_count(&mut conn).await?;
        let oldest = outbox::oldest_pending(&mut conn).await?;
        Ok::<_, crate::db::DbError>((depth, oldest))
    }
    .await;
    let (depth, age) = match figures {
        Ok((depth, oldest)) => (depth, oldest.map(|t| (now - t).max(0) / 1000).unwrap_or(0)),
        Err(e) => {
            // The process's own counters are still worth a scrape.
            tracing::warn!(error = %e, "metrics: database unavailable");
            (-1, -1)
        }
    };
    let mut response = app.metrics.render(depth, age).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
    );
    response
}
