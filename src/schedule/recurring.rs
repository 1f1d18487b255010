//! Recurring invoices: on a definition's next bill date (in the client's
//! zone) an invoice is created from it, the definition moves to its next
//! bill date, and the invoice is mailed as "invoice issued" — all in one
//! transaction, keyed by the bill date so it happens once. A definition
//! paid by auto-pay gets its first charge planned in the same transaction.
//! Missed bill dates are each billed: every period is owed.

use anyhow::Context;
use chrono::NaiveDate;

use super::calendar::{client_zone, local_date};
use super::{autopay, target_id, JobKind, RunReport};
use crate::app::App;
use crate::billing::send_invoice_in;
use crate::clock::Millis;
use crate::db::invoices::{self, NewInvoice, NewInvoiceLine};
use crate::db::job_runs::{self, JobRun, NewRun};
use crate::db::recurring::{self, Definition};
use crate::db::{hours, next_counter, Conn};
use crate::domain::{
    price_line, totals, Currency, Frequency, InvoiceStatus, Money, Quantity, TaxRate, TaxRounding,
};

pub const KIND: &str = "recurring";

/// Generated invoices are numbered `INV-10001`, `INV-10002`, … (numbers
/// taken by imported invoices are skipped).
const INVOICE_PREFIX: &str = "INV-";
const FIRST_INVOICE_NUMBER: i64 = 10001;

/// The bills due at `at`: each active definition whose next bill date has
/// come in its client's zone.
pub async fn plan(app: &App, tx: &mut Conn, at: Millis) -> anyhow::Result<Vec<NewRun>> {
    // No zone is more than a day ahead of UTC; the exact day is checked per client.
    let latest = (local_date(at, chrono_tz::UTC) + chrono::Days::new(1)).to_string();
    let mut runs = Vec::new();
    for d in recurring::due_definitions(tx, &latest).await? {
        let today = local_date(at, client_zone(&app.config, d.client_timezone.as_deref()));
        let Ok(bill_date) = d.next_bill_date.parse::<NaiveDate>() else {
            continue;
        };
        if bill_date <= today {
            runs.push(NewRun {
                kind: KIND,
                target: format!("recurring:{}", d.id),
                stage: d.next_bill_date,
                client_id: Some(d.client_id),
                due_at: at,
            });
        }
    }
    Ok(runs)
}

/// Bills one definition for the bill date of `run`.
pub async fn execute(
    app: &App,
    tx: &mut Conn,
    run: &JobRun,
    at: Millis,
) -> anyhow::Result<RunReport> {
    let id = target_id(run, "recurring")?;
    let Some(def) = recurring::definition(tx, id).await? else {
        return Ok(RunReport::new(run, JobKind::Recurring, run.target.clone())
            .skipped("the recurring invoice no longer exists"));
    };
    let report = RunReport::new(
        run,
        JobKind::Recurring,
        format!("recurring \"{}\"", def.scope),
    );
    if !def.active {
        return Ok(report.skipped("the recurring invoice was ended"));
    }
    if def.next_bill_date != run.stage {
        return Ok(report.skipped(format!(
            "billed already; the next bill date is {}",
            def.next_bill_date
        )));
    }
    let bill_date: NaiveDate = run.stage.parse()?;
    let frequency = Frequency::parse(&def.frequency)
        .ok_or_else(|| anyhow::anyhow!("recurring invoice {id}: unknown frequency"))?;
    let next = frequency
        .next_bill_date(bill_date, def.anchor_day as u32)
        .ok_or_else(|| anyhow::anyhow!("recurring invoice {id}: no next bill date"))?;
    let mut invoice = build_invoice(&def, bill_date)?;
    let time = unbilled_time_line(app, tx, &def).await?;
    if let Some((line, _)) = &time {
        invoice.lines.push(line.clone());
        let priced: Vec<_> = invoice.lines.iter().map(|l| l.priced.clone()).collect();
        invoice.totals = totals(&priced, invoice.currency, TaxRounding::PerLine)?;
    }
    let (invoice_id, number) = insert_numbered(tx, invoice, at).await?;
    if let Some((_, entries)) = &time {
        hours::mark_billed(tx, entries, invoice_id).await?;
    }
    invoices::set_recurring_origin(tx, invoice_id, def.id).await?;
    if !recurring::advance(tx, def.id, &run.stage, &next.to_string(), at).await? {
        anyhow::bail!("recurring invoice {id} moved on while it was being billed");
    }
    let sent = send_invoice_in(app, tx, &number, at).await?;
    let mut why = format!("invoice {number} issued for {bill_date}; next bill date {next}");
    if def.auto_pay && def.payment_method_id.is_some() && app.payments.is_some() {
        job_runs::plan_runs(
            tx,
            &[autopay::first_attempt(invoice_id, def.client_id, at)],
            at,
        )
        .await?;
        why.push_str("; auto-pay charge planned");
    }
    Ok(report.done(why).mailed("invoice-issued", sent.recipients))
}

/// The client's time no prepaid block covered, as an invoice line at the
/// configured rate (when `[hours] bill_unbilled_time` is on), with the
/// entries it bills. Rounded to thousandths of an hour.
async fn unbilled_time_line(
    app: &App,
    tx: &mut Conn,
    def: &Definition,
) -> anyhow::Result<Option<(NewInvoiceLine, Vec<i64>)>> {
    let cfg = &app.config.hours;
    let (true, Some(rate)) = (cfg.bill_unbilled_time, cfg.hourly_rate.as_deref()) else {
        return Ok(None);
    };
    let (entries, minutes) = hours::unbilled(tx, def.client_id).await?;
    if minutes == 0 {
        return Ok(None);
    }
    let currency = Currency::parse(&def.currency)?;
    let unit_price = Money::parse(rate, currency)
        .with_context(|| format!("[hours] hourly_rate {rate} in {}", def.currency))?;
    let quantity = Quantity::from_thousandths((minutes * 1000 + 30) / 60);
    let rate_bp = TaxRate::from_basis_points(def.tax_rate_bp);
    let priced = price_line(quantity, unit_price, rate_bp)?;
    Ok(Some((
        NewInvoiceLine {
            description: format!(
                "Support time not covered by prepaid hours ({})",
                crate::billing::hours::hours_text(minutes)
            ),
            quantity,
            unit_price,
            priced,
        },
        entries,
    )))
}

fn build_invoice(def: &Definition, bill_date: NaiveDate) -> anyhow::Result<NewInvoice> {
    let currency = Currency::parse(&def.currency)?;
    let quantity = Quantity::from_thousandths(def.quantity_milli);
    let unit_price = Money::from_minor(def.unit_price_minor, currency);
    let rate = TaxRate::from_basis_points(def.tax_rate_bp);
    let priced = price_line(quantity, unit_price, rate)?;
    let totals = totals(
        std::slice::from_ref(&priced),
        currency,
        TaxRounding::PerLine,
    )?;
    let due_date = bill_date + chrono::Days::new(def.payment_terms_days.max(0) as u64);
    Ok(NewInvoice {
        number: String::new(),
        client_id: def.client_id,
        status: InvoiceStatus::Draft,
        currency,
        issue_date: bill_date,
        due_date,
        tax_rounding: TaxRounding::PerLine,
        lines: vec![NewInvoiceLine {
            description: def.description.clone(),
            quantity,
            unit_price,
            priced,
        }],
        totals,
        notes: None,
        terms: Some(format!("Due within {} days", def.payment_terms_days)),
    })
}

/// Inserts `invoice` under the next free generated number.
async fn insert_numbered(
    tx: &mut Conn,
    mut invoice: NewInvoice,
    at: Millis,
) -> anyhow::Result<(i64, String)> {
    for _ in 0..1000 {
        let n = next_counter(tx, "invoice", FIRST_INVOICE_NUMBER).await?;
        invoice.number = format!("{INVOICE_PREFIX}{n}");
        if let Some(id) = invoices::insert_invoice(tx, &invoice, at).await? {
            return Ok((id, invoice.number));
        }
    }
    anyhow::bail!("no free invoice number after 1000 tries")
}
