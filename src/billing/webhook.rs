//! What a verified provider webhook changes. The event only says *that*
//! something happened: the object is fetched again from the provider's API
//! and only what the API says now counts. The event id is recorded in the
//! same transaction as its effect, so a replay or a re-delivery changes
//! nothing, and a crash before the commit leaves it for the provider's retry.
//! The signature check itself is `payments::webhook::verify`, done by the
//! HTTP handler before anything here runs.

use std::sync::Arc;

use anyhow::Context;

use super::settle::{settle, Settlement};
use crate::app::App;
use crate::audit::{Actor, AuditEvent, AuditKind, Outcome};
use crate::db::audit;
use crate::db::payment_methods::{self, NewMethod};
use crate::db::payments;
use crate::domain::PaymentStatus;
use crate::payments::{
    CheckoutMode, CheckoutPaymentStatus, CheckoutSession, CheckoutStatus, EventKind,
    PaymentIntentStatus, PaymentMetadata, PaymentMethodKind, PaymentProvider, SetupIntentStatus,
    VerifiedEvent,
};

/// What became of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookOutcome {
    Applied,
    /// Seen before: nothing changed.
    Duplicate,
    /// Nothing for us (another event type, a session we did not start, a
    /// payment already past that point).
    Ignored(&'static str),
}

/// Applies `event`. An `Err` is ours or the provider's API failing: the
/// caller answers 5xx so the provider delivers the event again.
pub async fn apply_event(
    app: &App,
    provider: &Arc<dyn PaymentProvider>,
    event: &VerifiedEvent,
) -> anyhow::Result<WebhookOutcome> {
    match event.kind {
        EventKind::CheckoutSessionCompleted
        | EventKind::CheckoutSessionAsyncPaymentSucceeded
        | EventKind::CheckoutSessionAsyncPaymentFailed => {}
        // An auto-pay bank debit settles days after the scheduler charged it.
        EventKind::PaymentIntentSucceeded | EventKind::PaymentIntentPaymentFailed => {
            return off_session_payment(app, provider, event).await
        }
        _ => return Ok(WebhookOutcome::Ignored("event type not used")),
    }
    let session = provider
        .fetch_checkout_session(&event.object_id)
        .await
        .context("fetching the checkout session")?;
    match session.mode {
        CheckoutMode::Payment => checkout_payment(app, provider, event, &session).await,
        CheckoutMode::Setup => checkout_setup(app, provider, event, &session).await,
        CheckoutMode::Other(_) => Ok(WebhookOutcome::Ignored("checkout mode not used")),
    }
}

/// A payment intent of an off-session charge (auto-pay; its id is the
/// payment's reference) succeeded or failed. Payment intents of hosted
/// checkouts are settled through their session's events instead, and are
/// not found by their intent id here.
async fn off_session_payment(
    app: &App,
    provider: &Arc<dyn PaymentProvider>,
    event: &VerifiedEvent,
) -> anyhow::Result<WebhookOutcome> {
    let intent = provider
        .fetch_payment_intent(&event.object_id)
        .await
        .context("fetching the payment intent")?;
    let outcome = match intent.status {
        PaymentIntentStatus::Succeeded => Settlement::Succeeded,
        PaymentIntentStatus::RequiresPaymentMethod | PaymentIntentStatus::Canceled => {
            Settlement::Failed
        }
        _ => return Ok(WebhookOutcome::Ignored("the payment is not settled")),
    };
    let now = app.clock.now_millis();
    let mut tx = app.db.begin().await?;
    let Some(payment) =
        payments::payment_by_reference(&mut tx, provider.name(), &intent.id).await?
    else {
        return Ok(WebhookOutcome::Ignored(
            "not an off-session charge of Postdesk's",
        ));
    };
    let amount = if outcome == Settlement::Succeeded {
        intent.amount_received
    } else {
        intent.amount
    };
    apply_settlement(
        app,
        provider,
        event,
        tx,
        &payment,
        Some(amount),
        outcome,
        None,
        now,
    )
    .await
}

async fn checkout_payment(
    app: &App,
    provider: &Arc<dyn PaymentProvider>,
    event: &VerifiedEvent,
    session: &CheckoutSession,
) -> anyhow::Result<WebhookOutcome> {
    let failed = event.kind == EventKind::CheckoutSessionAsyncPaymentFailed;
    let outcome = match (&session.status, &session.payment_status) {
        (_, CheckoutPaymentStatus::Paid) => Settlement::Succeeded,
        (CheckoutStatus::Complete, CheckoutPaymentStatus::Unpaid) if failed => Settlement::Failed,
        (CheckoutStatus::Complete, CheckoutPaymentStatus::Unpaid) => Settlement::Processing,
        _ => return Ok(WebhookOutcome::Ignored("the session is not complete")),
    };
    // How it was paid, from the payment itself.
    let method = match &session.payment_intent {
        Some(pi) => {
            let intent = provider
                .fetch_payment_intent(pi)
                .await
                .context("fetching the payment intent")?;
            match intent.payment_method {
                Some(pm) => Some(
                    provider
                        .fetch_payment_method(&pm)
                        .await
                        .context("fetching the payment method")?
                        .kind,
                ),
                None => None,
            }
        }
        None => None,
    };
    let now = app.clock.now_millis();
    let mut tx = app.db.begin().await?;
    let payment =
        match payments::payment_by_reference(&mut tx, provider.name(), &session.id).await? {
            Some(p) => p,
            None => match unrecorded_session(&mut tx, provider, session).await? {
                Some(p) => p,
                None => return Ok(WebhookOutcome::Ignored("a session Postdesk did not start")),
            },
        };
    let method = method.as_ref().map(method_name);
    apply_settlement(
        app,
        provider,
        event,
        tx,
        &payment,
        session.amount_total,
        outcome,
        method,
        now,
    )
    .await
}

/// The payment of a session whose id was never recorded (the process died
/// between the provider creating it and us writing it down): found by the
/// payment id in the session's metadata, if that payment is still open,
/// has no session yet, and is the same client's. The session id is
/// recorded now, in the caller's transaction.
async fn unrecorded_session(
    tx: &mut crate::db::Conn,
    provider: &Arc<dyn PaymentProvider>,
    session: &CheckoutSession,
) -> anyhow::Result<Option<payments::PaymentRecord>> {
    let meta = &session.metadata;
    let Some(id) = meta
        .other
        .get(PaymentMetadata::PAYMENT)
        .and_then(|v| v.parse::<i64>().ok())
    else {
        return Ok(None);
    };
    let Some(payment) = payments::payment_by_id(tx, id).await? else {
        return Ok(None);
    };
    let same_client = meta.client_ref.as_deref() == Some(payment.client_id.to_string().as_str());
    if !same_client || payment.provider_reference.is_some() || payment.status != PaymentStatus::Open
    {
        return Ok(None);
    }
    payments::set_provider_reference(tx, payment.id, &session.id).await?;
    tracing::warn!(
        payment = payment.id,
        provider = provider.name(),
        "a checkout session was matched to its payment by metadata (its id had not been recorded)"
    );
    Ok(payments::payment_by_id(tx, id).await?)
}

/// The end of every payment event: the amount must be what was asked for,
/// the event is recorded (a replay is a duplicate), then the payment is
/// settled — all in `tx`.
#[allow(clippy::too_many_arguments, reason = "one event's whole context")]
async fn apply_settlement(
    app: &App,
    provider: &Arc<dyn PaymentProvider>,
    event: &VerifiedEvent,
    mut tx: crate::db::Tx,
    payment: &payments::PaymentRecord,
    amount: Option<crate::domain::Money>,
    outcome: Settlement,
    method: Option<&str>,
    now: i64,
) -> anyhow::Result<WebhookOutcome> {
    if let Some(amount) = amount {
        if amount.minor() != payment.amount_minor
            || !amount
                .currency()
                .code()
                .eq_ignore_ascii_case(&payment.currency)
        {
            // Never count money that is not what was asked for: a human looks.
            tracing::error!(
                payment = payment.id,
                "the provider's amount differs from the payment started; not applied"
            );
            return Ok(WebhookOutcome::Ignored("amount differs"));
        }
    }
    if !payments::record_webhook_event(
        &mut tx,
        provider.name(),
        &event.id,
        event.kind.as_str(),
        now,
    )
    .await?
    {
        return Ok(WebhookOutcome::Duplicate);
    }
    if settle(app, &mut tx, payment, outcome, method, now)
        .await?
        .is_none()
    {
        // Recorded as seen (committed below), but the payment had moved on.
        tx.commit().await?;
        return Ok(WebhookOutcome::Ignored("the payment is past that point"));
    }
    let action = match outcome {
        Settlement::Processing => "payment.processing",
        Settlement::Succeeded => "payment.succeeded",
        Settlement::Failed => "payment.failed",
    };
    let event_row = AuditEvent::new(AuditKind::Payment, action, now)
        .actor(Actor::Stripe)
        .client(Some(payment.client_id))
        .resource("payment", &payment.id.to_string())
        .outcome(match outcome {
            Settlement::Failed => Outcome::Failed,
            _ => Outcome::Ok,
        })
        .detail(serde_json::json!({
            "event": event.id,
            "event_kind": event.kind.as_str(),
            "amount_minor": payment.amount_minor,
            "currency": payment.currency,
            "method": method,
        }));
    audit::record(&mut tx, &event_row).await?;
    tx.commit().await?;
    app.ingestor.outbox_ready.notify_one();
    Ok(WebhookOutcome::Applied)
}

async fn checkout_setup(
    app: &App,
    provider: &Arc<dyn PaymentProvider>,
    event: &VerifiedEvent,
    session: &CheckoutSession,
) -> anyhow::Result<WebhookOutcome> {
    if event.kind != EventKind::CheckoutSessionCompleted {
        return Ok(WebhookOutcome::Ignored("setup event not used"));
    }
    let Some(client_id) = session
        .metadata
        .client_ref
        .as_deref()
        .and_then(|c| c.parse::<i64>().ok())
    else {
        return Ok(WebhookOutcome::Ignored("a setup Postdesk did not start"));
    };
    let Some(setup_id) = &session.setup_intent else {
        return Ok(WebhookOutcome::Ignored("no setup intent"));
    };
    let setup = provider
        .fetch_setup_intent(setup_id)
        .await
        .context("fetching the setup intent")?;
    if setup.status != SetupIntentStatus::Succeeded {
        return Ok(WebhookOutcome::Ignored("the setup did not succeed"));
    }
    let (Some(method_id), Some(customer)) = (
        setup.payment_method.as_deref(),
        setup.customer.as_deref().or(session.customer.as_deref()),
    ) else {
        return Ok(WebhookOutcome::Ignored("the setup saved no method"));
    };
    let method = provider
        .fetch_payment_method(method_id)
        .await
        .context("fetching the saved method")?;
    let now = app.clock.now_millis();
    let mut tx = app.db.begin().await?;
    if !payments::record_webhook_event(
        &mut tx,
        provider.name(),
        &event.id,
        event.kind.as_str(),
        now,
    )
    .await?
    {
        return Ok(WebhookOutcome::Duplicate);
    }
    // The customer must be the one we made for this client: metadata alone
    // is not proof of whose card it is.
    let known = payment_methods::provider_customer(&mut tx, client_id, provider.name()).await?;
    if known.as_deref() != Some(customer) {
        tx.commit().await?;
        return Ok(WebhookOutcome::Ignored("the customer is not the client's"));
    }
    payment_methods::save_method(
        &mut tx,
        &NewMethod {
            client_id,
            provider: provider.name(),
            provider_customer: customer,
            provider_method: &method.id,
            kind: method_name(&method.kind),
            brand: method.brand.as_deref(),
            last4: method.last4.as_deref(),
            exp_month: method.exp_month.map(i64::from),
            exp_year: method.exp_year.map(i64::from),
            // The provider's page collected the consent (the mandate for a
            // bank debit) when the setup completed.
            consent_at: session.created.max(0) * 1000,
        },
        now,
    )
    .await?;
    let event_row = AuditEvent::new(AuditKind::Payment, "payment_method.saved", now)
        .actor(Actor::Stripe)
        .client(Some(client_id))
        .resource("payment_method", &method.id)
        .detail(serde_json::json!({
            "event": event.id,
            "kind": method_name(&method.kind),
        }));
    audit::record(&mut tx, &event_row).await?;
    tx.commit().await?;
    Ok(WebhookOutcome::Applied)
}

/// Our name of a payment method kind (as stored on payments and methods).
pub fn method_name(kind: &PaymentMethodKind) -> &'static str {
    match kind {
        PaymentMethodKind::Card => "card",
        PaymentMethodKind::UsBankAccount => "us-bank-account",
        PaymentMethodKind::SepaDebit => "sepa-debit",
        PaymentMethodKind::Other(_) => "other",
    }
}
