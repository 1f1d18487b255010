//! A fake Stripe for the tests: an axum server on 127.0.0.1:0 that speaks
//! exactly the API endpoints `postdesk::payments::StripeClient` calls, hosts a
//! minimal checkout page, and sends signed webhooks — so no test needs the
//! network or a Stripe account.
//!
//! Include it with `#[path = "support/fake_stripe.rs"] mod fake_stripe;`.
//!
//! * API: `POST /v1/customers`, `POST /v1/checkout/sessions`,
//!   `GET /v1/checkout/sessions/{id}`, `GET|POST /v1/payment_intents[/{id}]`,
//!   `GET /v1/setup_intents/{id}`, `GET /v1/payment_methods/{id}`,
//!   `POST /v1/payment_methods/{id}/detach`. The bearer key must be
//!   [`SECRET_KEY`]; an `Idempotency-Key` seen before returns the first
//!   answer (the same parameters) or an `idempotency_error` (others).
//! * Hosted checkout: `GET /pay/{session}` is a form with a radio button per
//!   method and a submit button; `POST /pay/{session}` completes it (a card
//!   pays at once, a bank debit is processing, the card that declines
//!   declines), sends the webhooks and redirects to `success_url`.
//! * State a test can inspect: charges, detached methods, requests, events
//!   and their deliveries; and steer: `complete_session`, `settle_async`,
//!   `settle_payment_intent`, `attach_method`, `fail_next_request`,
//!   `lose_next_answer`, `set_now`.
//!
//! Objects have the shape of Stripe API version 2024-06-20, including fields
//! Postdesk must not read (fingerprints, billing details).
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the fake"
)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

/// The only API key the fake accepts.
pub const SECRET_KEY: &str = "sk_test_fake_0123456789";
/// The secret the fake signs its webhooks with.
pub const WEBHOOK_SECRET: &str = "whsec_fake_0123456789";

/// How the payer pays on the hosted page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayWith {
    /// Visa •••• 4242: paid at once.
    Card,
    /// Visa •••• 0341: saves fine, every charge is declined.
    CardThatDeclines,
    /// A US bank account: processing until `settle_*`.
    UsBankAccount,
    /// A SEPA debit: processing until `settle_*`.
    SepaDebit,
}

impl PayWith {
    pub fn form_value(self) -> &'static str {
        match self {
            Self::Card => "card",
            Self::CardThatDeclines => "card_declines",
            Self::UsBankAccount => "us_bank_account",
            Self::SepaDebit => "sepa_debit",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        [
            Self::Card,
            Self::CardThatDeclines,
            Self::UsBankAccount,
            Self::SepaDebit,
        ]
        .into_iter()
        .find(|m| m.form_value() == value)
    }

    /// Stripe's `type` of the payment method.
    fn stripe_type(self) -> &'static str {
        match self {
            Self::Card | Self::CardThatDeclines => "card",
            Self::UsBankAccount => "us_bank_account",
            Self::SepaDebit => "sepa_debit",
        }
    }

    fn is_delayed(self) -> bool {
        matches!(self, Self::UsBankAccount | Self::SepaDebit)
    }
}

/// A payment the fake took (or tried to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub payment_intent: String,
    pub customer: Option<String>,
    pub payment_method: String,
    pub amount: i64,
    pub currency: String,
    /// `succeeded`, `processing` or `failed`.
    pub status: String,
    pub off_session: bool,
    pub idempotency_key: Option<String>,
}

/// One API request as received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub idempotency_key: Option<String>,
    pub form: Vec<(String, String)>,
}

impl RecordedRequest {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// One attempt to deliver an event to the webhook target.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub event_id: String,
    pub kind: String,
    /// The HTTP status the target answered; `None`: it could not be reached.
    pub status: Option<u16>,
}

/// What completing a checkout produced.
#[derive(Debug, Clone)]
pub struct Completion {
    pub declined: bool,
    pub payment_intent: Option<String>,
    pub setup_intent: Option<String>,
    pub payment_method: String,
    /// Where the payer's browser is sent (success_url with the session id).
    pub redirect: String,
    /// The events sent (or stored, without a webhook target), in order.
    pub event_ids: Vec<String>,
}

pub struct FakeStripe {
    /// Give this to `[payments.stripe] api_base`.
    pub api_base: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeStripe {
    fn drop(&mut self) {
        self.server.abort();
    }
}

struct Shared {
    base: String,
    state: Mutex<FakeState>,
    http: reqwest::Client,
}

#[derive(Default)]
struct FakeState {
    counter: u64,
    now: Option<i64>,
    webhook_target: Option<String>,
    customers: BTreeMap<String, Value>,
    sessions: BTreeMap<String, Value>,
    session_extras: BTreeMap<String, SessionExtra>,
    payment_intents: BTreeMap<String, Value>,
    setup_intents: BTreeMap<String, Value>,
    payment_methods: BTreeMap<String, Value>,
    /// key → (request fingerprint, status, body)
    idempotency: HashMap<String, (String, u16, Value)>,
    charges: Vec<Charge>,
    detached: Vec<String>,
    requests: Vec<RecordedRequest>,
    events: Vec<Value>,
    deliveries: Vec<Delivery>,
    fail_next: Vec<(u16, Value)>,
    /// The next creating call is carried out, but its answer is a 500 (the
    /// network failed after Stripe committed).
    lose_next_answer: bool,
}

/// What a session carries for the objects it creates later.
#[derive(Default, Clone)]
struct SessionExtra {
    line_name: String,
    intent_metadata: Value,
    intent_description: Option<String>,
    consent_text: Option<String>,
}

impl FakeStripe {
    /// Starts the fake on a free port of 127.0.0.1.
    pub async fn start() -> FakeStripe {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            base: base.clone(),
            state: Mutex::new(FakeState::default()),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .unwrap(),
        });
        let router = Router::new()
            .route("/v1/customers", post(create_customer))
            .route("/v1/checkout/sessions", post(create_session))
            .route("/v1/checkout/sessions/{id}", get(get_session))
            .route("/v1/payment_intents", post(create_payment_intent))
            .route("/v1/payment_intents/{id}", get(get_payment_intent))
            .route("/v1/setup_intents/{id}", get(get_setup_intent))
            .route("/v1/payment_methods/{id}", get(get_payment_method))
            .route(
                "/v1/payment_methods/{id}/detach",
                post(detach_payment_method),
            )
            .route("/pay/{id}", get(checkout_page).post(checkout_submit))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        FakeStripe {
            api_base: base,
            shared,
            server,
        }
    }

    /// A `[payments.stripe]` section pointing at this fake.
    pub fn config_toml(&self) -> String {
        format!(
            "[payments.stripe]\napi_base = \"{}\"\nsecret_key = \"{SECRET_KEY}\"\nwebhook_secrets = [\"{WEBHOOK_SECRET}\"]\n",
            self.api_base
        )
    }

    /// The typed configuration for a client of this fake.
    pub fn config(&self) -> postdesk::config::StripeConfig {
        use postdesk::payments::PaymentMethodKind;
        postdesk::config::StripeConfig {
            api_base: self.api_base.clone(),
            secret_key: SECRET_KEY.into(),
            webhook_secrets: vec![WEBHOOK_SECRET.into()],
            payment_method_types: PaymentMethodKind::CONFIGURABLE.to_vec(),
        }
    }

    fn state(&self) -> MutexGuard<'_, FakeState> {
        self.shared.state.lock().unwrap()
    }

    /// Where webhooks go (the app's webhook URL); without one, events are
    /// only stored ([`FakeStripe::events`]).
    pub fn set_webhook_target(&self, url: impl Into<String>) {
        self.state().webhook_target = Some(url.into());
    }

    /// Fixes the fake's clock (unix seconds): object `created` times and
    /// webhook signature timestamps. Default: the system clock.
    pub fn set_now(&self, unix: i64) {
        self.state().now = Some(unix);
    }

    /// The next API request (any) fails with this status and Stripe error
    /// object (`{"type": …, "code": …, "message": …}`).
    pub fn fail_next_request(&self, status: u16, error: Value) {
        self.state().fail_next.push((status, error));
    }

    /// The next creating call (a charge) is carried out and remembered under
    /// its idempotency key, but the caller gets a 500 instead of the answer.
    pub fn lose_next_answer(&self) {
        self.state().lose_next_answer = true;
    }

    pub fn charges(&self) -> Vec<Charge> {
        self.state().charges.clone()
    }

    pub fn detached(&self) -> Vec<String> {
        self.state().detached.clone()
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state().requests.clone()
    }

    /// Every event created, oldest first, as Stripe would send it.
    pub fn events(&self) -> Vec<Value> {
        self.state().events.clone()
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state().deliveries.clone()
    }

    pub fn session(&self, id: &str) -> Option<Value> {
        self.state().sessions.get(id).cloned()
    }

    pub fn payment_intent(&self, id: &str) -> Option<Value> {
        self.state().payment_intents.get(id).cloned()
    }

    /// A saved method attached to `customer` without a setup checkout (for
    /// tests of auto-pay). Returns the payment method id.
    pub fn attach_method(&self, customer: &str, method: PayWith) -> String {
        let mut st = self.state();
        assert!(
            st.customers.contains_key(customer),
            "no such customer {customer}"
        );
        st.new_payment_method(method, Some(customer))
    }

    /// What the payer does on the hosted page: pays (payment mode; `amount`
    /// overrides what arrives) or saves a method (setup mode), then the
    /// webhooks go out. A declined card leaves the session open.
    pub async fn complete_session(
        &self,
        session_id: &str,
        amount: Option<i64>,
        method: PayWith,
    ) -> Result<Completion, String> {
        complete(&self.shared, session_id, amount, method).await
    }

    /// The bank debit of a completed checkout settles: the session turns
    /// paid (`checkout.session.async_payment_succeeded`,
    /// `payment_intent.succeeded`) or stays unpaid
    /// (`…async_payment_failed`, `payment_intent.payment_failed`).
    pub async fn settle_async(&self, session_id: &str, succeeded: bool) -> Vec<String> {
        let events = {
            let mut st = self.state();
            let session = st
                .sessions
                .get(session_id)
                .unwrap_or_else(|| panic!("no session {session_id}"))
                .clone();
            assert_eq!(session["status"], "complete", "the session is not complete");
            let pi = session["payment_intent"]
                .as_str()
                .expect("the session has no payment intent")
                .to_string();
            let pi_object = st.settle(&pi, succeeded);
            let session = st.sessions.get_mut(session_id).unwrap();
            if succeeded {
                session["payment_status"] = json!("paid");
            }
            let session = session.clone();
            let kind = if succeeded {
                "checkout.session.async_payment_succeeded"
            } else {
                "checkout.session.async_payment_failed"
            };
            let pi_kind = if succeeded {
                "payment_intent.succeeded"
            } else {
                "payment_intent.payment_failed"
            };
            vec![st.event(kind, session), st.event(pi_kind, pi_object)]
        };
        deliver(&self.shared, events).await
    }

    /// An off-session bank debit settles (`payment_intent.succeeded` or
    /// `payment_intent.payment_failed`).
    pub async fn settle_payment_intent(
        &self,
        payment_intent: &str,
        succeeded: bool,
    ) -> Vec<String> {
        let events = {
            let mut st = self.state();
            let pi_object = st.settle(payment_intent, succeeded);
            let kind = if succeeded {
                "payment_intent.succeeded"
            } else {
                "payment_intent.payment_failed"
            };
            vec![st.event(kind, pi_object)]
        };
        deliver(&self.shared, events).await
    }

    /// Sends a stored event again, freshly signed (Stripe retries and may
    /// deliver an event twice). Returns the target's status.
    pub async fn redeliver(&self, event_id: &str) -> Option<u16> {
        let event = self
            .state()
            .events
            .iter()
            .find(|e| e["id"] == event_id)
            .cloned()
            .unwrap_or_else(|| panic!("no event {event_id}"));
        deliver(&self.shared, vec![event]).await;
        self.state().deliveries.last().and_then(|d| d.status)
    }

    /// The body and `Stripe-Signature` header Stripe would send for `event`
    /// signed with `secret` at `timestamp` (unix seconds).
    pub fn signed_webhook(event: &Value, secret: &str, timestamp: i64) -> (Vec<u8>, String) {
        let body = serde_json::to_vec(event).unwrap();
        let header = signature_header(&body, secret, timestamp);
        (body, header)
    }

    /// An event as Stripe shapes it, for hand-made webhooks.
    pub fn event_json(id: &str, kind: &str, object: Value, created: i64) -> Value {
        json!({
            "id": id,
            "object": "event",
            "api_version": "2024-06-20",
            "created": created,
            "livemode": false,
            "pending_webhooks": 1,
            "type": kind,
            "data": { "object": object },
        })
    }
}

/// `t=<timestamp>,v1=<HMAC-SHA256 of "{t}.{body}" in hex>`.
pub fn signature_header(body: &[u8], secret: &str, timestamp: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

// ---------------------------------------------------------------- state

impl FakeState {
    fn now(&self) -> i64 {
        self.now.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64
        })
    }

    fn next_id(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}_test_fake{:06}", self.counter)
    }

    fn event(&mut self, kind: &str, object: Value) -> Value {
        let id = self.next_id("evt");
        let event = FakeStripe::event_json(&id, kind, object, self.now());
        self.events.push(event.clone());
        event
    }

    fn new_payment_method(&mut self, method: PayWith, customer: Option<&str>) -> String {
        let id = self.next_id("pm");
        let details = match method {
            PayWith::Card | PayWith::CardThatDeclines => json!({
                "brand": "visa",
                "last4": if method == PayWith::Card { "4242" } else { "0341" },
                "exp_month": 12,
                "exp_year": 2034,
                "fingerprint": "FAKEfingerprint01",
                "funding": "credit",
                "country": "US",
                "checks": { "cvc_check": "pass" },
            }),
            PayWith::UsBankAccount => json!({
                "bank_name": "STRIPE TEST BANK",
                "last4": "6789",
                "routing_number": "110000000",
                "account_holder_type": "individual",
                "account_type": "checking",
                "fingerprint": "FAKEfingerprint02",
            }),
            PayWith::SepaDebit => json!({
                "bank_code": "37040044",
                "branch_code": "",
                "country": "DE",
                "last4": "3000",
                "fingerprint": "FAKEfingerprint03",
            }),
        };
        let mut pm = json!({
            "id": id,
            "object": "payment_method",
            "type": method.stripe_type(),
            "created": self.now(),
            "customer": customer,
            "livemode": false,
            "metadata": {},
            "billing_details": {
                "name": "Jenny Rosen",
                "email": "jenny.rosen@example.com",
                "phone": null,
                "address": { "line1": "1 Main Street", "city": "Springfield", "country": "US" },
            },
        });
        pm[method.stripe_type()] = details;
        // Remember how it behaves when charged.
        pm["metadata"]["fake_behaviour"] = json!(method.form_value());
        self.payment_methods.insert(id.clone(), pm);
        id
    }

    fn behaviour(&self, payment_method: &str) -> PayWith {
        self.payment_methods[payment_method]["metadata"]["fake_behaviour"]
            .as_str()
            .and_then(PayWith::parse)
            .unwrap_or(PayWith::Card)
    }

    /// A payment intent charging `pm`, in the state its method leads to.
    #[expect(clippy::too_many_arguments, reason = "a test fixture's constructor")]
    fn new_payment_intent(
        &mut self,
        amount: i64,
        currency: &str,
        customer: Option<&str>,
        payment_method: &str,
        metadata: Value,
        description: Option<&str>,
        off_session: bool,
        idempotency_key: Option<String>,
    ) -> Value {
        let id = self.next_id("pi");
        let behaviour = self.behaviour(payment_method);
        let (status, received, error) = match behaviour {
            PayWith::Card => ("succeeded", amount, Value::Null),
            PayWith::CardThatDeclines => ("requires_payment_method", 0, decline_error()),
            PayWith::UsBankAccount | PayWith::SepaDebit => ("processing", 0, Value::Null),
        };
        let pi = json!({
            "id": id,
            "object": "payment_intent",
            "amount": amount,
            "amount_received": received,
            "currency": currency,
            "customer": customer,
            "description": description,
            "payment_method": payment_method,
            "payment_method_types": [behaviour.stripe_type()],
            "status": status,
            "last_payment_error": error,
            "metadata": metadata,
            "created": self.now(),
            "livemode": false,
            "latest_charge": if status == "succeeded" { json!(format!("ch_for_{id}")) } else { Value::Null },
        });
        self.payment_intents.insert(id.clone(), pi.clone());
        self.charges.push(Charge {
            payment_intent: id,
            customer: customer.map(str::to_string),
            payment_method: payment_method.to_string(),
            amount,
            currency: currency.to_string(),
            status: match status {
                "requires_payment_method" => "failed".into(),
                other => other.to_string(),
            },
            off_session,
            idempotency_key,
        });
        pi
    }

    fn settle(&mut self, payment_intent: &str, succeeded: bool) -> Value {
        let pi = self
            .payment_intents
            .get_mut(payment_intent)
            .unwrap_or_else(|| panic!("no payment intent {payment_intent}"));
        assert_eq!(
            pi["status"], "processing",
            "only a processing debit settles"
        );
        if succeeded {
            pi["status"] = json!("succeeded");
            pi["amount_received"] = pi["amount"].clone();
        } else {
            pi["status"] = json!("requires_payment_method");
            pi["last_payment_error"] = json!({
                "type": "invalid_request_error",
                "code": "payment_method_unactivated",
                "message": "The bank debit failed.",
            });
        }
        let pi = pi.clone();
        let status = if succeeded { "succeeded" } else { "failed" };
        for charge in self
            .charges
            .iter_mut()
            .filter(|c| c.payment_intent == payment_intent)
        {
            charge.status = status.into();
        }
        pi
    }
}

fn decline_error() -> Value {
    json!({
        "type": "card_error",
        "code": "card_declined",
        "decline_code": "generic_decline",
        "message": "Your card was declined.",
    })
}

// ---------------------------------------------------------------- API

type Params = Vec<(String, String)>;

struct ApiError {
    status: u16,
    error: Value,
}

fn invalid(param: &str, message: &str) -> ApiError {
    ApiError {
        status: 400,
        error: json!({ "type": "invalid_request_error", "param": param, "message": message }),
    }
}

fn missing(kind: &str, id: &str, param: &str) -> ApiError {
    ApiError {
        status: if param == "id" { 404 } else { 400 },
        error: json!({
            "type": "invalid_request_error",
            "code": "resource_missing",
            "param": param,
            "message": format!("No such {kind}: '{id}'"),
        }),
    }
}

fn error_response(status: u16, error: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        Json(json!({ "error": error })),
    )
        .into_response()
}

fn param<'a>(form: &'a Params, key: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// `prefix[key]=value` entries as a JSON object (`metadata[...]`).
fn nested(form: &Params, prefix: &str) -> Value {
    let mut map = serde_json::Map::new();
    for (k, v) in form {
        if let Some(key) = k
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('['))
            .and_then(|rest| rest.strip_suffix(']'))
            .filter(|key| !key.contains('['))
        {
            map.insert(key.to_string(), json!(v));
        }
    }
    Value::Object(map)
}

/// `prefix[0]=a&prefix[1]=b` as a list.
fn list(form: &Params, prefix: &str) -> Vec<String> {
    let mut items: Vec<(usize, String)> = form
        .iter()
        .filter_map(|(k, v)| {
            let i = k
                .strip_prefix(prefix)?
                .strip_prefix('[')?
                .strip_suffix(']')?
                .parse()
                .ok()?;
            Some((i, v.clone()))
        })
        .collect();
    items.sort();
    items.into_iter().map(|(_, v)| v).collect()
}

/// Authentication, injected failures and the request log, for every call.
fn admit(
    st: &mut FakeState,
    headers: &HeaderMap,
    method: &str,
    path: &str,
    form: &Params,
) -> Result<(), ApiError> {
    let idempotency_key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    st.requests.push(RecordedRequest {
        method: method.into(),
        path: path.into(),
        idempotency_key,
        form: form.clone(),
    });
    let authorised = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {SECRET_KEY}"));
    if !authorised {
        return Err(ApiError {
            status: 401,
            error: json!({ "type": "invalid_request_error", "message": "Invalid API Key provided: sk_test_****" }),
        });
    }
    if !st.fail_next.is_empty() {
        let (status, error) = st.fail_next.remove(0);
        return Err(ApiError { status, error });
    }
    Ok(())
}

/// Runs a creating call under Stripe's idempotency rules: a key seen before
/// with the same request returns the first answer, with another request an
/// `idempotency_error`. Validation errors (400) are not remembered.
fn idempotent(
    shared: &Shared,
    headers: &HeaderMap,
    path: &str,
    form: Params,
    create: impl FnOnce(&mut FakeState, &Params) -> Result<Value, ApiError>,
) -> (Response, Vec<Value>) {
    let mut st = shared.state.lock().unwrap();
    if let Err(ApiError { status, error }) = admit(&mut st, headers, "POST", path, &form) {
        return (error_response(status, error), Vec::new());
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut sorted = form.clone();
    sorted.sort();
    let fingerprint = format!("POST {path} {sorted:?}");
    if let Some(key) = &key {
        if let Some((seen, status, body)) = st.idempotency.get(key) {
            return if *seen == fingerprint {
                let mut response =
                    (StatusCode::from_u16(*status).unwrap(), Json(body.clone())).into_response();
                response
                    .headers_mut()
                    .insert("idempotent-replayed", "true".parse().unwrap());
                (response, Vec::new())
            } else {
                (
                    error_response(
                        400,
                        json!({
                            "type": "idempotency_error",
                            "message": format!("Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request."),
                        }),
                    ),
                    Vec::new(),
                )
            };
        }
    }
    let events_before = st.events.len();
    let (status, body) = match create(&mut st, &form) {
        Ok(object) => (200, object),
        Err(ApiError { status, error }) => (status, json!({ "error": error })),
    };
    if let Some(key) = key {
        if status != 400 {
            st.idempotency
                .insert(key, (fingerprint, status, body.clone()));
        }
    }
    let events = st.events[events_before..].to_vec();
    if std::mem::take(&mut st.lose_next_answer) {
        let lost = json!({ "type": "api_error", "message": "An unknown error occurred" });
        return (error_response(500, lost), events);
    }
    (
        (StatusCode::from_u16(status).unwrap(), Json(body)).into_response(),
        events,
    )
}

fn fetch(
    shared: &Shared,
    headers: &HeaderMap,
    path: &str,
    find: impl FnOnce(&FakeState) -> Option<Value>,
    kind: &str,
    id: &str,
) -> Response {
    let mut st = shared.state.lock().unwrap();
    if let Err(ApiError { status, error }) = admit(&mut st, headers, "GET", path, &Vec::new()) {
        return error_response(status, error);
    }
    match find(&st) {
        Some(object) => Json(object).into_response(),
        None => {
            let ApiError { status, error } = missing(kind, id, "id");
            error_response(status, error)
        }
    }
}

async fn create_customer(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(form): Form<Params>,
) -> Response {
    idempotent(&shared, &headers, "/v1/customers", form, |st, form| {
        let id = st.next_id("cus");
        let customer = json!({
            "id": id,
            "object": "customer",
            "name": param(form, "name"),
            "email": param(form, "email"),
            "metadata": nested(form, "metadata"),
            "created": st.now(),
            "livemode": false,
        });
        st.customers.insert(id, customer.clone());
        Ok(customer)
    })
    .0
}

async fn create_session(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(form): Form<Params>,
) -> Response {
    let base = shared.base.clone();
    idempotent(&shared, &headers, "/v1/checkout/sessions", form, |st, form| {
        let mode = param(form, "mode").unwrap_or_default().to_string();
        if mode != "payment" && mode != "setup" {
            return Err(invalid("mode", "Invalid mode: must be one of payment, setup"));
        }
        let Some(success_url) = param(form, "success_url") else {
            return Err(invalid("success_url", "Missing required param: success_url."));
        };
        let customer = param(form, "customer").map(str::to_string);
        if let Some(c) = &customer {
            if !st.customers.contains_key(c) {
                return Err(missing("customer", c, "customer"));
            }
        }
        let (currency, amount_total, extra) = if mode == "payment" {
            let item = "line_items[0]";
            let currency = param(form, &format!("{item}[price_data][currency]"))
                .ok_or_else(|| invalid("line_items[0][price_data][currency]", "Missing currency"))?;
            let amount: i64 = param(form, &format!("{item}[price_data][unit_amount]"))
                .and_then(|a| a.parse().ok())
                .ok_or_else(|| {
                    invalid("line_items[0][price_data][unit_amount]", "Invalid integer")
                })?;
            if amount < 50 {
                return Err(ApiError {
                    status: 400,
                    error: json!({
                        "type": "invalid_request_error",
                        "code": "amount_too_small",
                        "param": "line_items[0][price_data][unit_amount]",
                        "message": "The Checkout Session's total amount due must add up to at least 0.50",
                    }),
                });
            }
            if param(form, &format!("{item}[quantity]")) != Some("1") {
                return Err(invalid("line_items[0][quantity]", "The fake expects quantity 1"));
            }
            let name = param(form, &format!("{item}[price_data][product_data][name]"))
                .ok_or_else(|| {
                    invalid("line_items[0][price_data][product_data][name]", "Missing name")
                })?;
            (
                currency.to_string(),
                json!(amount),
                SessionExtra {
                    line_name: name.to_string(),
                    intent_metadata: nested(form, "payment_intent_data[metadata]"),
                    intent_description: param(form, "payment_intent_data[description]")
                        .map(str::to_string),
                    consent_text: None,
                },
            )
        } else {
            let currency = param(form, "currency").unwrap_or("usd");
            (
                currency.to_string(),
                Value::Null,
                SessionExtra {
                    line_name: "Save a payment method".into(),
                    intent_metadata: nested(form, "setup_intent_data[metadata]"),
                    intent_description: None,
                    consent_text: param(form, "custom_text[submit][message]").map(str::to_string),
                },
            )
        };
        if currency != currency.to_ascii_lowercase() {
            return Err(invalid("currency", "Currencies are lowercase ISO codes"));
        }
        let types = list(form, "payment_method_types");
        for t in &types {
            let fits = match t.as_str() {
                "card" => true,
                "sepa_debit" => currency == "eur",
                "us_bank_account" => currency == "usd",
                _ => false,
            };
            if !fits {
                return Err(invalid(
                    "payment_method_types",
                    &format!("The payment method type `{t}` is invalid or cannot be used with currency {currency}."),
                ));
            }
        }
        let id = st.next_id("cs");
        let session = json!({
            "id": id,
            "object": "checkout.session",
            "mode": mode,
            "status": "open",
            "payment_status": if mode == "payment" { "unpaid" } else { "no_payment_required" },
            "amount_total": amount_total,
            "currency": currency,
            "customer": customer,
            "client_reference_id": param(form, "client_reference_id"),
            "payment_intent": null,
            "setup_intent": null,
            "payment_method_types": if types.is_empty() { vec!["card".to_string()] } else { types },
            "metadata": nested(form, "metadata"),
            "success_url": success_url,
            "cancel_url": param(form, "cancel_url"),
            "url": format!("{base}/pay/{id}"),
            "created": st.now(),
            "expires_at": st.now() + 86_400,
            "livemode": false,
        });
        st.sessions.insert(id.clone(), session.clone());
        st.session_extras.insert(id, extra);
        Ok(session)
    })
    .0
}

async fn get_session(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let path = format!("/v1/checkout/sessions/{id}");
    fetch(
        &shared,
        &headers,
        &path,
        |st| st.sessions.get(&id).cloned(),
        "checkout.session",
        &id,
    )
}

async fn get_payment_intent(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let path = format!("/v1/payment_intents/{id}");
    fetch(
        &shared,
        &headers,
        &path,
        |st| st.payment_intents.get(&id).cloned(),
        "payment_intent",
        &id,
    )
}

async fn get_setup_intent(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let path = format!("/v1/setup_intents/{id}");
    fetch(
        &shared,
        &headers,
        &path,
        |st| st.setup_intents.get(&id).cloned(),
        "setup_intent",
        &id,
    )
}

async fn get_payment_method(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let path = format!("/v1/payment_methods/{id}");
    fetch(
        &shared,
        &headers,
        &path,
        |st| st.payment_methods.get(&id).cloned(),
        "payment_method",
        &id,
    )
}

async fn detach_payment_method(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<Params>,
) -> Response {
    let path = format!("/v1/payment_methods/{id}/detach");
    idempotent(&shared, &headers, &path, form, |st, _| {
        let Some(pm) = st.payment_methods.get_mut(&id) else {
            return Err(missing("payment_method", &id, "id"));
        };
        if pm["customer"].is_null() {
            return Err(invalid(
                "payment_method",
                "The payment method you provided is not attached to a customer so detachment is impossible.",
            ));
        }
        pm["customer"] = Value::Null;
        let pm = pm.clone();
        st.detached.push(id.clone());
        Ok(pm)
    })
    .0
}

async fn create_payment_intent(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(form): Form<Params>,
) -> Response {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (response, events) = idempotent(
        &shared,
        &headers,
        "/v1/payment_intents",
        form,
        |st, form| {
            let amount: i64 = param(form, "amount")
                .and_then(|a| a.parse().ok())
                .filter(|a| *a > 0)
                .ok_or_else(|| invalid("amount", "Invalid positive integer"))?;
            let currency = param(form, "currency")
                .ok_or_else(|| invalid("currency", "Missing required param: currency."))?;
            for flag in ["confirm", "off_session"] {
                if param(form, flag) != Some("true") {
                    return Err(invalid(
                        flag,
                        "The fake only takes confirmed off-session charges",
                    ));
                }
            }
            let customer =
                param(form, "customer").ok_or_else(|| invalid("customer", "Missing customer"))?;
            if !st.customers.contains_key(customer) {
                return Err(missing("customer", customer, "customer"));
            }
            let pm_id = param(form, "payment_method")
                .ok_or_else(|| invalid("payment_method", "Missing payment_method"))?;
            let Some(pm) = st.payment_methods.get(pm_id) else {
                return Err(missing("payment_method", pm_id, "payment_method"));
            };
            if pm["customer"] != json!(customer) {
                return Err(invalid(
                "payment_method",
                "The provided PaymentMethod was previously used with a PaymentIntent without Customer attachment, shared with a connected account without Customer attachment, or was detached from a Customer. It may not be used again.",
            ));
            }
            let pm_type = pm["type"].as_str().unwrap_or_default().to_string();
            let types = list(form, "payment_method_types");
            let allowed = if types.is_empty() {
                vec!["card".to_string()]
            } else {
                types
            };
            if !allowed.contains(&pm_type) {
                return Err(invalid(
                "payment_method",
                &format!("The PaymentMethod provided ({pm_type}) is not allowed for this PaymentIntent."),
            ));
            }
            let pi = st.new_payment_intent(
                amount,
                currency,
                Some(customer),
                pm_id,
                nested(form, "metadata"),
                param(form, "description"),
                true,
                key,
            );
            match pi["status"].as_str() {
                Some("succeeded") => {
                    st.event("payment_intent.succeeded", pi.clone());
                    Ok(pi)
                }
                Some("processing") => {
                    st.event("payment_intent.processing", pi.clone());
                    Ok(pi)
                }
                _ => {
                    st.event("payment_intent.payment_failed", pi.clone());
                    let mut error = decline_error();
                    error["payment_intent"] = pi;
                    error["payment_method"] = json!({ "id": pm_id });
                    Err(ApiError { status: 402, error })
                }
            }
        },
    );
    deliver(&shared, events).await;
    response
}

// ---------------------------------------------------------------- hosted page

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(shared: &Shared, id: &str, notice: Option<&str>) -> Response {
    let st = shared.state.lock().unwrap();
    let Some(session) = st.sessions.get(id) else {
        return (
            StatusCode::NOT_FOUND,
            Html("<h1>No such checkout</h1>".to_string()),
        )
            .into_response();
    };
    let extra = st.session_extras.get(id).cloned().unwrap_or_default();
    if session["status"] != "open" {
        return (
            StatusCode::GONE,
            Html(format!(
                "<!doctype html><title>Checkout closed</title><h1>This checkout is {}</h1>",
                escape(session["status"].as_str().unwrap_or("closed"))
            )),
        )
            .into_response();
    }
    let setup = session["mode"] == "setup";
    let heading = if setup {
        "Save a payment method".to_string()
    } else {
        format!(
            "Pay {} {}",
            session["currency"]
                .as_str()
                .unwrap_or_default()
                .to_uppercase(),
            session["amount_total"]
        )
    };
    let mut choices = String::new();
    let types: Vec<&str> = session["payment_method_types"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut first = true;
    for (method, label) in [
        (PayWith::Card, "Card Visa 4242"),
        (PayWith::CardThatDeclines, "Card Visa 0341 (declines)"),
        (PayWith::UsBankAccount, "US bank account 6789"),
        (PayWith::SepaDebit, "SEPA Direct Debit DE…3000"),
    ] {
        if !types.contains(&method.stripe_type()) {
            continue;
        }
        choices.push_str(&format!(
            "<label><input type=\"radio\" name=\"method\" value=\"{v}\" id=\"method-{v}\"{checked}> {label}</label><br>\n",
            v = method.form_value(),
            checked = if first { " checked" } else { "" },
        ));
        first = false;
    }
    let notice = notice
        .map(|n| format!("<p id=\"notice\" role=\"alert\">{}</p>", escape(n)))
        .unwrap_or_default();
    let consent = extra
        .consent_text
        .map(|c| format!("<p id=\"consent\">{}</p>", escape(&c)))
        .unwrap_or_default();
    let cancel = session["cancel_url"]
        .as_str()
        .map(|u| format!("<a id=\"cancel\" href=\"{}\">Cancel</a>", escape(u)))
        .unwrap_or_default();
    Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Fake Stripe Checkout</title></head>\n<body>\n<h1>{heading}</h1>\n<p id=\"item\">{item}</p>\n{notice}\n<form method=\"post\" action=\"/pay/{id}\">\n<fieldset><legend>Payment method</legend>\n{choices}</fieldset>\n{consent}\n<button type=\"submit\" id=\"submit\">{button}</button>\n</form>\n{cancel}\n</body></html>\n",
        heading = escape(&heading),
        item = escape(&extra.line_name),
        button = if setup { "Save" } else { "Pay" },
    ))
    .into_response()
}

async fn checkout_page(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    page(&shared, &id, None)
}

async fn checkout_submit(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Form(form): Form<Params>,
) -> Response {
    let Some(method) = param(&form, "method").and_then(PayWith::parse) else {
        return page(&shared, &id, Some("Choose a payment method."));
    };
    match complete(&shared, &id, None, method).await {
        Ok(done) if done.declined => page(&shared, &id, Some("Your card was declined.")),
        Ok(done) => Redirect::to(&done.redirect).into_response(),
        Err(message) => (StatusCode::BAD_REQUEST, Html(escape(&message))).into_response(),
    }
}

/// Completes an open session as the payer would, then delivers the events.
async fn complete(
    shared: &Shared,
    session_id: &str,
    amount: Option<i64>,
    method: PayWith,
) -> Result<Completion, String> {
    let (completion, events) = {
        let mut st = shared.state.lock().unwrap();
        let session = st
            .sessions
            .get(session_id)
            .cloned()
            .ok_or_else(|| format!("no session {session_id}"))?;
        if session["status"] != "open" {
            return Err(format!("session {session_id} is not open"));
        }
        let allowed = session["payment_method_types"]
            .as_array()
            .is_some_and(|a| a.iter().any(|t| t == method.stripe_type()));
        if !allowed {
            return Err(format!(
                "{} is not offered by this session",
                method.stripe_type()
            ));
        }
        let extra = st
            .session_extras
            .get(session_id)
            .cloned()
            .unwrap_or_default();
        let redirect = session["success_url"]
            .as_str()
            .unwrap_or_default()
            .replace("{CHECKOUT_SESSION_ID}", session_id);
        let events_before = st.events.len();
        let mut customer = session["customer"].as_str().map(str::to_string);
        let completion = if session["mode"] == "setup" {
            let customer_id = match customer.clone() {
                Some(c) => c,
                None => {
                    let c = st.next_id("cus");
                    let created = json!({ "id": c, "object": "customer", "created": st.now(), "metadata": {} });
                    st.customers.insert(c.clone(), created);
                    customer = Some(c.clone());
                    c
                }
            };
            let pm = st.new_payment_method(method, Some(&customer_id));
            let si_id = st.next_id("seti");
            let mandate = if method.is_delayed() {
                Value::String(st.next_id("mandate"))
            } else {
                Value::Null
            };
            let si = json!({
                "id": si_id,
                "object": "setup_intent",
                "status": "succeeded",
                "customer": customer_id,
                "payment_method": pm,
                "payment_method_types": [method.stripe_type()],
                "mandate": mandate,
                "usage": "off_session",
                "metadata": extra.intent_metadata,
                "created": st.now(),
                "livemode": false,
            });
            st.setup_intents.insert(si_id.clone(), si.clone());
            let s = st.sessions.get_mut(session_id).unwrap();
            s["status"] = json!("complete");
            s["setup_intent"] = json!(si_id);
            s["customer"] = json!(customer);
            let s = s.clone();
            st.event("checkout.session.completed", s);
            st.event("setup_intent.succeeded", si);
            Completion {
                declined: false,
                payment_intent: None,
                setup_intent: Some(si_id),
                payment_method: pm,
                redirect,
                event_ids: Vec::new(),
            }
        } else {
            let amount = amount.unwrap_or_else(|| session["amount_total"].as_i64().unwrap());
            let currency = session["currency"].as_str().unwrap().to_string();
            // Paying does not save the method (no setup_future_usage).
            let pm = st.new_payment_method(method, None);
            let pi = st.new_payment_intent(
                amount,
                &currency,
                customer.as_deref(),
                &pm,
                extra.intent_metadata.clone(),
                extra.intent_description.as_deref(),
                false,
                None,
            );
            let pi_id = pi["id"].as_str().unwrap().to_string();
            let s = st.sessions.get_mut(session_id).unwrap();
            s["payment_intent"] = json!(pi_id);
            let declined = pi["status"] == "requires_payment_method";
            if !declined {
                s["status"] = json!("complete");
                s["amount_total"] = json!(amount);
                if pi["status"] == "succeeded" {
                    s["payment_status"] = json!("paid");
                }
            }
            let s = s.clone();
            match pi["status"].as_str() {
                Some("succeeded") => {
                    st.event("checkout.session.completed", s);
                    st.event("payment_intent.succeeded", pi);
                }
                Some("processing") => {
                    st.event("checkout.session.completed", s);
                    st.event("payment_intent.processing", pi);
                }
                _ => {
                    st.event("payment_intent.payment_failed", pi);
                }
            }
            Completion {
                declined,
                payment_intent: Some(pi_id),
                setup_intent: None,
                payment_method: pm,
                redirect,
                event_ids: Vec::new(),
            }
        };
        let events = st.events[events_before..].to_vec();
        (completion, events)
    };
    let event_ids = deliver(shared, events).await;
    Ok(Completion {
        event_ids,
        ..completion
    })
}

/// Sends `events` in order to the webhook target, each signed now with
/// [`WEBHOOK_SECRET`]; records each delivery. Returns the event ids.
async fn deliver(shared: &Shared, events: Vec<Value>) -> Vec<String> {
    let mut ids = Vec::new();
    for event in events {
        let id = event["id"].as_str().unwrap_or_default().to_string();
        ids.push(id.clone());
        let (target, now) = {
            let st = shared.state.lock().unwrap();
            (st.webhook_target.clone(), st.now())
        };
        let Some(target) = target else { continue };
        let (body, header) = FakeStripe::signed_webhook(&event, WEBHOOK_SECRET, now);
        let status = shared
            .http
            .post(&target)
            .header("content-type", "application/json")
            .header("stripe-signature", header)
            .body(body)
            .send()
            .await
            .ok()
            .map(|r| r.status().as_u16());
        shared.state.lock().unwrap().deliveries.push(Delivery {
            event_id: id,
            kind: event["type"].as_str().unwrap_or_default().to_string(),
            status,
        });
    }
    ids
}
