//! Dunning: payment reminders at stages relative to an invoice's due date
//! (by default 3 days before, on the day, and 7, 14 and 30 days after), each
//! stage once per invoice, to the client's billing and primary contacts with
//! the pay link. Only the latest stage that is due is planned, so a week of
//! downtime sends one reminder, not three. Whether a reminder is still
//! wanted (paid, cancelled, disputed since) is checked again when it goes.

use chrono::NaiveDate;
use serde_json::json;

use super::calendar::{client_zone, local_date};
use super::{target_id, JobKind, RunReport};
use crate::app::App;
use crate::billing::notify::{mail_billing_contacts, BillingMail, Reach};
use crate::billing::BillingError;
use crate::clock::Millis;
use crate::db::invoices::{self, InvoiceSummary};
use crate::db::job_runs::{self, JobRun, NewRun};
use crate::db::{contacts, payments, Conn};
use crate::domain::{format_amount, InvoiceStatus, OptionalMail};
use crate::links::LinkPurpose;

pub const KIND: &str = "dunning";

/// The stage's name in a run key: `-3`, `0`, `+7`.
pub fn stage_label(days: i32) -> String {
    if days > 0 {
        format!("+{days}")
    } else {
        days.to_string()
    }
}

/// The latest of `stages` (days relative to `due`, ascending) that has
/// come on `today`.
pub fn current_stage(stages: &[i32], due: NaiveDate, today: NaiveDate) -> Option<i32> {
    let since_due = (today - due).num_days();
    stages
        .iter()
        .copied()
        .filter(|s| i64::from(*s) <= since_due)
        .max()
}

fn target(invoice_id: i64) -> String {
    format!("invoice:{invoice_id}")
}

/// The reminders due at `at`: one run per unpaid invoice whose latest stage
/// has come in its client's zone.
pub async fn plan(app: &App, tx: &mut Conn, at: Millis) -> anyhow::Result<Vec<NewRun>> {
    let stages = &app.config.schedules.dunning_stages;
    let mut runs = Vec::new();
    for c in invoices::dunning_candidates(tx).await? {
        let Ok(due) = c.due_date.parse::<NaiveDate>() else {
            continue;
        };
        let today = local_date(at, client_zone(&app.config, c.client_timezone.as_deref()));
        if let Some(stage) = current_stage(stages, due, today) {
            runs.push(NewRun {
                kind: KIND,
                target: target(c.id),
                stage: stage_label(stage),
                client_id: Some(c.client_id),
                due_at: at,
            });
        }
    }
    Ok(runs)
}

/// Why an invoice gets no reminder now, if it does not.
fn not_remindable(invoice: &InvoiceSummary, disputed: bool, in_flight: i64) -> Option<String> {
    match InvoiceStatus::parse(&invoice.status) {
        Some(InvoiceStatus::Sent | InvoiceStatus::Partial | InvoiceStatus::Overdue) => {}
        Some(InvoiceStatus::Processing) => return Some("a payment is on its way".into()),
        Some(s) => return Some(format!("the invoice is {}", s.as_str())),
        None => return Some(format!("unknown invoice status {}", invoice.status)),
    }
    if disputed {
        return Some("the invoice is disputed".into());
    }
    if invoice.total_minor - invoice.paid_minor - in_flight <= 0 {
        return Some("nothing is owed".into());
    }
    None
}

/// Sends the reminder of a planned run, if the invoice still needs it.
pub async fn execute(
    app: &App,
    tx: &mut Conn,
    run: &JobRun,
    at: Millis,
) -> anyhow::Result<RunReport> {
    let id = target_id(run, "invoice")?;
    let Some(invoice) = invoices::invoice_by_id(tx, id).await? else {
        return Ok(RunReport::new(run, JobKind::Dunning, run.target.clone())
            .skipped("the invoice no longer exists"));
    };
    let report = RunReport::new(run, JobKind::Dunning, format!("invoice {}", invoice.number));
    let disputed = invoices::is_disputed(tx, id).await?;
    let in_flight = payments::processing_of_invoice(tx, id).await?;
    if let Some(why) = not_remindable(&invoice, disputed, in_flight) {
        return Ok(report.skipped(why));
    }
    let zone = client_zone(
        &app.config,
        contacts::client_timezone(tx, invoice.client_id)
            .await?
            .as_deref(),
    );
    let today = local_date(at, zone);
    let due: NaiveDate = invoice.due_date.parse()?;
    let current = current_stage(&app.config.schedules.dunning_stages, due, today);
    if current.map(stage_label).as_deref() != Some(run.stage.as_str()) {
        return Ok(report.skipped(match current {
            Some(s) => format!("stage {} is due instead", stage_label(s)),
            None => "no stage is due yet".to_string(),
        }));
    }
    let reach = remind(app, tx, &invoice, due, today, at).await?;
    let why = format!(
        "stage {}: {} is {}",
        run.stage,
        invoice.number,
        describe_due(due, today)
    );
    Ok(report
        .done(why)
        .mailed("invoice-reminder", reach.recipients))
}

/// "due in 3 days", "due today", "7 days overdue".
fn describe_due(due: NaiveDate, today: NaiveDate) -> String {
    let days = (today - due).num_days();
    match days {
        d if d < -1 => format!("due in {} days", -d),
        -1 => "due tomorrow".into(),
        0 => "due today".into(),
        1 => "1 day overdue".into(),
        d => format!("{d} days overdue"),
    }
}

/// Queues the reminder mail (and marks a past-due invoice overdue).
async fn remind(
    app: &App,
    tx: &mut Conn,
    invoice: &InvoiceSummary,
    due: NaiveDate,
    today: NaiveDate,
    at: Millis,
) -> anyhow::Result<Reach> {
    let days = (today - due).num_days();
    if days > 0 {
        invoices::mark_overdue(tx, invoice.id, at).await?;
    }
    let client = contacts::client_name(tx, invoice.client_id)
        .await?
        .unwrap_or_default();
    let cur = invoice.currency.as_str();
    mail_billing_contacts(
        app,
        tx,
        invoice.client_id,
        BillingMail {
            kind: "invoice-reminder",
            template: "invoice_reminder",
            purpose: LinkPurpose::Invoice,
            resource: &invoice.number,
            data: json!({
                "number": invoice.number,
                "client": client,
                "total": format_amount(invoice.total_minor, cur),
                "balance": format_amount(invoice.total_minor - invoice.paid_minor, cur),
                "due_date": invoice.due_date,
                "before_due": days < 0,
                "due_today": days == 0,
                "overdue": days > 0,
                "days_until_due": (-days).max(0),
                "days_overdue": days.max(0),
                "when": describe_due(due, today),
            }),
            also: None,
            // Contacts who declined reminders (when the operator made them
            // optional) are skipped, also by staff's "send now".
            optional: app
                .config
                .schedules
                .optional_reminder(OptionalMail::Dunning),
            attachments: &[],
        },
        at,
    )
    .await
}

/// Staff's "send reminder now": the reminder goes at once and counts as the
/// stage that is due (the first stage when none is due yet), so the planner
/// does not send that stage again.
pub async fn send_now(app: &App, number: &str) -> anyhow::Result<RunReport> {
    let at = app.clock.now_millis();
    let mut tx = app.db.begin().await?;
    let invoice = invoices::invoice_by_number(&mut tx, number)
        .await?
        .ok_or_else(|| BillingError::UnknownInvoice(number.to_string()))?;
    let in_flight = payments::processing_of_invoice(&mut tx, invoice.id).await?;
    // Staff may remind about a disputed invoice on purpose.
    if let Some(why) = not_remindable(&invoice, false, in_flight) {
        return Err(BillingError::WrongState(invoice.number, why, "reminded").into());
    }
    let zone = client_zone(
        &app.config,
        contacts::client_timezone(&mut tx, invoice.client_id)
            .await?
            .as_deref(),
    );
    let today = local_date(at, zone);
    let due: NaiveDate = invoice.due_date.parse()?;
    let stages = &app.config.schedules.dunning_stages;
    let stage = current_stage(stages, due, today)
        .or_else(|| stages.first().copied())
        .unwrap_or(0);
    let new_run = NewRun {
        kind: KIND,
        target: target(invoice.id),
        stage: stage_label(stage),
        client_id: Some(invoice.client_id),
        due_at: at,
    };
    let first = job_runs::record_done(&mut tx, &new_run, "sent by staff", at).await?;
    let reach = remind(app, &mut tx, &invoice, due, today, at).await?;
    tx.commit().await?;
    app.ingestor.outbox_ready.notify_one();
    let why = if first {
        format!("sent by staff; counts as stage {}", new_run.stage)
    } else {
        format!("sent by staff again; stage {} had been sent", new_run.stage)
    };
    Ok(RunReport::of(
        0,
        JobKind::Dunning,
        &new_run.target,
        &new_run.stage,
        format!("invoice {number}"),
    )
    .done(why)
    .mailed("invoice-reminder", reach.recipients))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn the_latest_stage_that_has_come_is_current() {
        let stages = [-3, 0, 7, 14, 30];
        let due = d("2026-12-15");
        assert_eq!(current_stage(&stages, due, d("2026-12-11")), None);
        assert_eq!(current_stage(&stages, due, d("2026-12-12")), Some(-3));
        assert_eq!(current_stage(&stages, due, d("2026-12-15")), Some(0));
        assert_eq!(current_stage(&stages, due, d("2026-12-21")), Some(0));
        assert_eq!(current_stage(&stages, due, d("2026-12-22")), Some(7));
        // A month of downtime: only the latest stage.
        assert_eq!(current_stage(&stages, due, d("2027-02-01")), Some(30));
        assert_eq!(stage_label(-3), "-3");
        assert_eq!(stage_label(0), "0");
        assert_eq!(stage_label(14), "+14");
    }

    #[test]
    fn due_dates_read_as_people_say_them() {
        let due = d("2026-12-15");
        assert_eq!(describe_due(due, d("2026-12-12")), "due in 3 days");
        assert_eq!(describe_due(due, d("2026-12-14")), "due tomorrow");
        assert_eq!(describe_due(due, d("2026-12-15")), "due today");
        assert_eq!(describe_due(due, d("2026-12-16")), "1 day overdue");
        assert_eq!(describe_due(due, d("2026-12-29")), "14 days overdue");
    }
}
