//! The monthly service report: each client that gets it (on unless
//! switched off per client) mails its primary contacts — those who have
//! not opted out of optional mail — the month's tickets opened and closed,
//! the share answered within the first-response target, hours used and
//! left, and the invoices issued, with the tickets as a CSV attachment. A
//! month in which nothing happened is not reported.

use serde_json::json;

use super::calendar::local_date;
use super::monthly::{client_month, ClientMonth};
use super::{JobKind, RunReport};
use crate::app::App;
use crate::billing::hours::hours_text;
use crate::billing::notify::{mail_contacts, Notice};
use crate::clock::Millis;
use crate::db::job_runs::{JobRun, NewRun};
use crate::db::reports::{self, ReportTicket};
use crate::db::{hours, Conn};
use crate::domain::{format_amount, OptionalMail};
use crate::mail::outgoing::OutgoingAttachment;

pub const KIND: &str = "report";

pub async fn plan(app: &App, tx: &mut Conn, at: Millis) -> anyhow::Result<Vec<NewRun>> {
    super::monthly::plan(app, tx, at, KIND, &app.config.schedules.report, |_, r| r).await
}

/// Whether a ticket's first response came by its target: `None` when it
/// had no target or is still within it unanswered.
fn within_target(t: &ReportTicket, now: Millis) -> Option<bool> {
    let due = t.first_response_due_at?;
    match t.first_response_at {
        Some(answered) => Some(answered <= due),
        None if now > due => Some(false),
        None => None,
    }
}

pub async fn execute(
    app: &App,
    tx: &mut Conn,
    run: &JobRun,
    at: Millis,
) -> anyhow::Result<RunReport> {
    let ClientMonth {
        client_id,
        name,
        zone,
        period,
        report: wanted,
        ..
    } = client_month(app, tx, run).await?;
    let report = RunReport::new(run, JobKind::Report, format!("service report of {name}"));
    if !wanted {
        return Ok(report.skipped("the client's service report is switched off"));
    }
    let opened = reports::tickets_opened(tx, client_id, period.from, period.to).await?;
    let closed = reports::tickets_closed(tx, client_id, period.from, period.to).await?;
    let judged: Vec<bool> = opened.iter().filter_map(|t| within_target(t, at)).collect();
    let within = judged.iter().filter(|w| **w).count();
    let share = (!judged.is_empty()).then(|| within * 100 / judged.len());
    let used = hours::minutes_between(tx, client_id, period.from, period.to).await?;
    let today = local_date(at, zone).to_string();
    let left: i64 = hours::open_blocks(tx, client_id, &today)
        .await?
        .iter()
        .map(|b| (b.minutes - b.used).max(0))
        .sum();
    let invoices: Vec<_> = reports::invoices_issued(
        tx,
        client_id,
        &period.first_day.to_string(),
        &period.last_day.to_string(),
    )
    .await?
    .into_iter()
    .map(|(number, currency, total, status)| {
        json!({ "number": number, "total": format_amount(total, &currency), "status": status })
    })
    .collect();
    if opened.is_empty() && closed == 0 && used == 0 && invoices.is_empty() {
        return Ok(report.skipped(format!("nothing happened in {}", period.label)));
    }
    let csv = tickets_csv(&opened, at, zone);
    let attachment = OutgoingAttachment {
        filename: format!("tickets-{}.csv", period.month),
        content_type: "text/csv; charset=utf-8".into(),
        bytes: csv.into_bytes(),
    };
    let to = mail_contacts(
        &app.ingestor.mailer,
        &app.config,
        tx,
        client_id,
        &Notice {
            kind: "service-report",
            template: "service_report",
            data: json!({
                "client": name,
                "month": period.label,
                "opened": opened.len(),
                "closed": closed,
                "within_target_percent": share,
                "judged": judged.len(),
                "hours_used": hours_text(used),
                "hours_left": hours_text(left),
                "invoices": invoices,
            }),
            wanted: |t| t.primary,
            optional: Some(OptionalMail::Report),
            attachments: std::slice::from_ref(&attachment),
        },
        at,
    )
    .await?;
    Ok(report
        .done(format!(
            "{}: {} opened, {closed} closed",
            period.label,
            opened.len()
        ))
        .mailed("service-report", to))
}

/// The month's tickets as CSV (RFC 4180), formulas defused ([`crate::csv`]):
/// subjects come from mail.
pub fn tickets_csv(tickets: &[ReportTicket], now: Millis, zone: chrono_tz::Tz) -> String {
    let time = |t: Option<Millis>| {
        t.and_then(chrono::DateTime::from_timestamp_millis)
            .map(|d| d.with_timezone(&zone).format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default()
    };
    let mut out = String::from(
        "number,subject,status,priority,opened,first_response,within_target,closed,hours_worked\r\n",
    );
    for t in tickets {
        let within = match within_target(t, now) {
            Some(true) => "yes",
            Some(false) => "no",
            None => "",
        };
        let cells = [
            t.number.clone(),
            t.subject.clone(),
            t.status.clone(),
            t.priority.clone(),
            time(Some(t.created_at)),
            time(t.first_response_at),
            within.to_string(),
            time(t.closed_at),
            format!("{:.2}", t.time_worked_minutes as f64 / 60.0),
        ];
        out.push_str(&crate::csv::line(&cells));
    }
    out
}
