//! Money arriving (or not): a payment moves to processing, succeeded or
//! failed; its invoices' paid amounts and statuses follow; an overpayment
//! becomes store credit; the client's billing people get a receipt or a
//! "did not go through" mail. All in the caller's transaction, so the
//! webhook event, the balance and the mail commit together or not at all.

use serde_json::json;

use super::client_today;
use super::notify::{mail_billing_contacts, BillingMail, Reach};
use crate::app::App;
use crate::db::contacts;
use crate::db::invoices::invoice_by_id;
use crate::db::payments::{self, PaymentRecord};
use crate::db::Conn;
use crate::domain::{format_amount, PaymentStatus};
use crate::links::LinkPurpose;

/// What the provider (or a staff member) says happened to a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// A bank debit was accepted and has not cleared yet.
    Processing,
    Succeeded,
    Failed,
}

impl Settlement {
    fn status(self) -> PaymentStatus {
        match self {
            Self::Processing => PaymentStatus::Processing,
            Self::Succeeded => PaymentStatus::Succeeded,
            Self::Failed => PaymentStatus::Failed,
        }
    }

    /// The states a payment may reach this one from; anything else means an
    /// earlier event already settled it.
    fn from(self) -> &'static [PaymentStatus] {
        match self {
            Self::Processing => &[PaymentStatus::Open],
            Self::Succeeded | Self::Failed => &[PaymentStatus::Open, PaymentStatus::Processing],
        }
    }
}

/// Applies `outcome` to `payment`. Returns who was mailed, or `None`,
/// changing nothing, when the payment was already past that point.
pub async fn settle(
    app: &App,
    tx: &mut Conn,
    payment: &PaymentRecord,
    outcome: Settlement,
    method: Option<&str>,
    now_ms: i64,
) -> anyhow::Result<Option<Reach>> {
    let day = client_today(app, tx, payment.client_id, now_ms).await?;
    let mut excess = 0;
    let mut allocations = payment.allocations.clone();
    if outcome == Settlement::Succeeded {
        // Something else may have paid these invoices since the client
        // pressed "Pay": what is more than a balance is kept as credit.
        for a in &mut allocations {
            let Some(invoice) = invoice_by_id(tx, a.invoice_id).await? else {
                continue;
            };
            let room = (invoice.total_minor - invoice.paid_minor).max(0);
            if a.amount_minor > room {
                excess += a.amount_minor - room;
                a.amount_minor = room;
                payments::set_allocation(tx, payment.id, a.invoice_id, room).await?;
            }
        }
    }
    let moved = payments::transition_payment(
        tx,
        payment.id,
        outcome.from(),
        outcome.status(),
        method,
        now_ms,
    )
    .await?;
    if !moved {
        return Ok(None);
    }
    let mut invoices = Vec::new();
    for a in &allocations {
        let invoice = payments::refresh_invoice(tx, a.invoice_id, &day, now_ms).await?;
        let balance = (invoice.total_minor - invoice.paid_minor).max(0);
        invoices.push(json!({
            "number": invoice.number,
            "applied": format_amount(a.amount_minor, &payment.currency),
            "balance": format_amount(balance, &payment.currency),
            "settled": balance == 0,
        }));
    }
    if excess > 0 {
        payments::add_store_credit(
            tx,
            payment.client_id,
            &payment.currency,
            excess,
            "overpayment",
            allocations.first().map(|a| a.invoice_id),
            now_ms,
        )
        .await?;
    }
    let (kind, template) = match outcome {
        Settlement::Processing => return Ok(Some(Reach::default())),
        Settlement::Succeeded => ("payment-received", "payment_received"),
        Settlement::Failed => ("payment-failed", "payment_failed"),
    };
    // One invoice: its page; several: the statement, which lists them all.
    let (purpose, resource) = match allocations.as_slice() {
        [one] => (LinkPurpose::Invoice, one.invoice_number.as_str()),
        _ => (LinkPurpose::Statement, ""),
    };
    let payer = match payment.contact_id {
        Some(id) => contacts::find_contact_by_id(tx, id).await?,
        None => None,
    };
    let client = contacts::client_name(tx, payment.client_id)
        .await?
        .unwrap_or_default();
    let method = method.unwrap_or(&payment.method);
    let reach = mail_billing_contacts(
        app,
        tx,
        payment.client_id,
        BillingMail {
            kind,
            template,
            purpose,
            resource,
            data: json!({
                "client": client,
                "amount": format_amount(payment.amount_minor, &payment.currency),
                "method": method_label(method),
                "invoices": invoices,
                "credit": (excess > 0).then(|| format_amount(excess, &payment.currency)),
            }),
            also: payer.as_ref(),
            optional: None,
            attachments: &[],
        },
        now_ms,
    )
    .await?;
    Ok(Some(reach))
}

/// How a payment method reads in a mail or on a page.
pub fn method_label(method: &str) -> &str {
    match method {
        "card" => "card",
        "us-bank-account" => "US bank account",
        "sepa-debit" => "SEPA Direct Debit",
        "bank-transfer" => "bank transfer",
        "cash" => "cash",
        "credit" => "store credit",
        "cheque" => "cheque",
        _ => "payment",
    }
}
