//! Auto-pay: a recurring invoice whose definition has a saved payment
//! method is charged off-session through the provider. Each attempt is a
//! job run (`attempt-1`, `attempt-2`, …) and carries its own idempotency key
//! (`autopay-INV-10001-2`), so a retried call after a crash or a timeout
//! cannot charge twice. The payment row is committed before the provider is
//! called; the outcome is settled, the receipt or the "did not go through"
//! mail (with the pay link) queued, and the next attempt planned, in one
//! transaction with the run's end.

use anyhow::Context;

use super::{target_id, JobKind, RunReport, Worker};
use crate::app::App;
use crate::audit::{Actor, AuditEvent, AuditKind, Outcome};
use crate::billing::settle::{method_label, settle, Settlement};
use crate::clock::Millis;
use crate::db::invoices::{self, InvoiceSummary};
use crate::db::job_runs::{self, JobRun, NewRun, RunStatus};
use crate::db::payment_methods::{self, SavedMethod};
use crate::db::payments::{self, NewPayment};
use crate::db::{audit, recurring, Conn};
use crate::domain::{format_amount, Currency, InvoiceStatus, Money, PaymentStatus};
use crate::payments::{OffSessionCharge, PaymentIntentStatus, PaymentMetadata, ProviderError};

pub const KIND: &str = "autopay";

/// The first charge of a freshly issued invoice, due at once.
pub fn first_attempt(invoice_id: i64, client_id: i64, at: Millis) -> NewRun {
    attempt_run(invoice_id, client_id, 1, at)
}

fn attempt_run(invoice_id: i64, client_id: i64, attempt: u32, due_at: Millis) -> NewRun {
    NewRun {
        kind: KIND,
        target: format!("invoice:{invoice_id}"),
        stage: format!("attempt-{attempt}"),
        client_id: Some(client_id),
        due_at,
    }
}

fn attempt_of(run: &JobRun) -> anyhow::Result<u32> {
    run.stage
        .strip_prefix("attempt-")
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("job run {} has a malformed stage", run.id))
}

/// What would be charged: an invoice still owing, its definition's method.
struct Chargeable {
    invoice: InvoiceSummary,
    method: SavedMethod,
    amount: i64,
}

/// Why a run charges nothing, or what it would charge.
async fn chargeable(
    tx: &mut Conn,
    invoice_id: i64,
) -> anyhow::Result<Result<Chargeable, (Option<InvoiceSummary>, String)>> {
    let Some(invoice) = invoices::invoice_by_id(tx, invoice_id).await? else {
        return Ok(Err((None, "the invoice no longer exists".into())));
    };
    match InvoiceStatus::parse(&invoice.status) {
        Some(InvoiceStatus::Sent | InvoiceStatus::Partial | InvoiceStatus::Overdue) => {}
        Some(InvoiceStatus::Processing) => {
            return Ok(Err((Some(invoice), "a payment is on its way".into())))
        }
        _ => {
            let why = format!("the invoice is {}", invoice.status);
            return Ok(Err((Some(invoice), why)));
        }
    }
    let in_flight = payments::processing_of_invoice(tx, invoice.id).await?;
    let amount = invoice.total_minor - invoice.paid_minor - in_flight;
    if amount <= 0 {
        return Ok(Err((Some(invoice), "nothing is owed".into())));
    }
    let definition = match invoices::recurring_origin(tx, invoice.id).await? {
        Some(id) => recurring::definition(tx, id).await?,
        None => None,
    };
    let method_id = definition
        .filter(|d| d.active && d.auto_pay)
        .and_then(|d| d.payment_method_id);
    let method = match method_id {
        Some(m) => payment_methods::method_of_client(tx, m, invoice.client_id).await?,
        None => None,
    };
    let Some(method) = method else {
        return Ok(Err((
            Some(invoice),
            "auto-pay was switched off or its payment method removed".into(),
        )));
    };
    Ok(Ok(Chargeable {
        invoice,
        method,
        amount,
    }))
}

fn about(invoice: Option<&InvoiceSummary>, run: &JobRun) -> String {
    match invoice {
        Some(i) => format!("invoice {}", i.number),
        None => run.target.clone(),
    }
}

fn describe_method(m: &SavedMethod) -> String {
    let label = method_label(&m.kind);
    match (&m.brand, &m.last4) {
        (Some(brand), Some(last4)) => format!("{brand} {label} ending {last4}"),
        (None, Some(last4)) => format!("{label} ending {last4}"),
        _ => label.to_string(),
    }
}

/// A dry run's account of a due charge; calls nothing.
pub async fn preview(app: &App, tx: &mut Conn, run: &JobRun) -> anyhow::Result<RunReport> {
    let invoice_id = target_id(run, "invoice")?;
    if app.payments.is_none() {
        return Ok(RunReport::new(run, JobKind::Autopay, run.target.clone())
            .skipped("no payment provider is configured"));
    }
    Ok(match chargeable(tx, invoice_id).await? {
        Err((invoice, why)) => {
            RunReport::new(run, JobKind::Autopay, about(invoice.as_ref(), run)).skipped(why)
        }
        Ok(c) => RunReport::new(run, JobKind::Autopay, about(Some(&c.invoice), run)).done(format!(
            "would charge {} to the {}",
            format_amount(c.amount, &c.invoice.currency),
            describe_method(&c.method)
        )),
    })
}

/// Carries out one claimed charge. `Ok(None)`: the claim was lost to
/// another worker, or the provider could not be reached and the run waits
/// for its next try (same idempotency key).
pub async fn charge(
    app: &App,
    worker: &Worker,
    run: &JobRun,
    at: Millis,
) -> anyhow::Result<Option<RunReport>> {
    let invoice_id = target_id(run, "invoice")?;
    let attempt = attempt_of(run)?;
    let Some(provider) = app.payments.clone() else {
        let report = RunReport::new(run, JobKind::Autopay, run.target.clone())
            .skipped("no payment provider is configured");
        return finish_alone(app, worker, report, at).await;
    };

    // 1. Reserve the attempt: the payment row exists before the call.
    let mut tx = app.db.begin().await?;
    let c = match chargeable(&mut tx, invoice_id).await? {
        Ok(c) => c,
        Err((invoice, why)) => {
            drop(tx);
            let report =
                RunReport::new(run, JobKind::Autopay, about(invoice.as_ref(), run)).skipped(why);
            return finish_alone(app, worker, report, at).await;
        }
    };
    let key = format!("autopay-{}-{attempt}", c.invoice.number);
    let payment = match payments::payment_with_reference(&mut tx, c.invoice.client_id, &key).await?
    {
        Some(p) => p,
        None => {
            let id = payments::insert_payment(
                &mut tx,
                &NewPayment {
                    client_id: c.invoice.client_id,
                    contact_id: None,
                    method: &c.method.kind,
                    provider: Some(provider.name()),
                    provider_reference: None,
                    reference: Some(&key),
                    currency: &c.invoice.currency,
                    amount_minor: c.amount,
                    status: PaymentStatus::Open,
                    allocations: &[(c.invoice.id, c.amount)],
                },
                at,
            )
            .await?;
            payments::payment_by_id(&mut tx, id)
                .await?
                .context("the payment just written")?
        }
    };
    tx.commit().await?;
    let report = RunReport::new(
        run,
        JobKind::Autopay,
        format!("invoice {}", c.invoice.number),
    );
    if payment.status != PaymentStatus::Open {
        // Settled by an earlier try whose end was not recorded.
        let report = report.done(format!("attempt {attempt} was settled already"));
        return finish_alone(app, worker, report, at).await;
    }

    // 2. The charge, outside any transaction.
    let currency = Currency::parse(&payment.currency)?;
    let result = provider
        .charge_off_session(&OffSessionCharge {
            customer: c.method.provider_customer.clone(),
            payment_method: c.method.provider_method.clone(),
            amount: Money::from_minor(payment.amount_minor, currency),
            description: format!("Invoice {}", c.invoice.number),
            metadata: PaymentMetadata::for_invoice(
                &c.invoice.number,
                &c.invoice.client_id.to_string(),
            )
            .with("attempt", &attempt.to_string())
            .with(PaymentMetadata::PAYMENT, &payment.id.to_string()),
            idempotency_key: key.clone(),
        })
        .await;

    // 3. Its outcome, the mails and the next attempt, with the run's end.
    let mut tx = app.db.begin().await?;
    let amount = format_amount(payment.amount_minor, &payment.currency);
    let method = describe_method(&c.method);
    let (report, failed) = match result {
        Ok(intent) => {
            payments::set_provider_reference(&mut tx, payment.id, &intent.id).await?;
            match intent.status {
                PaymentIntentStatus::Succeeded => {
                    let reach =
                        settle(app, &mut tx, &payment, Settlement::Succeeded, None, at).await?;
                    (
                        report
                            .done(format!("charged {amount} to the {method}"))
                            .mailed("payment-received", reach.unwrap_or_default().recipients),
                        false,
                    )
                }
                PaymentIntentStatus::Processing => {
                    settle(app, &mut tx, &payment, Settlement::Processing, None, at).await?;
                    (
                        report.done(format!(
                            "debit of {amount} from the {method} started; it settles later"
                        )),
                        false,
                    )
                }
                other => (
                    report.done(format!("the charge did not complete ({other:?})")),
                    true,
                ),
            }
        }
        Err(ProviderError::Declined(decline)) => {
            let code = decline
                .decline_code
                .or(decline.code)
                .unwrap_or_else(|| "declined".into());
            (
                report.done(format!("the {method} was declined ({code})")),
                true,
            )
        }
        Err(e) if e.is_retryable() => {
            drop(tx);
            tracing::warn!(error = %e, run = run.id, "auto-pay: provider unreachable; retrying later");
            let mut conn = app.db.conn().await?;
            let retry_at = at + 15 * 60 * 1000;
            job_runs::retry_later(
                &mut conn,
                run.id,
                &worker.owner,
                retry_at,
                "provider unreachable",
            )
            .await?;
            return Ok(None);
        }
        Err(e) => {
            // Our configuration or a bug, not the payer: staff must look.
            tracing::error!(error = %e, run = run.id, "auto-pay charge refused by the provider");
            payments::transition_payment(
                &mut tx,
                payment.id,
                &[PaymentStatus::Open],
                PaymentStatus::Failed,
                None,
                at,
            )
            .await?;
            let mut report = report;
            report.status = RunStatus::Failed;
            report.why = format!("the provider refused the request: {e}");
            audit::record(
                &mut tx,
                &charge_event(&c.invoice, payment.id, attempt, false, at),
            )
            .await?;
            return finish_in(app, tx, worker, report, at).await;
        }
    };
    audit::record(
        &mut tx,
        &charge_event(&c.invoice, payment.id, attempt, !failed, at),
    )
    .await?;
    let mut report = report;
    if failed {
        let reach = settle(app, &mut tx, &payment, Settlement::Failed, None, at).await?;
        report = report.mailed("payment-failed", reach.unwrap_or_default().recipients);
        if attempt < app.config.schedules.autopay_attempts {
            let retry_at =
                at + i64::from(app.config.schedules.autopay_retry_days) * 24 * 60 * 60 * 1000;
            job_runs::plan_runs(
                &mut tx,
                &[attempt_run(
                    c.invoice.id,
                    c.invoice.client_id,
                    attempt + 1,
                    retry_at,
                )],
                at,
            )
            .await?;
            report.why.push_str(&format!(
                "; attempt {} planned for {}",
                attempt + 1,
                crate::clock::to_rfc3339(retry_at)
            ));
        } else {
            report.why.push_str("; no attempts left");
        }
    }
    finish_in(app, tx, worker, report, at).await
}

/// The audit log's entry of one charge attempt, written with its outcome.
fn charge_event(
    invoice: &InvoiceSummary,
    payment_id: i64,
    attempt: u32,
    ok: bool,
    at: Millis,
) -> AuditEvent {
    AuditEvent::new(AuditKind::Payment, "autopay.charge", at)
        .actor(Actor::System)
        .client(Some(invoice.client_id))
        .resource("invoice", &invoice.number)
        .outcome(if ok { Outcome::Ok } else { Outcome::Failed })
        .detail(serde_json::json!({ "payment": payment_id, "attempt": attempt }))
}

async fn finish_alone(
    app: &App,
    worker: &Worker,
    report: RunReport,
    at: Millis,
) -> anyhow::Result<Option<RunReport>> {
    let tx = app.db.begin().await?;
    finish_in(app, tx, worker, report, at).await
}

async fn finish_in(
    app: &App,
    mut tx: crate::db::Tx,
    worker: &Worker,
    report: RunReport,
    at: Millis,
) -> anyhow::Result<Option<RunReport>> {
    if !job_runs::finish(
        &mut tx,
        report.run_id,
        &worker.owner,
        report.status,
        &report.why,
        at,
    )
    .await?
    {
        tx.rollback().await?;
        return Ok(None);
    }
    tx.commit().await?;
    app.ingestor.outbox_ready.notify_one();
    Ok(Some(report))
}
