//! Clients, their mail domains and their contacts.

use sqlx::AnyConnection;

use super::{flag, DbError};
use crate::clock::Millis;
use crate::domain::{ContactTypes, EmailAddress, MailChoices, OptionalMail};

#[derive(Debug, Clone, serde::Serialize)]
pub struct Contact {
    pub id: i64,
    pub client_id: Option<i64>,
    pub email: String,
    pub name: Option<String>,
    pub types: ContactTypes,
    pub active: bool,
    /// Signed links carry this; bumping it revokes every older link.
    pub link_generation: i64,
    /// Still gets optional mail (statements, reports) at all: import's and
    /// the admin API's switch.
    pub optional_mail: bool,
    /// The contact's own choice per kind of optional mail (preferences page,
    /// one-click unsubscribe).
    pub choices: MailChoices,
}

impl Contact {
    /// Whether this person gets optional mail of `kind`.
    pub fn wants(&self, kind: OptionalMail) -> bool {
        self.optional_mail && self.choices.get(kind)
    }
}

type ContactRow = (
    i64,
    Option<i64>,
    String,
    Option<String>,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
);

fn contact_from_row(r: ContactRow) -> Contact {
    Contact {
        id: r.0,
        client_id: r.1,
        email: r.2,
        name: r.3,
        types: ContactTypes {
            primary: flag(r.4),
            billing: flag(r.5),
            technical: flag(r.6),
        },
        active: flag(r.7),
        link_generation: r.8,
        optional_mail: flag(r.9),
        choices: MailChoices {
            statement: flag(r.10),
            report: flag(r.11),
            announcements: flag(r.12),
            expiry_alerts: flag(r.13),
            card_expiry: flag(r.14),
            dunning: flag(r.15),
        },
    }
}

const CONTACT_COLUMNS: &str =
    "id, client_id, email, name, is_primary, is_billing, is_technical, active, link_generation, \
     optional_mail, statement_mail, report_mail, announcement_mail, expiry_mail, \
     card_expiry_mail, dunning_mail";

pub async fn find_contact_by_email(
    conn: &mut AnyConnection,
    email: &EmailAddress,
) -> Result<Option<Contact>, DbError> {
    let row: Option<ContactRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {CONTACT_COLUMNS} FROM contacts WHERE email = $1"
    )))
    .bind(email.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(contact_from_row))
}

/// The contacts of any of `emails` (each given as [`EmailAddress::as_str`]).
pub async fn find_contacts_by_emails(
    conn: &mut AnyConnection,
    emails: &[&str],
) -> Result<Vec<Contact>, DbError> {
    if emails.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {CONTACT_COLUMNS} FROM contacts WHERE email IN ({})",
        super::placeholder_rows(1, emails.len(), 1)
    );
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
    for email in emails {
        query = query.bind(*email);
    }
    let rows: Vec<ContactRow> = query.fetch_all(&mut *conn).await?;
    Ok(rows.into_iter().map(contact_from_row).collect())
}

pub async fn find_contact_by_id(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Option<Contact>, DbError> {
    let row: Option<ContactRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {CONTACT_COLUMNS} FROM contacts WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(contact_from_row))
}

/// The active contacts of a client, primary first, then by address.
pub async fn client_contacts(
    conn: &mut AnyConnection,
    client_id: i64,
) -> Result<Vec<Contact>, DbError> {
    let rows: Vec<ContactRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {CONTACT_COLUMNS} FROM contacts WHERE client_id = $1 AND active = 1 \
         ORDER BY is_primary DESC, email"
    )))
    .bind(client_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(contact_from_row).collect())
}

/// Revokes every link the contact holds (deactivation, address change).
pub async fn bump_link_generation(conn: &mut AnyConnection, id: i64) -> Result<(), DbError> {
    sqlx::query("UPDATE contacts SET link_generation = link_generation + 1 WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn find_client_by_domain(
    conn: &mut AnyConnection,
    domain: &str,
) -> Result<Option<i64>, DbError> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT client_id FROM client_domains WHERE domain = $1")
            .bind(domain)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.map(|r| r.0))
}

/// `(domain, client id)` of those of `domains` that belong to a client.
pub async fn find_clients_by_domains(
    conn: &mut AnyConnection,
    domains: &[&str],
) -> Result<Vec<(String, i64)>, DbError> {
    if domains.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT domain, client_id FROM client_domains WHERE domain IN ({})",
        super::placeholder_rows(1, domains.len(), 1)
    );
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
    for domain in domains {
        query = query.bind(*domain);
    }
    Ok(query.fetch_all(&mut *conn).await?)
}

/// `(id, name)` of the clients of `ids`.
pub async fn client_names(
    conn: &mut AnyConnection,
    ids: &[i64],
) -> Result<Vec<(i64, String)>, DbError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT id, name FROM clients WHERE id IN ({})",
        super::placeholder_rows(1, ids.len(), 1)
    );
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
    for id in ids {
        query = query.bind(*id);
    }
    Ok(query.fetch_all(&mut *conn).await?)
}

/// A client as listed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClientRow {
    pub id: i64,
    pub name: String,
    pub domains: Vec<String>,
}

pub async fn list_clients(conn: &mut AnyConnection) -> Result<Vec<ClientRow>, DbError> {
    let clients: Vec<(i64, String)> = sqlx::query_as("SELECT id, name FROM clients ORDER BY name")
        .fetch_all(&mut *conn)
        .await?;
    let domains: Vec<(i64, String)> =
        sqlx::query_as("SELECT client_id, domain FROM client_domains ORDER BY domain")
            .fetch_all(&mut *conn)
            .await?;
    Ok(clients
        .into_iter()
        .map(|(id, name)| ClientRow {
            id,
            name,
            domains: domains
                .iter()
                .filter(|d| d.0 == id)
                .map(|d| d.1.clone())
                .collect(),
        })
        .collect())
}

pub async fn find_client_by_name(
    conn: &mut AnyConnection,
    name: &str,
) -> Result<Option<i64>, DbError> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM clients WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|r| r.0))
}

pub async fn client_name(conn: &mut AnyConnection, id: i64) -> Result<Option<String>, DbError> {
    let row: Option<(String,)> = sqlx::query_as("SELECT name FROM clients WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|r| r.0))
}

/// How a contact came to exist (kept for the operator's information).
#[derive(Debug, Clone, Copy)]
pub enum ContactOrigin {
    Import,
    /// First mail from an unknown address of a client's domain.
    ClientDomain,
    /// First mail from an unknown address under `unknown_senders = "create"`.
    UnknownSender,
    /// Added by a primary or technical contact on the contacts page.
    Portal,
}

impl ContactOrigin {
    fn as_str(self) -> &'static str {
        match self {
            ContactOrigin::Import => "import",
            ContactOrigin::ClientDomain => "client-domain",
            ContactOrigin::UnknownSender => "unknown-sender",
            ContactOrigin::Portal => "portal",
        }
    }
}

pub async fn insert_contact(
    conn: &mut AnyConnection,
    client_id: Option<i64>,
    email: &EmailAddress,
    name: Option<&str>,
    types: ContactTypes,
    origin: ContactOrigin,
    now: Millis,
) -> Result<i64, DbError> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO contacts (client_id, email, name, is_primary, is_billing, is_technical, \
         active, link_generation, origin, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 1, 0, $7, $8) RETURNING id",
    )
    .bind(client_id)
    .bind(email.as_str())
    .bind(name)
    .bind(i64::from(types.primary))
    .bind(i64::from(types.billing))
    .bind(i64::from(types.technical))
    .bind(origin.as_str())
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

/// Creates the client `name` if missing; returns its id.
pub async fn upsert_client(
    conn: &mut AnyConnection,
    name: &str,
    now: Millis,
) -> Result<i64, DbError> {
    sqlx::query(
        "INSERT INTO clients (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let (id,): (i64,) = sqlx::query_as("SELECT id FROM clients WHERE name = $1")
        .bind(name)
        .fetch_one(&mut *conn)
        .await?;
    Ok(id)
}

/// Assigns `domain` to the client (moving it if another client had it).
pub async fn upsert_client_domain(
    conn: &mut AnyConnection,
    client_id: i64,
    domain: &str,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO client_domains (domain, client_id) VALUES ($1, $2) \
         ON CONFLICT (domain) DO UPDATE SET client_id = excluded.client_id \
         WHERE client_domains.client_id <> excluded.client_id",
    )
    .bind(domain)
    .bind(client_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Creates or updates the contact with this address as the import says; an
/// unchanged contact is not written at all, so re-importing is a no-op.
pub async fn upsert_imported_contact(
    conn: &mut AnyConnection,
    client_id: i64,
    email: &EmailAddress,
    name: Option<&str>,
    types: ContactTypes,
    now: Millis,
) -> Result<i64, DbError> {
    match find_contact_by_email(conn, email).await? {
        None => {
            insert_contact(
                conn,
                Some(client_id),
                email,
                name,
                types,
                ContactOrigin::Import,
                now,
            )
            .await
        }
        Some(existing) => {
            let same = existing.client_id == Some(client_id)
                && existing.name.as_deref() == name
                && existing.types == types;
            if !same {
                sqlx::query(
                    "UPDATE contacts SET client_id = $1, name = $2, is_primary = $3, \
                     is_billing = $4, is_technical = $5 WHERE id = $6",
                )
                .bind(client_id)
                .bind(name)
                .bind(i64::from(types.primary))
                .bind(i64::from(types.billing))
                .bind(i64::from(types.technical))
                .bind(existing.id)
                .execute(&mut *conn)
                .await?;
            }
            Ok(existing.id)
        }
    }
}

/// The IANA time zone stored for a client, if any.
pub async fn client_timezone(
    conn: &mut AnyConnection,
    client_id: i64,
) -> Result<Option<String>, DbError> {
    let row: Option<(Option<String>,)> =
        sqlx::query_as("SELECT timezone FROM clients WHERE id = $1")
            .bind(client_id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.and_then(|r| r.0))
}

/// Sets a client's time zone (an IANA name checked by the caller); an
/// unchanged zone is not written.
pub async fn set_client_timezone(
    conn: &mut AnyConnection,
    client_id: i64,
    timezone: &str,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE clients SET timezone = $1 WHERE id = $2 \
         AND (timezone IS NULL OR timezone <> $1)",
    )
    .bind(timezone)
    .bind(client_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Switches a contact's optional mail on or off.
pub async fn set_optional_mail(
    conn: &mut AnyConnection,
    id: i64,
    wanted: bool,
) -> Result<(), DbError> {
    sqlx::query("UPDATE contacts SET optional_mail = $1 WHERE id = $2 AND optional_mail <> $1")
        .bind(i64::from(wanted))
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Which optional monthly mails a client gets: (statement, service report).
pub async fn client_optional_mail(
    conn: &mut AnyConnection,
    client_id: i64,
) -> Result<(bool, bool), DbError> {
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT statement_mail, service_report FROM clients WHERE id = $1")
            .bind(client_id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.map(|r| (r.0 != 0, r.1 != 0)).unwrap_or((false, false)))
}

/// Sets which optional monthly mails a client gets.
pub async fn set_client_optional_mail(
    conn: &mut AnyConnection,
    client_id: i64,
    statement: bool,
    report: bool,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE clients SET statement_mail = $1, service_report = $2 WHERE id = $3 \
         AND (statement_mail <> $1 OR service_report <> $2)",
    )
    .bind(i64::from(statement))
    .bind(i64::from(report))
    .bind(client_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Every client's id and zone, with which optional monthly mails it gets.
pub async fn clients_for_monthly(
    conn: &mut AnyConnection,
) -> Result<Vec<(i64, Option<String>, bool, bool)>, DbError> {
    let rows: Vec<(i64, Option<String>, i64, i64)> = sqlx::query_as(
        "SELECT id, timezone, statement_mail, service_report FROM clients ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.0, r.1, r.2 != 0, r.3 != 0))
        .collect())
}
