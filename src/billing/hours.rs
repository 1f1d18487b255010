//! Prepaid hours: staff's `#time` entries are drawn from the client's open
//! hour blocks, oldest first (an entry larger than a block's rest is split;
//! what no block covers stays unbilled until a recurring invoice takes it,
//! when `[hours] bill_unbilled_time` is on). When a block passes 80 % and
//! 100 % used, the client's primary contacts are told — once per block and
//! threshold, in the transaction of the entry that crossed it.

use serde_json::json;

use super::notify::{mail_contacts, Notice, NoticeError};
use crate::clock::Millis;
use crate::config::Config;
use crate::db::job_runs::{self, NewRun};
use crate::db::{contacts, hours, Conn};
use crate::mail::outgoing::Mailer;
use crate::schedule::calendar::{client_zone, local_date};

/// The thresholds, in percent of a block, that the primary contact hears of.
pub const THRESHOLDS: [i64; 2] = [80, 100];

/// "2.5 h", "12 h".
pub fn hours_text(minutes: i64) -> String {
    let tenths = (minutes * 10 + 30) / 60;
    if tenths % 10 == 0 {
        format!("{} h", tenths / 10)
    } else {
        format!("{}.{} h", tenths / 10, tenths % 10)
    }
}

/// Records `minutes` worked on ticket `ticket_id` (of `client_id`, if it
/// has a client), drawing them from the client's open blocks.
pub async fn record_time(
    mailer: &Mailer,
    config: &Config,
    tx: &mut Conn,
    ticket_id: i64,
    client_id: Option<i64>,
    minutes: i64,
    now: Millis,
) -> Result<(), NoticeError> {
    let Some(client_id) = client_id else {
        hours::insert_entry(tx, ticket_id, None, minutes, None, now).await?;
        return Ok(());
    };
    let zone = client_zone(
        config,
        contacts::client_timezone(tx, client_id).await?.as_deref(),
    );
    let today = local_date(now, zone).to_string();
    let mut rest = minutes;
    for block in hours::open_blocks(tx, client_id, &today).await? {
        if rest == 0 {
            break;
        }
        let free = block.minutes - block.used;
        if free <= 0 {
            continue;
        }
        let take = free.min(rest);
        hours::insert_entry(tx, ticket_id, Some(client_id), take, Some(block.id), now).await?;
        rest -= take;
        let after = block.used + take;
        for pct in THRESHOLDS {
            let crossed =
                block.used * 100 < pct * block.minutes && after * 100 >= pct * block.minutes;
            if !crossed {
                continue;
            }
            let first = job_runs::record_done(
                tx,
                &NewRun {
                    kind: "hours",
                    target: format!("block:{}", block.id),
                    stage: pct.to_string(),
                    client_id: Some(client_id),
                    due_at: now,
                },
                "primary contacts told",
                now,
            )
            .await?;
            if !first {
                continue;
            }
            let client = contacts::client_name(tx, client_id)
                .await?
                .unwrap_or_default();
            mail_contacts(
                mailer,
                config,
                tx,
                client_id,
                &Notice {
                    kind: "hours-used",
                    template: "hours_used",
                    wanted: |t| t.primary,
                    optional: None,
                    attachments: &[],
                    data: json!({
                    "client": client,
                    "block": block.name,
                    "percent": pct,
                    "used_up": pct >= 100,
                    "used": hours_text(after),
                    "total": hours_text(block.minutes),
                        "left": hours_text((block.minutes - after).max(0)),
                    }),
                },
                now,
            )
            .await?;
        }
    }
    if rest > 0 {
        hours::insert_entry(tx, ticket_id, Some(client_id), rest, None, now).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_read_as_people_write_them() {
        assert_eq!(hours_text(600), "10 h");
        assert_eq!(hours_text(150), "2.5 h");
        assert_eq!(hours_text(20), "0.3 h");
        assert_eq!(hours_text(0), "0 h");
    }
}
