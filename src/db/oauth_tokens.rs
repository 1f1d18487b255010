//! The `oauth_grants` table: per OAuth2 grant of a mail account, the refresh
//! token the token endpoint rotated to (already encrypted by the caller:
//! nothing here sees a token in clear) and whether, and for which refresh
//! token, the grant was found revoked. Keys and fingerprints are opaque
//! hex strings chosen by `mail::oauth2`.

use sqlx::AnyConnection;

use super::DbError;
use crate::clock::Millis;

/// What is stored about one grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGrant {
    /// Fingerprint of the configured refresh token `refresh_token` descends from.
    pub origin_fingerprint: String,
    /// The rotated refresh token, encrypted; `None`: the configured one is current.
    pub refresh_token: Option<String>,
    /// Fingerprint of the refresh token the endpoint refused, while revoked.
    pub revoked_fingerprint: Option<String>,
}

pub async fn get(
    conn: &mut AnyConnection,
    grant_key: &str,
) -> Result<Option<StoredGrant>, DbError> {
    let row: Option<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT origin_fingerprint, refresh_token, revoked_fingerprint FROM oauth_grants \
         WHERE grant_key = $1",
    )
    .bind(grant_key)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(
        |(origin_fingerprint, refresh_token, revoked_fingerprint)| StoredGrant {
            origin_fingerprint,
            refresh_token,
            revoked_fingerprint,
        },
    ))
}

/// Saves the refresh token the endpoint rotated to (encrypted), descended
/// from the configured token `origin_fingerprint`; the grant works again.
pub async fn save_rotated(
    conn: &mut AnyConnection,
    grant_key: &str,
    credential: &str,
    origin_fingerprint: &str,
    encrypted_refresh_token: &str,
    now: Millis,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO oauth_grants (grant_key, credential, origin_fingerprint, refresh_token, \
         revoked_fingerprint, revoked_at, updated_at) VALUES ($1, $2, $3, $4, NULL, NULL, $5) \
         ON CONFLICT (grant_key) DO UPDATE SET credential = $2, origin_fingerprint = $3, \
         refresh_token = $4, revoked_fingerprint = NULL, revoked_at = NULL, updated_at = $5",
    )
    .bind(grant_key)
    .bind(credential)
    .bind(origin_fingerprint)
    .bind(encrypted_refresh_token)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The grant works (again): forgets a revocation. Returns whether one was recorded.
pub async fn clear_revoked(
    conn: &mut AnyConnection,
    grant_key: &str,
    now: Millis,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE oauth_grants SET revoked_fingerprint = NULL, revoked_at = NULL, updated_at = $2 \
         WHERE grant_key = $1 AND revoked_fingerprint IS NOT NULL",
    )
    .bind(grant_key)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Records that the endpoint refused the refresh token `revoked_fingerprint`.
/// Returns true only the first time for that token (the caller tells the
/// operators then, in the same transaction), false when it was known.
pub async fn mark_revoked(
    conn: &mut AnyConnection,
    grant_key: &str,
    credential: &str,
    origin_fingerprint: &str,
    revoked_fingerprint: &str,
    now: Millis,
) -> Result<bool, DbError> {
    sqlx::query(
        "INSERT INTO oauth_grants (grant_key, credential, origin_fingerprint, refresh_token, \
         revoked_fingerprint, revoked_at, updated_at) VALUES ($1, $2, $3, NULL, NULL, NULL, $4) \
         ON CONFLICT (grant_key) DO NOTHING",
    )
    .bind(grant_key)
    .bind(credential)
    .bind(origin_fingerprint)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let done = sqlx::query(
        "UPDATE oauth_grants SET revoked_fingerprint = $2, revoked_at = $3, updated_at = $3 \
         WHERE grant_key = $1 AND (revoked_fingerprint IS NULL OR revoked_fingerprint <> $2)",
    )
    .bind(grant_key)
    .bind(revoked_fingerprint)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() > 0)
}
