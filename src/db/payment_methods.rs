//! Saved payment methods (the provider's references and what may be shown:
//! brand, last 4, expiry — never card data), the provider's customer record
//! of each client, and which method pays a recurring invoice automatically.

use sqlx::AnyConnection;

use super::DbError;

/// A saved method as listed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SavedMethod {
    pub id: i64,
    pub client_id: i64,
    pub provider: String,
    pub provider_customer: String,
    pub provider_method: String,
    /// card, us-bank-account, sepa-debit
    pub kind: String,
    pub brand: Option<String>,
    pub last4: Option<String>,
    pub exp_month: Option<i64>,
    pub exp_year: Option<i64>,
    pub consent_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewMethod<'a> {
    pub client_id: i64,
    pub provider: &'a str,
    pub provider_customer: &'a str,
    pub provider_method: &'a str,
    pub kind: &'a str,
    pub brand: Option<&'a str>,
    pub last4: Option<&'a str>,
    pub exp_month: Option<i64>,
    pub exp_year: Option<i64>,
    /// When the client agreed to future charges (the setup's completion).
    pub consent_at: i64,
}

/// Records a saved method; a method already known (a replayed setup) is
/// left as it is. Returns its id.
pub async fn save_method(
    conn: &mut AnyConnection,
    m: &NewMethod<'_>,
    now: i64,
) -> Result<i64, DbError> {
    sqlx::query(
        "INSERT INTO payment_methods (client_id, provider, provider_customer, provider_method, \
         kind, brand, last4, exp_month, exp_year, consent_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (provider_method) DO NOTHING",
    )
    .bind(m.client_id)
    .bind(m.provider)
    .bind(m.provider_customer)
    .bind(m.provider_method)
    .bind(m.kind)
    .bind(m.brand)
    .bind(m.last4)
    .bind(m.exp_month)
    .bind(m.exp_year)
    .bind(m.consent_at)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let (id,): (i64,) = sqlx::query_as("SELECT id FROM payment_methods WHERE provider_method = $1")
        .bind(m.provider_method)
        .fetch_one(&mut *conn)
        .await?;
    Ok(id)
}

type MethodRow = (
    i64,
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    i64,
);

const METHOD_COLUMNS: &str = "id, client_id, provider, provider_customer, provider_method, kind, \
     brand, last4, exp_month, exp_year, consent_at";

fn method_of(r: MethodRow) -> SavedMethod {
    SavedMethod {
        id: r.0,
        client_id: r.1,
        provider: r.2,
        provider_customer: r.3,
        provider_method: r.4,
        kind: r.5,
        brand: r.6,
        last4: r.7,
        exp_month: r.8,
        exp_year: r.9,
        consent_at: r.10,
    }
}

/// A client's saved methods that were not removed, oldest first.
pub async fn client_methods(
    conn: &mut AnyConnection,
    client_id: i64,
) -> Result<Vec<SavedMethod>, DbError> {
    let rows: Vec<MethodRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {METHOD_COLUMNS} FROM payment_methods \
         WHERE client_id = $1 AND removed_at IS NULL ORDER BY id"
    )))
    .bind(client_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(method_of).collect())
}

/// Saved method `id` if it is `client_id`'s and not removed.
pub async fn method_of_client(
    conn: &mut AnyConnection,
    id: i64,
    client_id: i64,
) -> Result<Option<SavedMethod>, DbError> {
    let row: Option<MethodRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {METHOD_COLUMNS} FROM payment_methods \
         WHERE id = $1 AND client_id = $2 AND removed_at IS NULL"
    )))
    .bind(id)
    .bind(client_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(method_of))
}

/// Marks a method removed and takes it off every recurring invoice it paid,
/// so nothing charges it again. False when it was not the client's or was
/// removed already.
pub async fn remove_method(
    conn: &mut AnyConnection,
    id: i64,
    client_id: i64,
    now: i64,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE payment_methods SET removed_at = $1 \
         WHERE id = $2 AND client_id = $3 AND removed_at IS NULL",
    )
    .bind(now)
    .bind(id)
    .bind(client_id)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE recurring_invoices SET auto_pay = 0, payment_method_id = NULL, updated_at = $1 \
         WHERE payment_method_id = $2",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

/// Switches auto-pay of recurring invoice `recurring_id` of `client_id` on
/// (with `method_id`, which must be the client's) or off (`None`). False
/// when the recurring invoice or the method is not the client's.
pub async fn set_auto_pay(
    conn: &mut AnyConnection,
    recurring_id: i64,
    client_id: i64,
    method_id: Option<i64>,
    now: i64,
) -> Result<bool, DbError> {
    if let Some(m) = method_id {
        if method_of_client(&mut *conn, m, client_id).await?.is_none() {
            return Ok(false);
        }
    }
    let done = sqlx::query(
        "UPDATE recurring_invoices SET auto_pay = $1, payment_method_id = $2, updated_at = $3 \
         WHERE id = $4 AND client_id = $5 AND active = 1",
    )
    .bind(i64::from(method_id.is_some()))
    .bind(method_id)
    .bind(now)
    .bind(recurring_id)
    .bind(client_id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The provider's customer of `client_id`, if one was created.
pub async fn provider_customer(
    conn: &mut AnyConnection,
    client_id: i64,
    provider: &str,
) -> Result<Option<String>, DbError> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT customer_id FROM provider_customers WHERE client_id = $1 AND provider = $2",
    )
    .bind(client_id)
    .bind(provider)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|r| r.0))
}

/// Remembers the provider's customer of a client (the first one stays).
pub async fn set_provider_customer(
    conn: &mut AnyConnection,
    client_id: i64,
    provider: &str,
    customer_id: &str,
    now: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO provider_customers (client_id, provider, customer_id, created_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (client_id, provider) DO NOTHING",
    )
    .bind(client_id)
    .bind(provider)
    .bind(customer_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
