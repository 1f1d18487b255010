//! Things of a client's that lapse — domains, certificates, asset warranties,
//! contracts — and the saved cards that would fail an auto-pay. The expiry
//! job (`crate::schedule::expiry`) reads them; import and the certificate
//! probe write them.

use sqlx::AnyConnection;

use super::DbError;
use crate::clock::Millis;

/// What kind of thing expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ItemKind {
    Domain,
    Certificate,
    Warranty,
    Contract,
}

impl ItemKind {
    pub const ALL: [ItemKind; 4] = [
        Self::Domain,
        Self::Certificate,
        Self::Warranty,
        Self::Contract,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Domain => "domain",
            Self::Certificate => "certificate",
            Self::Warranty => "warranty",
            Self::Contract => "contract",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// How a mail names it: "Domain", "Certificate", "Warranty", "Contract".
    pub fn label(self) -> &'static str {
        match self {
            Self::Domain => "Domain",
            Self::Certificate => "Certificate",
            Self::Warranty => "Warranty",
            Self::Contract => "Contract",
        }
    }
}

/// An item to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewItem {
    pub client_id: i64,
    pub kind: ItemKind,
    pub name: String,
    pub expires_on: chrono::NaiveDate,
    pub probe: bool,
    pub probe_port: Option<u16>,
    pub notes: Option<String>,
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    Added,
    /// A new date (a renewal) or other details.
    Updated,
    Unchanged,
}

/// Adds the item, or brings the one of the same client, kind and name up to
/// date. An unchanged item is not written (import stays idempotent).
pub async fn upsert_item(
    conn: &mut AnyConnection,
    item: &NewItem,
    now: Millis,
) -> Result<Upserted, DbError> {
    type Existing = (i64, String, i64, Option<i64>, Option<String>, i64);
    let existing: Option<Existing> = sqlx::query_as(
        "SELECT id, expires_on, probe, probe_port, notes, active FROM expiring_items \
         WHERE client_id = $1 AND kind = $2 AND name = $3",
    )
    .bind(item.client_id)
    .bind(item.kind.as_str())
    .bind(&item.name)
    .fetch_optional(&mut *conn)
    .await?;
    let expires_on = item.expires_on.to_string();
    let port = item.probe_port.map(i64::from);
    match existing {
        None => {
            sqlx::query(
                "INSERT INTO expiring_items (client_id, kind, name, expires_on, probe, probe_port, \
                 notes, active, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $8)",
            )
            .bind(item.client_id)
            .bind(item.kind.as_str())
            .bind(&item.name)
            .bind(&expires_on)
            .bind(i64::from(item.probe))
            .bind(port)
            .bind(item.notes.as_deref())
            .bind(now)
            .execute(&mut *conn)
            .await?;
            Ok(Upserted::Added)
        }
        Some(e)
            if e.1 == expires_on
                && e.2 == i64::from(item.probe)
                && e.3 == port
                && e.4 == item.notes
                && e.5 == 1 =>
        {
            Ok(Upserted::Unchanged)
        }
        Some(e) => {
            sqlx::query(
                "UPDATE expiring_items SET expires_on = $1, probe = $2, probe_port = $3, notes = $4, \
                 active = 1, updated_at = $5 WHERE id = $6",
            )
            .bind(&expires_on)
            .bind(i64::from(item.probe))
            .bind(port)
            .bind(item.notes.as_deref())
            .bind(now)
            .bind(e.0)
            .execute(&mut *conn)
            .await?;
            Ok(Upserted::Updated)
        }
    }
}

/// An item as the expiry job sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Item {
    pub id: i64,
    pub client_id: i64,
    pub kind: String,
    pub name: String,
    pub expires_on: String,
    pub active: bool,
    pub issuer: Option<String>,
    pub probe_error: Option<String>,
    pub client_timezone: Option<String>,
}

const ITEM_COLUMNS: &str = "e.id, e.client_id, e.kind, e.name, e.expires_on, e.active, e.issuer, \
     e.probe_error, c.timezone FROM expiring_items e JOIN clients c ON c.id = e.client_id";

type ItemRow = (
    i64,
    i64,
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn item_of(r: ItemRow) -> Item {
    Item {
        id: r.0,
        client_id: r.1,
        kind: r.2,
        name: r.3,
        expires_on: r.4,
        active: r.5 != 0,
        issuer: r.6,
        probe_error: r.7,
        client_timezone: r.8,
    }
}

/// Active items expiring between `from` and `to` (dates, inclusive).
pub async fn expiring_between(
    conn: &mut AnyConnection,
    from: &str,
    to: &str,
) -> Result<Vec<Item>, DbError> {
    let rows: Vec<ItemRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ITEM_COLUMNS} WHERE e.active = 1 AND e.expires_on >= $1 AND e.expires_on <= $2"
    )))
    .bind(from)
    .bind(to)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(item_of).collect())
}

pub async fn item(conn: &mut AnyConnection, id: i64) -> Result<Option<Item>, DbError> {
    let row: Option<ItemRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ITEM_COLUMNS} WHERE e.id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(item_of))
}

/// A certificate to read live: (id, host, port).
pub async fn certificates_to_probe(
    conn: &mut AnyConnection,
) -> Result<Vec<(i64, String, u16)>, DbError> {
    let rows: Vec<(i64, String, Option<i64>)> = sqlx::query_as(
        "SELECT id, name, probe_port FROM expiring_items \
         WHERE active = 1 AND probe = 1 AND kind = 'certificate' ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.0,
                r.1,
                r.2.and_then(|p| u16::try_from(p).ok()).unwrap_or(443),
            )
        })
        .collect())
}

/// Stores what a probe read: the certificate's real expiry (a renewed
/// certificate re-arms its alerts) and issuer, or why the probe failed.
pub async fn record_probe(
    conn: &mut AnyConnection,
    id: i64,
    result: Result<(&str, &str), &str>,
    now: Millis,
) -> Result<(), DbError> {
    match result {
        Ok((expires_on, issuer)) => {
            sqlx::query(
                "UPDATE expiring_items SET expires_on = $1, issuer = $2, probe_error = NULL, \
                 probed_at = $3, updated_at = $3 WHERE id = $4",
            )
            .bind(expires_on)
            .bind(issuer)
            .bind(now)
            .bind(id)
            .execute(&mut *conn)
            .await?;
        }
        Err(error) => {
            sqlx::query("UPDATE expiring_items SET probe_error = $1, probed_at = $2 WHERE id = $3")
                .bind(error)
                .bind(now)
                .bind(id)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

/// A saved card that pays an auto-pay recurring invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutopayCard {
    pub method_id: i64,
    pub client_id: i64,
    pub brand: Option<String>,
    pub last4: Option<String>,
    pub exp_month: i64,
    pub exp_year: i64,
    /// The earliest next bill date it is due to pay.
    pub next_charge: String,
    pub client_timezone: Option<String>,
}

/// Saved cards (with an expiry) on active auto-pay definitions, of one
/// client or (`None`) of all.
pub async fn autopay_cards(
    conn: &mut AnyConnection,
    client_id: Option<i64>,
) -> Result<Vec<AutopayCard>, DbError> {
    type Row = (
        i64,
        i64,
        Option<String>,
        Option<String>,
        i64,
        i64,
        String,
        Option<String>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT m.id, m.client_id, m.brand, m.last4, m.exp_month, m.exp_year, \
         MIN(r.next_bill_date), c.timezone \
         FROM payment_methods m \
         JOIN recurring_invoices r ON r.payment_method_id = m.id \
         JOIN clients c ON c.id = m.client_id \
         WHERE m.removed_at IS NULL AND m.kind = 'card' AND m.exp_month IS NOT NULL \
         AND m.exp_year IS NOT NULL AND r.active = 1 AND r.auto_pay = 1 \
         AND (CAST($1 AS BIGINT) IS NULL OR m.client_id = $1) \
         GROUP BY m.id, m.client_id, m.brand, m.last4, m.exp_month, m.exp_year, c.timezone",
    )
    .bind(client_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| AutopayCard {
            method_id: r.0,
            client_id: r.1,
            brand: r.2,
            last4: r.3,
            exp_month: r.4,
            exp_year: r.5,
            next_charge: r.6,
            client_timezone: r.7,
        })
        .collect())
}
