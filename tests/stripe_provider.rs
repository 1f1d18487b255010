//! The Stripe provider against the fake Stripe server: checkout sessions
//! (idempotent per attempt), the hosted page with its signed webhooks, bank
//! debits that stay processing until they settle, saving, showing and
//! detaching methods, off-session charges, and Stripe's errors as typed
//! errors. No mail servers or database needed.

#[path = "support/fake_stripe.rs"]
mod fake_stripe;

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::HeaderMap;
use fake_stripe::{FakeStripe, PayWith, WEBHOOK_SECRET};
use postdesk::domain::{Currency, Money};
use postdesk::payments::{
    verify, CheckoutMode, CheckoutPayment, CheckoutPaymentStatus, CheckoutSetup, CheckoutStatus,
    EventKind, NewCustomer, OffSessionCharge, PaymentIntentStatus, PaymentMetadata,
    PaymentMethodKind, PaymentProvider, ProviderError, SetupIntentStatus, StripeClient,
    WebhookError,
};
use serde_json::json;

fn eur(minor: i64) -> Money {
    Money::from_minor(minor, Currency::parse("EUR").unwrap())
}

fn usd(minor: i64) -> Money {
    Money::from_minor(minor, Currency::parse("USD").unwrap())
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn start() -> (FakeStripe, StripeClient) {
    let fake = FakeStripe::start().await;
    let client = StripeClient::new(&fake.config()).unwrap();
    (fake, client)
}

fn payment(invoice: &str, amount: Money, key: &str) -> CheckoutPayment {
    CheckoutPayment {
        invoice_number: invoice.into(),
        client_ref: "17".into(),
        payment_ref: "42".into(),
        customer: None,
        amount,
        description: format!("Invoice {invoice}"),
        success_url: "https://help.example.test/paid?session={CHECKOUT_SESSION_ID}".into(),
        cancel_url: "https://help.example.test/invoice".into(),
        idempotency_key: key.into(),
    }
}

async fn customer(client: &StripeClient, key: &str) -> String {
    client
        .create_customer(&NewCustomer {
            client_ref: "17".into(),
            name: "Customer GmbH".into(),
            email: Some(postdesk::domain::EmailAddress::parse("billing@customer.test").unwrap()),
            idempotency_key: key.into(),
        })
        .await
        .unwrap()
}

/// A webhook endpoint that keeps what it receives and checks it with the
/// production verifier.
#[derive(Clone, Default)]
struct WebhookSink {
    received: Arc<Mutex<Vec<Received>>>,
}

/// A request's raw body and its `Stripe-Signature` header.
type Received = (Vec<u8>, String);

impl WebhookSink {
    async fn start(fake: &FakeStripe) -> WebhookSink {
        let sink = WebhookSink::default();
        let kept = sink.clone();
        let app = axum::Router::new().route(
            "/webhooks/stripe",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let kept = kept.clone();
                async move {
                    let signature = headers
                        .get("stripe-signature")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    kept.received
                        .lock()
                        .unwrap()
                        .push((body.to_vec(), signature));
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/webhooks/stripe", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fake.set_webhook_target(url);
        sink
    }

    /// Every received request, verified: (event kind, object id).
    fn verified(&self) -> Vec<(EventKind, String)> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|(body, header)| {
                let event = verify(body, header, &[WEBHOOK_SECRET.to_string()], now_unix())
                    .expect("the fake's webhook verifies");
                (event.kind, event.object_id)
            })
            .collect()
    }
}

#[tokio::test]
async fn a_checkout_session_is_created_once_per_idempotency_key() {
    let (fake, client) = start().await;
    let first = client
        .create_checkout_payment(&payment("INV-1", eur(12_345), "pay-INV-1-a"))
        .await
        .unwrap();
    let again = client
        .create_checkout_payment(&payment("INV-1", eur(12_345), "pay-INV-1-a"))
        .await
        .unwrap();
    assert_eq!(first, again, "the same key gives the same session");
    assert_eq!(
        first.url,
        format!("{}/pay/{}", fake.api_base, first.session_id)
    );
    let other = client
        .create_checkout_payment(&payment("INV-1", eur(12_345), "pay-INV-1-b"))
        .await
        .unwrap();
    assert_ne!(
        other.session_id, first.session_id,
        "a new attempt, a new session"
    );

    // The same key with other parameters is refused, not silently reused.
    let conflict = client
        .create_checkout_payment(&payment("INV-1", eur(500), "pay-INV-1-a"))
        .await
        .unwrap_err();
    assert!(
        matches!(conflict, ProviderError::IdempotencyConflict),
        "{conflict:?}"
    );

    // What went over the wire: Stripe's nested form keys, minor units,
    // lowercase currency, bank debits only where the currency fits, metadata
    // on the session and on the payment it will create.
    let request = &fake.requests()[0];
    assert_eq!(request.path, "/v1/checkout/sessions");
    assert_eq!(request.idempotency_key.as_deref(), Some("pay-INV-1-a"));
    for (key, value) in [
        ("mode", "payment"),
        ("line_items[0][price_data][unit_amount]", "12345"),
        ("line_items[0][price_data][currency]", "eur"),
        (
            "line_items[0][price_data][product_data][name]",
            "Invoice INV-1",
        ),
        ("line_items[0][quantity]", "1"),
        ("payment_method_types[0]", "card"),
        ("payment_method_types[1]", "sepa_debit"),
        ("metadata[invoice_number]", "INV-1"),
        ("metadata[client_ref]", "17"),
        ("payment_intent_data[metadata][invoice_number]", "INV-1"),
        ("client_reference_id", "17"),
    ] {
        assert_eq!(request.param(key), Some(value), "{key}");
    }
    assert_eq!(request.param("payment_method_types[2]"), None);

    let session = client
        .fetch_checkout_session(&first.session_id)
        .await
        .unwrap();
    assert_eq!(session.mode, CheckoutMode::Payment);
    assert_eq!(session.status, CheckoutStatus::Open);
    assert_eq!(session.payment_status, CheckoutPaymentStatus::Unpaid);
    assert_eq!(session.amount_total, Some(eur(12_345)));
    assert_eq!(session.metadata.invoice_number.as_deref(), Some("INV-1"));
    assert_eq!(session.payment_intent, None);

    // USD offers US bank accounts, not SEPA.
    client
        .create_checkout_payment(&payment("INV-2", usd(9_900), "pay-INV-2-a"))
        .await
        .unwrap();
    let request = fake.requests().last().unwrap().clone();
    assert_eq!(
        request.param("payment_method_types[1]"),
        Some("us_bank_account")
    );
    assert_eq!(request.param("payment_method_types[2]"), None);
}

#[tokio::test]
async fn a_card_payment_on_the_hosted_page_is_paid_and_signed_webhooks_follow() {
    let (fake, client) = start().await;
    let sink = WebhookSink::start(&fake).await;
    let redirect = client
        .create_checkout_payment(&payment("INV-7", eur(5_000), "pay-INV-7-1"))
        .await
        .unwrap();

    // The payer's browser: the page, then the form post.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let html = browser
        .get(&redirect.url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("<form method=\"post\""), "{html}");
    assert!(html.contains("value=\"card\"") && html.contains("value=\"sepa_debit\""));
    assert!(!html.contains("us_bank_account"), "not for EUR");
    let response = browser
        .post(&redirect.url)
        .form(&[("method", "card")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        format!(
            "https://help.example.test/paid?session={}",
            redirect.session_id
        )
        .as_str()
    );

    // The webhooks arrived before the redirect, signed so that the
    // production verifier accepts them.
    let session = client
        .fetch_checkout_session(&redirect.session_id)
        .await
        .unwrap();
    let pi_id = session.payment_intent.clone().unwrap();
    assert_eq!(
        sink.verified(),
        vec![
            (
                EventKind::CheckoutSessionCompleted,
                redirect.session_id.clone()
            ),
            (EventKind::PaymentIntentSucceeded, pi_id.clone()),
        ]
    );
    assert!(fake.deliveries().iter().all(|d| d.status == Some(200)));

    // Re-fetched, the objects say paid.
    assert_eq!(session.status, CheckoutStatus::Complete);
    assert_eq!(session.payment_status, CheckoutPaymentStatus::Paid);
    let pi = client.fetch_payment_intent(&pi_id).await.unwrap();
    assert_eq!(pi.status, PaymentIntentStatus::Succeeded);
    assert_eq!(pi.amount_received, eur(5_000));
    assert_eq!(
        pi.metadata,
        PaymentMetadata::for_invoice("INV-7", "17").with(PaymentMetadata::PAYMENT, "42")
    );

    // The page is closed now.
    let again = browser.get(&redirect.url).send().await.unwrap();
    assert_eq!(again.status(), 410);

    // A redelivery is byte-identical in body: the event id is what dedupes.
    let first_event = fake.events()[0]["id"].as_str().unwrap().to_string();
    assert_eq!(fake.redeliver(&first_event).await, Some(200));
    let verified = sink.verified();
    assert_eq!(verified.len(), 3);
    assert_eq!(verified[2].1, redirect.session_id);
}

#[tokio::test]
async fn a_declined_card_leaves_the_checkout_open() {
    let (fake, client) = start().await;
    let sink = WebhookSink::start(&fake).await;
    let redirect = client
        .create_checkout_payment(&payment("INV-8", eur(7_000), "pay-INV-8-1"))
        .await
        .unwrap();
    let done = fake
        .complete_session(&redirect.session_id, None, PayWith::CardThatDeclines)
        .await
        .unwrap();
    assert!(done.declined);
    let session = client
        .fetch_checkout_session(&redirect.session_id)
        .await
        .unwrap();
    assert_eq!(session.status, CheckoutStatus::Open);
    let pi = client
        .fetch_payment_intent(done.payment_intent.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(pi.status, PaymentIntentStatus::RequiresPaymentMethod);
    assert_eq!(pi.amount_received, eur(0));
    let error = pi.last_error.unwrap();
    assert_eq!(error.code.as_deref(), Some("card_declined"));
    assert_eq!(error.message, "Your card was declined.");
    assert_eq!(
        sink.verified(),
        vec![(EventKind::PaymentIntentPaymentFailed, pi.id.clone())]
    );
    // The payer tries again with another card.
    fake.complete_session(&redirect.session_id, None, PayWith::Card)
        .await
        .unwrap();
    let session = client
        .fetch_checkout_session(&redirect.session_id)
        .await
        .unwrap();
    assert_eq!(session.payment_status, CheckoutPaymentStatus::Paid);
}

#[tokio::test]
async fn a_bank_debit_is_processing_until_its_async_event() {
    let (fake, client) = start().await;
    let sink = WebhookSink::start(&fake).await;

    // A partial payment: 40.00 of a larger balance.
    let paid = client
        .create_checkout_payment(&payment("INV-9", eur(4_000), "pay-INV-9-1"))
        .await
        .unwrap();
    let done = fake
        .complete_session(&paid.session_id, None, PayWith::SepaDebit)
        .await
        .unwrap();
    let pi_id = done.payment_intent.unwrap();
    let session = client
        .fetch_checkout_session(&paid.session_id)
        .await
        .unwrap();
    assert_eq!(session.status, CheckoutStatus::Complete);
    assert_eq!(session.payment_status, CheckoutPaymentStatus::Unpaid);
    let pi = client.fetch_payment_intent(&pi_id).await.unwrap();
    assert_eq!(pi.status, PaymentIntentStatus::Processing);
    assert_eq!(pi.amount_received, eur(0));

    fake.settle_async(&paid.session_id, true).await;
    let session = client
        .fetch_checkout_session(&paid.session_id)
        .await
        .unwrap();
    assert_eq!(session.payment_status, CheckoutPaymentStatus::Paid);
    let pi = client.fetch_payment_intent(&pi_id).await.unwrap();
    assert_eq!(pi.status, PaymentIntentStatus::Succeeded);
    assert_eq!(pi.amount_received, eur(4_000));

    // Another one bounces.
    let bounced = client
        .create_checkout_payment(&payment("INV-9", eur(6_000), "pay-INV-9-2"))
        .await
        .unwrap();
    let done = fake
        .complete_session(&bounced.session_id, None, PayWith::SepaDebit)
        .await
        .unwrap();
    fake.settle_async(&bounced.session_id, false).await;
    let session = client
        .fetch_checkout_session(&bounced.session_id)
        .await
        .unwrap();
    assert_eq!(session.payment_status, CheckoutPaymentStatus::Unpaid);
    let pi = client
        .fetch_payment_intent(done.payment_intent.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(pi.status, PaymentIntentStatus::RequiresPaymentMethod);
    assert!(pi.last_error.is_some());

    let kinds: Vec<EventKind> = sink.verified().into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        kinds,
        vec![
            EventKind::CheckoutSessionCompleted,
            EventKind::PaymentIntentProcessing,
            EventKind::CheckoutSessionAsyncPaymentSucceeded,
            EventKind::PaymentIntentSucceeded,
            EventKind::CheckoutSessionCompleted,
            EventKind::PaymentIntentProcessing,
            EventKind::CheckoutSessionAsyncPaymentFailed,
            EventKind::PaymentIntentPaymentFailed,
        ]
    );
}

#[tokio::test]
async fn saving_a_method_shows_brand_and_last_four_and_never_more() {
    let (fake, client) = start().await;
    let cus = customer(&client, "customer-17").await;
    assert_eq!(customer(&client, "customer-17").await, cus, "idempotent");

    let setup = |currency: &str, key: &str| CheckoutSetup {
        client_ref: "17".into(),
        customer: cus.clone(),
        currency: Currency::parse(currency).unwrap(),
        consent_text: Some(
            "I authorise Example IT to charge this method for future invoices.".into(),
        ),
        success_url: "https://help.example.test/methods?added={CHECKOUT_SESSION_ID}".into(),
        cancel_url: "https://help.example.test/methods".into(),
        idempotency_key: key.into(),
    };
    let redirect = client
        .create_checkout_setup(&setup("usd", "setup-17-1"))
        .await
        .unwrap();
    let request = fake.requests().last().unwrap().clone();
    assert_eq!(request.param("mode"), Some("setup"));
    assert_eq!(request.param("customer"), Some(cus.as_str()));
    assert_eq!(
        request.param("setup_intent_data[metadata][client_ref]"),
        Some("17")
    );
    let html = reqwest::get(&redirect.url)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("I authorise Example IT"), "{html}");

    let done = fake
        .complete_session(&redirect.session_id, None, PayWith::Card)
        .await
        .unwrap();
    assert_eq!(
        done.redirect,
        format!(
            "https://help.example.test/methods?added={}",
            redirect.session_id
        )
    );
    let session = client
        .fetch_checkout_session(&redirect.session_id)
        .await
        .unwrap();
    assert_eq!(session.mode, CheckoutMode::Setup);
    assert_eq!(
        session.payment_status,
        CheckoutPaymentStatus::NoPaymentRequired
    );
    let si = client
        .fetch_setup_intent(session.setup_intent.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(si.status, SetupIntentStatus::Succeeded);
    assert_eq!(si.customer.as_deref(), Some(cus.as_str()));
    assert_eq!(si.metadata.client_ref.as_deref(), Some("17"));
    assert_eq!(si.mandate, None, "cards have no mandate object");

    let pm = client
        .fetch_payment_method(si.payment_method.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(pm.kind, PaymentMethodKind::Card);
    assert_eq!(pm.brand.as_deref(), Some("visa"));
    assert_eq!(pm.last4.as_deref(), Some("4242"));
    assert_eq!((pm.exp_month, pm.exp_year), (Some(12), Some(2034)));
    assert_eq!(pm.customer.as_deref(), Some(cus.as_str()));
    assert_eq!(pm.label(), "Visa •••• 4242");
    let printed = format!("{pm:?}");
    for secret in [
        "FAKEfingerprint",
        "Jenny",
        "jenny.rosen",
        "Main Street",
        "credit",
    ] {
        assert!(!printed.contains(secret), "{secret} in {printed}");
    }

    // A US bank account comes with a mandate; the routing number stays out.
    let redirect = client
        .create_checkout_setup(&setup("usd", "setup-17-2"))
        .await
        .unwrap();
    let done = fake
        .complete_session(&redirect.session_id, None, PayWith::UsBankAccount)
        .await
        .unwrap();
    let si = client
        .fetch_setup_intent(done.setup_intent.as_deref().unwrap())
        .await
        .unwrap();
    assert!(si.mandate.is_some());
    let pm = client
        .fetch_payment_method(&done.payment_method)
        .await
        .unwrap();
    assert_eq!(pm.kind, PaymentMethodKind::UsBankAccount);
    assert_eq!(pm.label(), "STRIPE TEST BANK •••• 6789");
    assert_eq!((pm.exp_month, pm.exp_year), (None, None));
    assert!(!format!("{pm:?}").contains("110000000"));

    // SEPA only where the currency is EUR.
    let redirect = client
        .create_checkout_setup(&setup("eur", "setup-17-3"))
        .await
        .unwrap();
    let done = fake
        .complete_session(&redirect.session_id, None, PayWith::SepaDebit)
        .await
        .unwrap();
    let pm = client
        .fetch_payment_method(&done.payment_method)
        .await
        .unwrap();
    assert_eq!(pm.kind, PaymentMethodKind::SepaDebit);
    assert_eq!(pm.label(), "SEPA Direct Debit •••• 3000");
    assert!(fake
        .complete_session(
            &client
                .create_checkout_setup(&setup("eur", "setup-17-4"))
                .await
                .unwrap()
                .session_id,
            None,
            PayWith::UsBankAccount
        )
        .await
        .is_err());
}

#[tokio::test]
async fn a_detached_method_is_gone_and_detaching_twice_is_fine() {
    let (fake, client) = start().await;
    let cus = customer(&client, "customer-detach").await;
    let pm = fake.attach_method(&cus, PayWith::Card);
    client.detach_payment_method(&pm).await.unwrap();
    client.detach_payment_method(&pm).await.unwrap();
    assert_eq!(fake.detached(), vec![pm.clone()], "detached once");
    let fetched = client.fetch_payment_method(&pm).await.unwrap();
    assert_eq!(fetched.customer, None);

    let charge = client
        .charge_off_session(&OffSessionCharge {
            customer: cus,
            payment_method: pm,
            amount: eur(1_000),
            description: "Invoice INV-20".into(),
            metadata: PaymentMetadata::for_invoice("INV-20", "17"),
            idempotency_key: "autopay-INV-20-1".into(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&charge, ProviderError::InvalidRequest { param: Some(p), .. } if p == "payment_method"),
        "{charge:?}"
    );
    assert!(fake.charges().is_empty());
}

#[tokio::test]
async fn off_session_charges_succeed_once_per_key_or_decline() {
    let (fake, client) = start().await;
    let cus = customer(&client, "customer-autopay").await;
    let good = fake.attach_method(&cus, PayWith::Card);
    let charge = |pm: &str, key: &str, amount: Money| OffSessionCharge {
        customer: cus.clone(),
        payment_method: pm.to_string(),
        amount,
        description: "Invoice INV-30".into(),
        metadata: PaymentMetadata::for_invoice("INV-30", "17").with("attempt", "1"),
        idempotency_key: key.into(),
    };

    let pi = client
        .charge_off_session(&charge(&good, "autopay-INV-30-1", eur(2_500)))
        .await
        .unwrap();
    assert_eq!(pi.status, PaymentIntentStatus::Succeeded);
    assert_eq!(pi.amount_received, eur(2_500));
    assert_eq!(
        pi.metadata.other.get("attempt").map(String::as_str),
        Some("1")
    );
    let again = client
        .charge_off_session(&charge(&good, "autopay-INV-30-1", eur(2_500)))
        .await
        .unwrap();
    assert_eq!(again.id, pi.id, "the same key charges once");
    assert_eq!(fake.charges().len(), 1);
    let request = fake
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/payment_intents")
        .unwrap();
    assert_eq!(request.param("off_session"), Some("true"));
    assert_eq!(request.param("confirm"), Some("true"));
    assert_eq!(request.param("amount"), Some("2500"));
    assert_eq!(request.param("currency"), Some("eur"));
    assert_eq!(request.param("metadata[invoice_number]"), Some("INV-30"));

    // The card that declines.
    let bad = fake.attach_method(&cus, PayWith::CardThatDeclines);
    let declined = client
        .charge_off_session(&charge(&bad, "autopay-INV-30-2", eur(2_500)))
        .await
        .unwrap_err();
    let ProviderError::Declined(decline) = &declined else {
        panic!("{declined:?}")
    };
    assert_eq!(decline.code.as_deref(), Some("card_declined"));
    assert_eq!(decline.decline_code.as_deref(), Some("generic_decline"));
    assert!(!declined.is_retryable());
    let failed_pi = decline.payment_intent.clone().unwrap();
    let pi = client.fetch_payment_intent(&failed_pi).await.unwrap();
    assert_eq!(pi.status, PaymentIntentStatus::RequiresPaymentMethod);
    // Retrying the same attempt repeats the answer without a new attempt.
    let repeated = client
        .charge_off_session(&charge(&bad, "autopay-INV-30-2", eur(2_500)))
        .await
        .unwrap_err();
    assert!(matches!(repeated, ProviderError::Declined(_)));
    let charges = fake.charges();
    assert_eq!(charges.len(), 2);
    assert_eq!(charges[1].status, "failed");

    // A SEPA debit off-session: processing, then settled by its event.
    let sepa = fake.attach_method(&cus, PayWith::SepaDebit);
    let pi = client
        .charge_off_session(&charge(&sepa, "autopay-INV-30-3", eur(2_500)))
        .await
        .unwrap();
    assert_eq!(pi.status, PaymentIntentStatus::Processing);
    fake.settle_payment_intent(&pi.id, true).await;
    let pi = client.fetch_payment_intent(&pi.id).await.unwrap();
    assert_eq!(pi.status, PaymentIntentStatus::Succeeded);

    // A USD charge offers no SEPA: the SEPA method is refused by Stripe.
    let refused = client
        .charge_off_session(&charge(&sepa, "autopay-INV-31-1", usd(2_500)))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, ProviderError::InvalidRequest { .. }),
        "{refused:?}"
    );
}

#[tokio::test]
async fn stripe_errors_are_typed() {
    let (fake, client) = start().await;

    let e = client.fetch_payment_intent("pi_missing").await.unwrap_err();
    assert!(matches!(e, ProviderError::NotFound { .. }), "{e:?}");

    // Malformed ids never reach the server.
    let before = fake.requests().len();
    for id in ["", "../customers", "pi_1?expand[]=x", "pi 1"] {
        let e = client.fetch_payment_intent(id).await.unwrap_err();
        assert!(matches!(e, ProviderError::InvalidInput(_)), "{id}: {e:?}");
    }
    let e = client
        .create_checkout_payment(&payment("INV-1", eur(0), "pay-zero"))
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::InvalidInput(_)), "{e:?}");
    assert_eq!(fake.requests().len(), before);

    // Stripe's own validation.
    let e = client
        .create_checkout_payment(&payment("INV-1", eur(10), "pay-tiny"))
        .await
        .unwrap_err();
    let ProviderError::InvalidRequest {
        status,
        code,
        param,
        ..
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!(*status, 400);
    assert_eq!(code.as_deref(), Some("amount_too_small"));
    assert_eq!(
        param.as_deref(),
        Some("line_items[0][price_data][unit_amount]")
    );

    fake.fail_next_request(
        500,
        json!({"type": "api_error", "message": "Something went wrong"}),
    );
    let e = client.fetch_payment_intent("pi_any").await.unwrap_err();
    assert!(
        matches!(e, ProviderError::Unavailable { status: 500 }),
        "{e:?}"
    );
    assert!(e.is_retryable());

    fake.fail_next_request(429, json!({"type": "invalid_request_error", "code": "rate_limit", "message": "Too many requests"}));
    let e = client.fetch_payment_intent("pi_any").await.unwrap_err();
    assert!(matches!(e, ProviderError::RateLimited), "{e:?}");

    // A wrong key.
    let mut config = fake.config();
    config.secret_key = "sk_test_wrong_0000".into();
    let wrong = StripeClient::new(&config).unwrap();
    let e = wrong.fetch_payment_intent("pi_any").await.unwrap_err();
    assert!(
        matches!(e, ProviderError::Authentication { status: 401 }),
        "{e:?}"
    );
    assert!(!e.to_string().contains("sk_test"), "{e}");

    // Nobody listening.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    config.api_base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let unreachable = StripeClient::new(&config).unwrap();
    let e = unreachable
        .fetch_payment_intent("pi_any")
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Transport(_)), "{e:?}");
    assert!(e.is_retryable());
}

#[tokio::test]
async fn webhooks_signed_by_the_fake_verify_with_any_configured_secret() {
    let now = now_unix();
    let event = FakeStripe::event_json(
        "evt_manual_1",
        "checkout.session.async_payment_succeeded",
        json!({"id": "cs_test_manual", "object": "checkout.session"}),
        now,
    );
    let rotation = [
        "whsec_old_0123456789".to_string(),
        WEBHOOK_SECRET.to_string(),
    ];
    let (body, header) = FakeStripe::signed_webhook(&event, WEBHOOK_SECRET, now);
    let verified = verify(&body, &header, &rotation, now).unwrap();
    assert_eq!(verified.id, "evt_manual_1");
    assert_eq!(
        verified.kind,
        EventKind::CheckoutSessionAsyncPaymentSucceeded
    );
    assert_eq!(verified.object_id, "cs_test_manual");

    let (body, header) = FakeStripe::signed_webhook(&event, "whsec_attacker_0000", now);
    assert_eq!(
        verify(&body, &header, &rotation, now),
        Err(WebhookError::SignatureMismatch)
    );
    let (body, header) = FakeStripe::signed_webhook(&event, WEBHOOK_SECRET, now - 301);
    assert!(matches!(
        verify(&body, &header, &rotation, now),
        Err(WebhookError::OutsideTolerance { .. })
    ));

    // A fixed clock on the fake signs at that time.
    let (fake, client) = start().await;
    fake.set_now(1_795_000_000);
    let sink = WebhookSink::start(&fake).await;
    let redirect = client
        .create_checkout_payment(&payment("INV-40", eur(1_000), "pay-INV-40-1"))
        .await
        .unwrap();
    fake.complete_session(&redirect.session_id, None, PayWith::Card)
        .await
        .unwrap();
    let (body, header) = sink.received.lock().unwrap()[0].clone();
    assert!(header.starts_with("t=1795000000,v1="), "{header}");
    let event = verify(&body, &header, &rotation, 1_795_000_100).unwrap();
    assert_eq!(event.created, 1_795_000_000);
}
