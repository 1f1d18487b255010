//! The monthly statement: each client that gets it (on unless switched off
//! per client) mails its billing and primary contacts — those who have not
//! opted out of optional mail — what is open, the balance, store credit and
//! the statement link. Nothing open and no credit: no mail.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde_json::json;

use super::calendar::local_date;
use super::monthly::{client_month, ClientMonth};
use super::{JobKind, RunReport};
use crate::app::App;
use crate::billing::notify::{mail_billing_contacts, BillingMail};
use crate::clock::Millis;
use crate::db::job_runs::{JobRun, NewRun};
use crate::db::{payments, Conn};
use crate::domain::{format_amount, OptionalMail};
use crate::links::LinkPurpose;

pub const KIND: &str = "statement";

pub async fn plan(app: &App, tx: &mut Conn, at: Millis) -> anyhow::Result<Vec<NewRun>> {
    super::monthly::plan(app, tx, at, KIND, &app.config.schedules.statement, |s, _| s).await
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
        statement,
        ..
    } = client_month(app, tx, run).await?;
    let report = RunReport::new(run, JobKind::Statement, format!("statement of {name}"));
    if !statement {
        return Ok(report.skipped("the client's statement mail is switched off"));
    }
    let today = local_date(at, zone);
    let open = payments::open_invoices(tx, client_id).await?;
    let credit = payments::store_credit_balances(tx, client_id).await?;
    if open.is_empty() && credit.is_empty() {
        return Ok(report.skipped("nothing is open"));
    }
    let mut balances: BTreeMap<String, i64> = BTreeMap::new();
    let invoices: Vec<_> = open
        .iter()
        .map(|i| {
            let balance = i.total_minor - i.paid_minor;
            *balances.entry(i.currency.clone()).or_default() += balance;
            let overdue = i.due_date.parse::<NaiveDate>().is_ok_and(|due| due < today);
            json!({
                "number": i.number,
                "due_date": i.due_date,
                "balance": format_amount(balance, &i.currency),
                "overdue": overdue,
            })
        })
        .collect();
    let reach = mail_billing_contacts(
        app,
        tx,
        client_id,
        BillingMail {
            kind: "monthly-statement",
            template: "statement_monthly",
            purpose: LinkPurpose::Statement,
            resource: "",
            data: json!({
                "client": name,
                "month": period.label,
                "invoices": invoices,
                "balances": balances
                    .iter()
                    .map(|(cur, minor)| format_amount(*minor, cur))
                    .collect::<Vec<_>>(),
                "credit": credit
                    .iter()
                    .map(|(cur, minor)| format_amount(*minor, cur))
                    .collect::<Vec<_>>(),
            }),
            also: None,
            optional: Some(OptionalMail::Statement),
            attachments: &[],
        },
        at,
    )
    .await?;
    Ok(report
        .done(format!(
            "statement for {}: {} open invoice(s)",
            period.label,
            open.len()
        ))
        .mailed("monthly-statement", reach.recipients))
}
