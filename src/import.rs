//! `postdesk import FILE.json`: clients, their domains and contacts. Idempotent:
//! importing the same file twice leaves the database exactly as after the
//! first time (unchanged rows are not written at all).
//!
//! ```json
//! {"clients":[{"name":"Customer Ltd","domains":["customer.test"],
//!   "contacts":[{"name":"Alice","email":"alice@customer.test","types":["primary"]}]}]}
//! ```

use serde::Deserialize;

use crate::clock::Millis;
use crate::db::{contacts, Db, DbError};
use crate::domain::{ContactTypes, EmailAddress};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportFile {
    #[serde(default)]
    pub clients: Vec<ImportClient>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportClient {
    pub name: String,
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub contacts: Vec<ImportContact>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportContact {
    pub name: Option<String>,
    pub email: String,
    #[serde(default)]
    pub types: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{file}: {path}: {message}")]
    Invalid {
        file: String,
        path: String,
        message: String,
    },
    #[error(transparent)]
    Db(#[from] DbError),
}

#[derive(Debug, Default, serde::Serialize, PartialEq, Eq)]
pub struct ImportSummary {
    pub clients: usize,
    pub domains: usize,
    pub contacts: usize,
}

/// A validated import: every address and type parsed before anything is written.
struct ValidClient {
    name: String,
    domains: Vec<String>,
    contacts: Vec<(EmailAddress, Option<String>, ContactTypes)>,
}

pub fn parse(text: &str, file: &str) -> Result<ImportFile, ImportError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| ImportError::Invalid {
        file: file.into(),
        path: e.path().to_string(),
        message: e.inner().to_string(),
    })
}

fn validate(data: &ImportFile, file: &str) -> Result<Vec<ValidClient>, ImportError> {
    let invalid = |path: String, message: String| ImportError::Invalid {
        file: file.into(),
        path,
        message,
    };
    let mut out = Vec::new();
    for (i, c) in data.clients.iter().enumerate() {
        let name = c.name.trim().to_string();
        if name.is_empty() {
            return Err(invalid(
                format!("clients[{i}].name"),
                "must not be empty".into(),
            ));
        }
        let mut domains = Vec::new();
        for (j, d) in c.domains.iter().enumerate() {
            // A domain is valid when an address in it is.
            let probe = EmailAddress::parse(&format!("x@{}", d.trim()))
                .map_err(|e| invalid(format!("clients[{i}].domains[{j}]"), e.to_string()))?;
            domains.push(probe.domain().to_string());
        }
        let mut contacts = Vec::new();
        for (j, ct) in c.contacts.iter().enumerate() {
            let email = EmailAddress::parse(&ct.email)
                .map_err(|e| invalid(format!("clients[{i}].contacts[{j}].email"), e.to_string()))?;
            let types = ContactTypes::parse_list(&ct.types)
                .map_err(|e| invalid(format!("clients[{i}].contacts[{j}].types"), e))?;
            let name = ct
                .name
                .as_ref()
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty());
            contacts.push((email, name, types));
        }
        out.push(ValidClient {
            name,
            domains,
            contacts,
        });
    }
    Ok(out)
}

/// Applies `data` in one transaction.
pub async fn import(
    db: &Db,
    data: &ImportFile,
    file: &str,
    now: Millis,
) -> Result<ImportSummary, ImportError> {
    let clients = validate(data, file)?;
    let mut summary = ImportSummary::default();
    let mut tx = db.begin().await?;
    for c in &clients {
        let client_id = contacts::upsert_client(&mut tx, &c.name, now).await?;
        summary.clients += 1;
        for d in &c.domains {
            contacts::upsert_client_domain(&mut tx, client_id, d).await?;
            summary.domains += 1;
        }
        for (email, name, types) in &c.contacts {
            contacts::upsert_imported_contact(
                &mut tx,
                client_id,
                email,
                name.as_deref(),
                *types,
                now,
            )
            .await?;
            summary.contacts += 1;
        }
    }
    tx.commit().await.map_err(DbError::from)?;
    Ok(summary)
}
