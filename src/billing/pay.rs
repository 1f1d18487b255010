//! "Pay now": a client pays one invoice, or several from the statement, in
//! full or in part. Store credit is used first (it is the client's money
//! already); what remains goes to the provider's hosted checkout. The payment
//! row (status `open`) is committed before the provider is called, and its id
//! is the idempotency key, so a retried call cannot charge twice. Nothing
//! counts until the provider's verified webhook says so (`webhook.rs`).

use std::sync::Arc;

use anyhow::Context;

use super::settle::{settle, Settlement};
use crate::app::App;
use crate::db::contacts::Contact;
use crate::db::invoices::{self, InvoiceSummary};
use crate::db::payments::{self, NewPayment};
use crate::domain::{format_amount, Currency, InvoiceStatus, Money, PaymentStatus};
use crate::payments::{CheckoutPayment, PaymentProvider};

/// What the client asked to pay: invoice numbers and amounts in minor units.
#[derive(Debug, Clone)]
pub struct PayRequest<'a> {
    pub contact: &'a Contact,
    pub items: Vec<(String, i64)>,
    /// The page to come back to (`/invoice/INV-1`, `/statement`).
    pub return_path: &'a str,
}

/// Where the client goes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayStart {
    /// To the provider's checkout page.
    Redirect(String),
    /// Store credit paid everything; nothing to charge.
    PaidWithCredit,
}

/// The client's mistakes, shown on the page.
#[derive(Debug, thiserror::Error)]
pub enum PayError {
    #[error("Please enter an amount to pay.")]
    NothingToPay,
    #[error("Invoice {0} cannot be paid here.")]
    NotPayable(String),
    #[error("The amount for invoice {number} must be more than zero and at most {max}.")]
    BadAmount { number: String, max: String },
    #[error("Invoices in different currencies must be paid one at a time.")]
    MixedCurrencies,
    #[error("Online payment is not available just now; please try again later.")]
    Provider,
}

/// Starts paying `req`: credit first, then the provider's checkout.
pub async fn start_payment(
    app: &App,
    provider: &Arc<dyn PaymentProvider>,
    req: &PayRequest<'_>,
) -> anyhow::Result<Result<PayStart, PayError>> {
    let Some(client_id) = req.contact.client_id else {
        return Ok(Err(PayError::NothingToPay));
    };
    let now = app.clock.now_millis();
    let mut tx = app.db.begin().await?;
    // Check every item against the invoice as it stands, in the transaction.
    let mut wanted: Vec<(InvoiceSummary, i64)> = Vec::new();
    for (number, amount) in &req.items {
        if *amount == 0 {
            continue;
        }
        let Some(invoice) = invoices::invoice_by_number(&mut tx, number).await? else {
            return Ok(Err(PayError::NotPayable(number.clone())));
        };
        let payable_status = matches!(
            InvoiceStatus::parse(&invoice.status),
            Some(
                InvoiceStatus::Sent
                    | InvoiceStatus::Partial
                    | InvoiceStatus::Overdue
                    | InvoiceStatus::Processing
            )
        );
        if invoice.client_id != client_id || !payable_status {
            return Ok(Err(PayError::NotPayable(number.clone())));
        }
        let in_flight = payments::processing_of_invoice(&mut tx, invoice.id).await?;
        let max = invoice.total_minor - invoice.paid_minor - in_flight;
        if *amount < 0 || *amount > max {
            return Ok(Err(PayError::BadAmount {
                number: number.clone(),
                max: format_amount(max.max(0), &invoice.currency),
            }));
        }
        wanted.push((invoice, *amount));
    }
    let Some(currency) = wanted.first().map(|(i, _)| i.currency.clone()) else {
        return Ok(Err(PayError::NothingToPay));
    };
    if wanted.iter().any(|(i, _)| i.currency != currency) {
        return Ok(Err(PayError::MixedCurrencies));
    }

    // Store credit first, invoice by invoice (oldest due first).
    wanted.sort_by(|a, b| a.0.due_date.cmp(&b.0.due_date));
    let mut credit = payments::store_credit(&mut tx, client_id, &currency).await?;
    let mut from_credit = Vec::new();
    for (invoice, amount) in &mut wanted {
        let used = credit.min(*amount);
        if used > 0 {
            from_credit.push((invoice.id, used));
            *amount -= used;
            credit -= used;
        }
    }
    if !from_credit.is_empty() {
        let total: i64 = from_credit.iter().map(|(_, a)| a).sum();
        let id = payments::insert_payment(
            &mut tx,
            &NewPayment {
                client_id,
                contact_id: Some(req.contact.id),
                method: "credit",
                provider: None,
                provider_reference: None,
                reference: None,
                currency: &currency,
                amount_minor: total,
                status: PaymentStatus::Open,
                allocations: &from_credit,
            },
            now,
        )
        .await?;
        payments::add_store_credit(&mut tx, client_id, &currency, -total, "used", None, now)
            .await?;
        let record = payments::payment_by_id(&mut tx, id)
            .await?
            .context("the credit payment just written")?;
        settle(app, &mut tx, &record, Settlement::Succeeded, None, now).await?;
    }
    let to_charge: Vec<(i64, i64)> = wanted
        .iter()
        .filter(|(_, a)| *a > 0)
        .map(|(i, a)| (i.id, *a))
        .collect();
    if to_charge.is_empty() {
        tx.commit().await?;
        app.ingestor.outbox_ready.notify_one();
        return Ok(Ok(PayStart::PaidWithCredit));
    }
    let total: i64 = to_charge.iter().map(|(_, a)| a).sum();
    let payment_id = payments::insert_payment(
        &mut tx,
        &NewPayment {
            client_id,
            contact_id: Some(req.contact.id),
            // What the client really used is recorded when it completes.
            method: "card",
            provider: Some(provider.name()),
            provider_reference: None,
            reference: None,
            currency: &currency,
            amount_minor: total,
            status: PaymentStatus::Open,
            allocations: &to_charge,
        },
        now,
    )
    .await?;
    let customer =
        crate::db::payment_methods::provider_customer(&mut tx, client_id, provider.name()).await?;
    tx.commit().await?;
    app.ingestor.outbox_ready.notify_one();

    let numbers: Vec<&str> = wanted
        .iter()
        .filter(|(_, a)| *a > 0)
        .map(|(i, _)| i.number.as_str())
        .collect();
    let base = &app.config.web.base_url;
    let cur = Currency::parse(&currency).context("stored currency")?;
    let checkout = CheckoutPayment {
        invoice_number: numbers.join(","),
        client_ref: client_id.to_string(),
        payment_ref: payment_id.to_string(),
        customer,
        amount: Money::from_minor(total, cur),
        description: match numbers.as_slice() {
            [one] => format!("Invoice {one}"),
            many => format!("Invoices {}", many.join(", ")),
        },
        success_url: format!("{base}{}?paid=1", req.return_path),
        cancel_url: format!("{base}{}", req.return_path),
        idempotency_key: format!("postdesk-payment-{payment_id}"),
    };
    let redirect = match provider.create_checkout_payment(&checkout).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, payment = payment_id, "checkout could not be started");
            let mut conn = app.db.conn().await?;
            payments::transition_payment(
                &mut conn,
                payment_id,
                &[PaymentStatus::Open],
                PaymentStatus::Failed,
                None,
                app.clock.now_millis(),
            )
            .await?;
            return Ok(Err(PayError::Provider));
        }
    };
    let mut conn = app.db.conn().await?;
    payments::set_provider_reference(&mut conn, payment_id, &redirect.session_id).await?;
    Ok(Ok(PayStart::Redirect(redirect.url)))
}
