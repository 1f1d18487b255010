//! Billing work that spans the database, mail and (later) the payment
//! provider: sending an invoice, recording money that arrived, and the mails
//! that go with both. The web view, the admin API and the webhook receiver
//! call in here; SQL stays in `db/`, HTTP in `web/`.

pub mod hours;
pub mod notify;
pub mod pay;
pub mod settle;
pub mod webhook;

use anyhow::Context;
use serde_json::json;

use crate::app::App;
use crate::db::payments::{self, NewPayment};
use crate::db::{contacts, invoices, Conn};
use crate::domain::{format_amount, InvoiceStatus, PaymentStatus, QuoteStatus};
use crate::links::LinkPurpose;
use crate::mail::outgoing::OutgoingAttachment;
use crate::schedule::calendar::{client_zone, local_date};
use notify::{mail_billing_contacts, mail_staff, BillingMail};
use settle::{settle, Settlement};

/// The company's calendar day at `now_ms` (`[company] timezone`), as
/// stored dates are written.
pub fn today(app: &App, now_ms: i64) -> String {
    local_date(now_ms, app.config.company.timezone).to_string()
}

/// Client `client_id`'s calendar day at `now_ms`, in its own time zone
/// (the company's when it has none): due dates and expiries are its days.
pub async fn client_today(
    app: &App,
    conn: &mut Conn,
    client_id: i64,
    now_ms: i64,
) -> anyhow::Result<String> {
    let stored = contacts::client_timezone(conn, client_id).await?;
    let zone = client_zone(&app.config, stored.as_deref());
    Ok(local_date(now_ms, zone).to_string())
}

#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    #[error("no invoice has number {0}")]
    UnknownInvoice(String),
    #[error("no quote has number {0}")]
    UnknownQuote(String),
    #[error("invoice {0} is {1}; it cannot be {2}")]
    WrongState(String, String, &'static str),
    #[error("the amount must be more than zero and at most the balance ({0})")]
    BadAmount(String),
}

/// What sending an invoice did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Sent {
    pub number: String,
    /// How many contacts the mail was queued for.
    pub mailed: usize,
    /// No billing contact can receive it; the staff were told.
    pub undeliverable: bool,
    /// Who it was queued for (for `jobs run --dry-run`; not in API answers).
    #[serde(skip)]
    pub recipients: Vec<String>,
}

/// Publishes invoice `number` (a draft becomes `sent`) and mails it to the
/// client's billing and primary contacts; sending one already out mails it
/// again. When every billing address is suppressed (a hard bounce) the
/// invoice is flagged undeliverable and the staff are told.
pub async fn send_invoice(app: &App, number: &str) -> anyhow::Result<Sent> {
    let now = app.clock.now_millis();
    let mut tx = app.db.begin().await?;
    let sent = send_invoice_in(app, &mut tx, number, now).await?;
    tx.commit().await?;
    app.ingestor.outbox_ready.notify_one();
    Ok(sent)
}

/// [`send_invoice`] inside the caller's transaction (the scheduler creates a
/// recurring invoice and mails it in one).
pub async fn send_invoice_in(
    app: &App,
    tx: &mut Conn,
    number: &str,
    now: i64,
) -> anyhow::Result<Sent> {
    let detail = invoices::invoice_detail(tx, number)
        .await?
        .ok_or_else(|| BillingError::UnknownInvoice(number.to_string()))?;
    let summary = &detail.summary;
    match InvoiceStatus::parse(&summary.status) {
        Some(InvoiceStatus::Draft) => {
            invoices::mark_sent(tx, summary.id, now).await?;
        }
        Some(InvoiceStatus::Cancelled | InvoiceStatus::Paid) | None => {
            return Err(BillingError::WrongState(
                number.to_string(),
                summary.status.clone(),
                "sent",
            )
            .into())
        }
        Some(_) => {}
    }
    let cur = summary.currency.as_str();
    let total = format_amount(summary.total_minor, cur);
    let attachments = if app.config.attach_invoice_pdf {
        vec![invoice_pdf(app, tx, &detail).await?]
    } else {
        Vec::new()
    };
    let reach = mail_billing_contacts(
        app,
        tx,
        summary.client_id,
        BillingMail {
            kind: "invoice-issued",
            template: "invoice_issued",
            purpose: LinkPurpose::Invoice,
            resource: &summary.number,
            data: json!({
                "number": summary.number,
                "client": detail.client_name,
                "total": total,
                "balance": format_amount(summary.total_minor - summary.paid_minor, cur),
                "due_date": summary.due_date,
                "pdf_attached": !attachments.is_empty(),
            }),
            also: None,
            optional: None,
            attachments: &attachments,
        },
        now,
    )
    .await
    .context("queueing the invoice mail")?;
    let undeliverable = reach.billing_unreachable || reach.queued == 0;
    invoices::set_undeliverable(tx, summary.id, undeliverable, now).await?;
    if undeliverable {
        let reason = if reach.billing_unreachable {
            "every billing address of the client bounced and is suppressed"
        } else {
            "the client has no active billing or primary contact that can receive mail"
        };
        mail_staff(
            app,
            tx,
            "invoice-undeliverable",
            "invoice_undeliverable",
            json!({
                "number": summary.number,
                "client": detail.client_name,
                "total": total,
                "reason": reason,
            }),
            now,
        )
        .await?;
    }
    Ok(Sent {
        number: summary.number.clone(),
        mailed: reach.queued,
        undeliverable,
        recipients: reach.recipients,
    })
}

/// The invoice as the PDF attachment of its mail, with the payments that
/// reached it so far (as on the invoice page).
async fn invoice_pdf(
    app: &App,
    tx: &mut Conn,
    detail: &invoices::InvoiceDetail,
) -> anyhow::Result<OutgoingAttachment> {
    let zone = client_zone(
        &app.config,
        contacts::client_timezone(tx, detail.summary.client_id)
            .await?
            .as_deref(),
    );
    let shown: Vec<crate::pdf::PdfPayment> = payments::payments_of_invoice(tx, detail.summary.id)
        .await?
        .into_iter()
        .filter(|p| p.status == PaymentStatus::Succeeded.as_str())
        .map(|p| crate::pdf::PdfPayment {
            date: local_date(p.received_at, zone).to_string(),
            method: settle::method_label(&p.method).to_string(),
            amount_minor: p.amount_minor,
        })
        .collect();
    let filename = format!("invoice-{}.pdf", detail.summary.number);
    let detail = detail.clone();
    let branding = app.config.branding.clone();
    // A few milliseconds of CPU per page: off the async threads.
    let bytes =
        tokio::task::spawn_blocking(move || crate::pdf::render_invoice(&detail, &shown, &branding))
            .await
            .context("the PDF task")?
            .context("rendering the invoice PDF")?;
    Ok(OutgoingAttachment {
        filename,
        content_type: "application/pdf".into(),
        bytes,
    })
}

/// Publishes quote `number` (a draft becomes `sent`) and mails it to the
/// client's billing and primary contacts; an open quote is mailed again. A
/// decided or expired quote is not.
pub async fn send_quote(app: &App, number: &str) -> anyhow::Result<Sent> {
    let now = app.clock.now_millis();
    let mut tx = app.db.begin().await?;
    let quote = invoices::quote_detail(&mut tx, number)
        .await?
        .ok_or_else(|| BillingError::UnknownQuote(number.to_string()))?;
    match QuoteStatus::parse(&quote.status) {
        Some(QuoteStatus::Draft) => {
            invoices::mark_quote_sent(&mut tx, quote.id, now).await?;
        }
        Some(QuoteStatus::Sent)
            if client_today(app, &mut tx, quote.client_id, now).await? <= quote.expiry_date => {}
        _ => {
            return Err(BillingError::WrongState(
                number.to_string(),
                quote.status.clone(),
                "sent (past its validity or decided)",
            )
            .into())
        }
    }
    let reach = mail_billing_contacts(
        app,
        &mut tx,
        quote.client_id,
        BillingMail {
            kind: "quote-sent",
            template: "quote_sent",
            purpose: LinkPurpose::Quote,
            resource: &quote.number,
            data: json!({
                "number": quote.number,
                "client": quote.client_name,
                "total": format_amount(quote.total_minor, &quote.currency),
                "expiry_date": quote.expiry_date,
            }),
            also: None,
            optional: None,
            attachments: &[],
        },
        now,
    )
    .await
    .context("queueing the quote mail")?;
    tx.commit().await?;
    app.ingestor.outbox_ready.notify_one();
    Ok(Sent {
        number: quote.number,
        mailed: reach.queued,
        undeliverable: reach.queued == 0,
        recipients: reach.recipients,
    })
}

/// A payment staff record by hand (a bank transfer, cash, a cheque).
#[derive(Debug, Clone)]
pub struct ManualPayment<'a> {
    pub invoice_number: &'a str,
    pub amount_minor: i64,
    pub method: &'a str,
    /// The bank's reference or similar, for the record.
    pub reference: Option<&'a str>,
}

/// Records `p` as received now: the invoice's balance drops, any excess
/// becomes store credit, and the receipt is mailed. Returns the payment id.
pub async fn record_manual_payment(app: &App, p: &ManualPayment<'_>) -> anyhow::Result<i64> {
    let now = app.clock.now_millis();
    let mut tx = app.db.begin().await?;
    let invoice = invoices::invoice_by_number(&mut tx, p.invoice_number)
        .await?
        .ok_or_else(|| BillingError::UnknownInvoice(p.invoice_number.to_string()))?;
    if matches!(
        InvoiceStatus::parse(&invoice.status),
        Some(InvoiceStatus::Cancelled | InvoiceStatus::Draft) | None
    ) {
        return Err(BillingError::WrongState(
            invoice.number,
            invoice.status,
            "paid (send it first, or it is cancelled)",
        )
        .into());
    }
    if p.amount_minor <= 0 {
        return Err(BillingError::BadAmount(format_amount(
            invoice.total_minor - invoice.paid_minor,
            &invoice.currency,
        ))
        .into());
    }
    let id = payments::insert_payment(
        &mut tx,
        &NewPayment {
            client_id: invoice.client_id,
            contact_id: None,
            method: p.method,
            provider: None,
            provider_reference: None,
            reference: p.reference,
            currency: &invoice.currency,
            amount_minor: p.amount_minor,
            status: PaymentStatus::Open,
            allocations: &[(invoice.id, p.amount_minor)],
        },
        now,
    )
    .await?;
    let record = payments::payment_by_id(&mut tx, id)
        .await?
        .context("the payment just written")?;
    settle(app, &mut tx, &record, Settlement::Succeeded, None, now).await?;
    tx.commit().await?;
    app.ingestor.outbox_ready.notify_one();
    Ok(id)
}
