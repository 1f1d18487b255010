//! Expiry alerts: domains, certificates, asset warranties and contracts
//! (by default 45, 30, 14, 7 and 1 days before) to the client's technical
//! and primary contacts, and saved cards that will have expired before the
//! auto-pay charge they are meant for, to its billing contacts with the
//! payment-methods link. One mail per client per run lists everything of
//! that client that is due. Runs are keyed by the item *and its date*, so
//! a renewal (a new date, by import or by the live certificate probe) arms
//! the alerts again; only the latest stage that has come is planned.

use std::time::Duration;

use anyhow::Context;
use chrono::{Datelike, NaiveDate};
use serde_json::json;

use super::calendar::{client_zone, local_date};
use super::{cert_probe, JobKind, RunReport, Worker, LEASE};
use crate::app::App;
use crate::billing::notify::{mail_billing_contacts, mail_contacts, BillingMail, Notice};
use crate::clock::Millis;
use crate::db::expiring::{self, AutopayCard, Item, ItemKind};
use crate::db::job_runs::{self, JobRun, NewRun};
use crate::db::{contacts, Conn};
use crate::domain::OptionalMail;
use crate::links::LinkPurpose;

pub const KIND: &str = "expiry";

/// How long one certificate probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The latest alert stage that has come with `days_left` to go: the
/// smallest configured lead time that is at least `days_left`. Nothing once
/// the thing has expired.
pub fn current_stage(lead_days: &[u32], days_left: i64) -> Option<u32> {
    if days_left < 0 {
        return None;
    }
    lead_days
        .iter()
        .copied()
        .filter(|d| i64::from(*d) >= days_left)
        .min()
}

/// The last day a card with this expiry can be charged.
pub fn card_last_day(exp_month: i64, exp_year: i64) -> Option<NaiveDate> {
    let first = NaiveDate::from_ymd_opt(exp_year as i32, exp_month as u32, 1)?;
    first.checked_add_months(chrono::Months::new(1))?.pred_opt()
}

fn item_target(item: &Item) -> String {
    format!("item:{}:{}", item.id, item.expires_on)
}

fn card_target(card: &AutopayCard) -> String {
    format!(
        "card:{}:{}-{:02}",
        card.method_id, card.exp_year, card.exp_month
    )
}

fn stage_label(days: u32) -> String {
    format!("{days}d")
}

/// Why a card alert is due, if it is: the card's last day comes before the
/// charge it is meant for, and an alert stage has come.
fn card_stage(app: &App, card: &AutopayCard, today: NaiveDate) -> Option<u32> {
    let last_day = card_last_day(card.exp_month, card.exp_year)?;
    let next_charge: NaiveDate = card.next_charge.parse().ok()?;
    if last_day >= next_charge {
        return None;
    }
    current_stage(
        &app.config.schedules.expiry_days,
        (last_day - today).num_days(),
    )
}

/// The alerts due at `at`.
pub async fn plan(app: &App, tx: &mut Conn, at: Millis) -> anyhow::Result<Vec<NewRun>> {
    let lead = &app.config.schedules.expiry_days;
    let longest = lead.first().copied().unwrap_or(0);
    let utc_today = local_date(at, chrono_tz::UTC);
    let from = (utc_today - chrono::Days::new(1)).to_string();
    let to = (utc_today + chrono::Days::new(u64::from(longest) + 1)).to_string();
    let mut runs = Vec::new();
    for item in expiring::expiring_between(tx, &from, &to).await? {
        let today = local_date(
            at,
            client_zone(&app.config, item.client_timezone.as_deref()),
        );
        let Ok(expires) = item.expires_on.parse::<NaiveDate>() else {
            continue;
        };
        if let Some(stage) = current_stage(lead, (expires - today).num_days()) {
            runs.push(NewRun {
                kind: KIND,
                target: item_target(&item),
                stage: stage_label(stage),
                client_id: Some(item.client_id),
                due_at: at,
            });
        }
    }
    for card in expiring::autopay_cards(tx, None).await? {
        let today = local_date(
            at,
            client_zone(&app.config, card.client_timezone.as_deref()),
        );
        if let Some(stage) = card_stage(app, &card, today) {
            runs.push(NewRun {
                kind: KIND,
                target: card_target(&card),
                stage: stage_label(stage),
                client_id: Some(card.client_id),
                due_at: at,
            });
        }
    }
    Ok(runs)
}

/// Reads every probed certificate's live expiry and stores it. A failed
/// probe is recorded on the item (and logged), never fatal; in a dry run
/// nothing is stored.
pub async fn probe_certificates(app: &App, at: Millis, dry_run: bool) -> anyhow::Result<()> {
    let targets = {
        let mut conn = app.db.conn().await?;
        expiring::certificates_to_probe(&mut conn).await?
    };
    for (id, host, port) in targets {
        let result = cert_probe::probe(&host, port, PROBE_TIMEOUT).await;
        if dry_run {
            continue;
        }
        let mut conn = app.db.conn().await?;
        match result {
            Ok(cert) => {
                let expires_on = cert.not_after.date_naive().to_string();
                expiring::record_probe(&mut conn, id, Ok((&expires_on, &cert.issuer)), at).await?;
            }
            Err(e) => {
                tracing::warn!(item = id, error = %e, "certificate probe failed");
                expiring::record_probe(&mut conn, id, Err(&e.to_string()), at).await?;
            }
        }
    }
    Ok(())
}

/// One thing a mail lists.
enum Listed {
    Item(Item, i64),
    Card(AutopayCard, NaiveDate),
}

/// Carries out `run` and every other due alert of the same client, in one
/// mail per audience.
pub async fn execute(
    app: &App,
    tx: &mut Conn,
    worker: &Worker,
    run: &JobRun,
    at: Millis,
) -> anyhow::Result<Vec<RunReport>> {
    let client_id = run
        .client_id
        .with_context(|| format!("expiry run {} names no client", run.id))?;
    let mut runs = vec![run.clone()];
    runs.extend(
        job_runs::claim_client_runs(
            tx,
            KIND,
            client_id,
            &worker.owner,
            at,
            at + LEASE.as_millis() as i64,
        )
        .await?,
    );
    let zone = client_zone(
        &app.config,
        contacts::client_timezone(tx, client_id).await?.as_deref(),
    );
    let today = local_date(at, zone);
    let cards = expiring::autopay_cards(tx, Some(client_id)).await?;
    let mut reports = Vec::new();
    let mut listed: Vec<(usize, Listed)> = Vec::new();
    for r in &runs {
        let base = RunReport::new(r, JobKind::Expiry, r.target.clone());
        match classify(app, tx, r, &cards, today).await? {
            Ok(thing) => {
                listed.push((reports.len(), thing));
                reports.push(base);
            }
            Err(why) => reports.push(base.skipped(why)),
        }
    }

    let client = contacts::client_name(tx, client_id)
        .await?
        .unwrap_or_default();
    let mut items = Vec::new();
    let mut item_runs = Vec::new();
    let mut card_lines = Vec::new();
    let mut card_runs = Vec::new();
    for (index, thing) in &listed {
        match thing {
            Listed::Item(item, days_left) => {
                let kind = ItemKind::parse(&item.kind)
                    .map(ItemKind::label)
                    .unwrap_or("Item");
                reports[*index].about = format!("{} {}", kind.to_lowercase(), item.name);
                items.push(json!({
                    "kind": kind,
                    "name": item.name,
                    "expires_on": item.expires_on,
                    "days_left": days_left,
                    "issuer": item.issuer,
                }));
                item_runs.push(*index);
            }
            Listed::Card(card, last_day) => {
                let label = format!(
                    "{} ending {}",
                    card.brand.as_deref().unwrap_or("card"),
                    card.last4.as_deref().unwrap_or("?")
                );
                reports[*index].about = format!("saved {label}");
                card_lines.push(json!({
                    "card": label,
                    "valid_until": format!("{:02}/{}", last_day.month(), last_day.year()),
                    "next_charge": card.next_charge,
                }));
                card_runs.push(*index);
            }
        }
    }
    if !items.is_empty() {
        let to = mail_contacts(
            &app.ingestor.mailer,
            &app.config,
            tx,
            client_id,
            &Notice {
                kind: "expiry-alert",
                template: "expiry_alert",
                data: json!({ "client": client, "items": items, "count": items.len() }),
                wanted: |t| t.technical || t.primary,
                optional: app
                    .config
                    .schedules
                    .optional_reminder(OptionalMail::ExpiryAlerts),
                attachments: &[],
            },
            at,
        )
        .await?;
        note_group(&mut reports, &item_runs, "expiry-alert", to);
    }
    if !card_lines.is_empty() {
        let reach = mail_billing_contacts(
            app,
            tx,
            client_id,
            BillingMail {
                kind: "card-expiring",
                template: "card_expiring",
                purpose: LinkPurpose::PaymentMethods,
                resource: "",
                data: json!({ "client": client, "cards": card_lines }),
                also: None,
                optional: app
                    .config
                    .schedules
                    .optional_reminder(OptionalMail::CardExpiry),
                attachments: &[],
            },
            at,
        )
        .await?;
        note_group(&mut reports, &card_runs, "card-expiring", reach.recipients);
    }
    Ok(reports)
}

/// The first run of a group carries the mail; the others say they rode along.
fn note_group(reports: &mut [RunReport], group: &[usize], kind: &str, to: Vec<String>) {
    let n = group.len();
    for (i, index) in group.iter().enumerate() {
        let report = &mut reports[*index];
        report.why = format!(
            "stage {}: listed in one mail of {n} {}",
            report.stage,
            if n == 1 { "entry" } else { "entries" }
        );
        if i == 0 && !to.is_empty() {
            report.mails.push(super::MailReport {
                kind: kind.to_string(),
                to: to.clone(),
            });
        }
    }
}

/// Whether a run's alert is still wanted, and what it lists.
async fn classify(
    app: &App,
    tx: &mut Conn,
    run: &JobRun,
    cards: &[AutopayCard],
    today: NaiveDate,
) -> anyhow::Result<Result<Listed, String>> {
    let mut parts = run.target.split(':');
    let (what, id) = (
        parts.next(),
        parts.next().and_then(|i| i.parse::<i64>().ok()),
    );
    let lead = &app.config.schedules.expiry_days;
    match (what, id) {
        (Some("item"), Some(id)) => {
            let Some(item) = expiring::item(tx, id).await? else {
                return Ok(Err("the item was deleted".into()));
            };
            if !item.active {
                return Ok(Err("the item is no longer watched".into()));
            }
            if item_target(&item) != run.target {
                return Ok(Err(format!(
                    "renewed: it now expires on {}",
                    item.expires_on
                )));
            }
            let expires: NaiveDate = item.expires_on.parse()?;
            let days_left = (expires - today).num_days();
            match current_stage(lead, days_left) {
                Some(s) if stage_label(s) == run.stage => Ok(Ok(Listed::Item(item, days_left))),
                Some(s) => Ok(Err(format!("stage {} is due instead", stage_label(s)))),
                None => Ok(Err("it has expired".into())),
            }
        }
        (Some("card"), Some(id)) => {
            let Some(card) = cards.iter().find(|c| c.method_id == id) else {
                return Ok(Err("the card no longer pays an auto-pay invoice".into()));
            };
            if card_target(card) != run.target {
                return Ok(Err("the card's expiry changed".into()));
            }
            match card_stage(app, card, today) {
                Some(s) if stage_label(s) == run.stage => {
                    let last_day =
                        card_last_day(card.exp_month, card.exp_year).context("card expiry")?;
                    Ok(Ok(Listed::Card(card.clone(), last_day)))
                }
                Some(s) => Ok(Err(format!("stage {} is due instead", stage_label(s)))),
                None => Ok(Err(
                    "the card no longer expires before its next charge".into()
                )),
            }
        }
        _ => anyhow::bail!("expiry run {} has a malformed target", run.id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_lead_time_that_has_come_is_the_stage() {
        let lead = [45, 30, 14, 7, 1];
        assert_eq!(current_stage(&lead, 60), None);
        assert_eq!(current_stage(&lead, 45), Some(45));
        assert_eq!(current_stage(&lead, 31), Some(45));
        assert_eq!(current_stage(&lead, 30), Some(30));
        assert_eq!(current_stage(&lead, 10), Some(14));
        assert_eq!(current_stage(&lead, 1), Some(1));
        assert_eq!(current_stage(&lead, 0), Some(1));
        assert_eq!(current_stage(&lead, -1), None);
    }

    #[test]
    fn a_card_is_good_to_the_end_of_its_month() {
        assert_eq!(card_last_day(2, 2028), Some("2028-02-29".parse().unwrap()));
        assert_eq!(card_last_day(12, 2026), Some("2026-12-31".parse().unwrap()));
        assert_eq!(card_last_day(13, 2026), None);
    }
}
