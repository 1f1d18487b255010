//! `/api/v1/clients` and `/api/v1/contacts`: list and show clients; create
//! or update them and their contacts (the import's rules and validation, one
//! record at a time).

use axum::body::Bytes;
use axum::extract::{Path, State};
use serde_json::json;

use super::{body, created, ok, ApiError, ApiResult};
use crate::db::contacts;
use crate::import::{self, ImportClient, ImportContact, ImportError, ImportFile};
use crate::web::WebState;

pub(super) async fn list(State(state): State<WebState>) -> ApiResult {
    let mut conn = state.app.db.conn().await?;
    ok(contacts::list_clients(&mut conn).await?)
}

pub(super) async fn show(State(state): State<WebState>, Path(id): Path<i64>) -> ApiResult {
    let mut conn = state.app.db.conn().await?;
    let client = contacts::list_clients(&mut conn)
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(|| ApiError::not_found(format!("client {id}")))?;
    let people = contacts::client_contacts(&mut conn, id).await?;
    ok(json!({
        "id": client.id,
        "name": client.name,
        "domains": client.domains,
        "contacts": people.iter().map(|c| json!({
            "id": c.id,
            "email": c.email,
            "name": c.name,
            "types": c.types,
        })).collect::<Vec<_>>(),
    }))
}

/// Creates a client (or adds domains and contacts to the one of that name).
pub(super) async fn create(State(state): State<WebState>, bytes: Bytes) -> ApiResult {
    let client: ImportClient = body(&bytes)?;
    let name = client.name.trim().to_string();
    run_import(
        &state,
        ImportFile {
            clients: vec![client],
            ..ImportFile::default()
        },
    )
    .await?;
    let mut conn = state.app.db.conn().await?;
    let id = contacts::find_client_by_name(&mut conn, &name)
        .await?
        .ok_or_else(|| ApiError::internal("the client just written is missing"))?;
    created(json!({ "id": id, "name": name }))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewContact {
    client_id: i64,
    email: String,
    #[serde(default)]
    name: Option<String>,
    /// primary, billing, technical (none: a Standard contact)
    #[serde(default)]
    types: Vec<String>,
    /// `false`: no optional mail (monthly statement, service report).
    #[serde(default)]
    optional_mail: Option<bool>,
}

/// Adds a contact to a client, or updates the name and types of the one
/// with that address.
pub(super) async fn add_contact(State(state): State<WebState>, bytes: Bytes) -> ApiResult {
    let new: NewContact = body(&bytes)?;
    let client = {
        let mut conn = state.app.db.conn().await?;
        contacts::client_name(&mut conn, new.client_id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("client {}", new.client_id)))?
    };
    let email = new.email.clone();
    run_import(
        &state,
        ImportFile {
            clients: vec![ImportClient {
                name: client,
                timezone: None,
                statement_mail: None,
                service_report: None,
                domains: Vec::new(),
                contacts: vec![ImportContact {
                    name: new.name,
                    email: new.email,
                    types: new.types,
                    optional_mail: new.optional_mail,
                }],
            }],
            ..ImportFile::default()
        },
    )
    .await?;
    let mut conn = state.app.db.conn().await?;
    let address = crate::domain::EmailAddress::parse(&email)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let contact = contacts::find_contact_by_email(&mut conn, &address)
        .await?
        .ok_or_else(|| ApiError::internal("the contact just written is missing"))?;
    created(json!({ "id": contact.id, "email": contact.email, "types": contact.types }))
}

/// Adds a prepaid hour block to a client (or updates the one of that name).
pub(super) async fn add_hour_block(State(state): State<WebState>, bytes: Bytes) -> ApiResult {
    let block: crate::import::ImportHourBlock = body(&bytes)?;
    let summary = run_import(
        &state,
        ImportFile {
            hour_blocks: vec![block],
            ..ImportFile::default()
        },
    )
    .await?;
    created(
        json!({ "added_or_updated": summary.hour_blocks, "unchanged": summary.hour_blocks_kept }),
    )
}

/// Runs the import for one request; its validation errors are the caller's.
pub(super) async fn run_import(
    state: &WebState,
    data: ImportFile,
) -> Result<import::ImportSummary, ApiError> {
    let now = state.app.clock.now_millis();
    match import::import(&state.app.db, &data, "request body", now).await {
        Ok(summary) => Ok(summary),
        Err(ImportError::Invalid { path, message, .. }) => {
            Err(ApiError::bad_request(format!("{path}: {message}")))
        }
        Err(ImportError::Db(e)) => Err(e.into()),
    }
}
