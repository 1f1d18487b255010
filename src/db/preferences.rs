//! A contact's choices of optional mail (SPEC §4): the preferences page and
//! RFC 8058 one-click unsubscribe write them; the monthly jobs read them with
//! the contact (`contacts::Contact::wants`).

use sqlx::AnyConnection;

use super::DbError;
use crate::domain::{MailChoices, OptionalMail};

/// Saves the choices the person made on the preferences page. Choosing is
/// saying what one wants: the all-or-nothing switch of import and the admin
/// API is turned on with it, so what was ticked is what arrives.
pub async fn save_choices(
    conn: &mut AnyConnection,
    contact_id: i64,
    choices: MailChoices,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE contacts SET optional_mail = 1, statement_mail = $1, report_mail = $2, \
         announcement_mail = $3, expiry_mail = $4, card_expiry_mail = $5, dunning_mail = $6 \
         WHERE id = $7",
    )
    .bind(i64::from(choices.statement))
    .bind(i64::from(choices.report))
    .bind(i64::from(choices.announcements))
    .bind(i64::from(choices.expiry_alerts))
    .bind(i64::from(choices.card_expiry))
    .bind(i64::from(choices.dunning))
    .bind(contact_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One-click unsubscribe from one kind of optional mail. True when it
/// changed something (a repeated POST changes nothing).
pub async fn unsubscribe(
    conn: &mut AnyConnection,
    contact_id: i64,
    kind: OptionalMail,
) -> Result<bool, DbError> {
    let column = match kind {
        OptionalMail::Statement => "statement_mail",
        OptionalMail::Report => "report_mail",
        OptionalMail::Announcements => "announcement_mail",
        OptionalMail::ExpiryAlerts => "expiry_mail",
        OptionalMail::CardExpiry => "card_expiry_mail",
        OptionalMail::Dunning => "dunning_mail",
    };
    // `column` is one of six fixed names, never input.
    let done = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE contacts SET {column} = 0 WHERE id = $1 AND {column} <> 0"
    )))
    .bind(contact_id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() > 0)
}
