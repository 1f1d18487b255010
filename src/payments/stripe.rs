//! [`StripeClient`]: the [`PaymentProvider`] that speaks Stripe's HTTP API.
//!
//! Requests are form-encoded (`line_items[0][price_data][unit_amount]=…`),
//! authenticated with `Authorization: Bearer <secret key>`, pinned to one
//! API version, and carry an `Idempotency-Key` when they create something.
//! Answers are read into the typed values of [`super`] here and nowhere else;
//! Stripe's error JSON becomes a [`ProviderError`].
//!
//! Ids that go into a URL path are checked first ([`super::is_object_id`]).
//! The secret key is never logged or printed (`Debug` leaves it out), and
//! this module logs nothing at all: the caller logs once, by object id.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::{
    is_object_id, CheckoutMode, CheckoutPayment, CheckoutPaymentStatus, CheckoutRedirect,
    CheckoutSession, CheckoutSetup, CheckoutStatus, CustomerId, Decline, NewCustomer,
    OffSessionCharge, PaymentIntent, PaymentIntentStatus, PaymentMetadata, PaymentMethod,
    PaymentMethodKind, PaymentProvider, ProviderError, SetupIntent, SetupIntentStatus,
};
use crate::config::StripeConfig;
use crate::domain::{Currency, Money};

/// The API version whose object shapes this module reads.
pub const API_VERSION: &str = "2024-06-20";

/// How long one request may take in all, and to connect.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Stripe's HTTP API. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct StripeClient {
    http: reqwest::Client,
    api_base: String,
    method_kinds: Vec<PaymentMethodKind>,
}

impl std::fmt::Debug for StripeClient {
    // The key sits in the client's default headers; print neither.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeClient")
            .field("api_base", &self.api_base)
            .field("method_kinds", &self.method_kinds)
            .finish_non_exhaustive()
    }
}

impl StripeClient {
    pub fn new(config: &StripeConfig) -> Result<Self, ProviderError> {
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {}", config.secret_key)).map_err(|_| {
                ProviderError::InvalidInput("the secret key is not a header value".into())
            })?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        headers.insert("Stripe-Version", HeaderValue::from_static(API_VERSION));
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("postdesk/", env!("CARGO_PKG_VERSION")))
            // An API answer is never a redirect; following one would carry
            // the key elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(ProviderError::Transport)?;
        Ok(Self {
            http,
            api_base: config.api_base.trim_end_matches('/').to_string(),
            method_kinds: config.payment_method_types.clone(),
        })
    }

    /// The configured kinds that can pay in `currency`.
    fn kinds_for(&self, currency: Currency) -> Vec<&PaymentMethodKind> {
        self.method_kinds
            .iter()
            .filter(|k| k.accepts(currency))
            .collect()
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ProviderError> {
        let request = self.http.get(format!("{}{path}", self.api_base));
        self.send(request).await
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        form: &Form,
        idempotency_key: &str,
    ) -> Result<T, ProviderError> {
        if idempotency_key.is_empty() || idempotency_key.len() > 255 {
            return Err(ProviderError::InvalidInput(
                "an idempotency key has 1 to 255 characters".into(),
            ));
        }
        let request = self
            .http
            .post(format!("{}{path}", self.api_base))
            .header("Idempotency-Key", idempotency_key)
            .form(&form.pairs);
        self.send(request).await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ProviderError> {
        let response = request.send().await.map_err(ProviderError::Transport)?;
        let status = response.status();
        let body = response.bytes().await.map_err(ProviderError::Transport)?;
        if status.is_success() {
            serde_json::from_slice(&body).map_err(|e| {
                ProviderError::UnexpectedResponse(format!("HTTP {status}: unreadable object: {e}"))
            })
        } else {
            Err(error_from_response(status.as_u16(), &body))
        }
    }
}

fn check_id(id: &str) -> Result<&str, ProviderError> {
    if is_object_id(id) {
        Ok(id)
    } else {
        Err(ProviderError::InvalidInput(
            "malformed provider object id".into(),
        ))
    }
}

fn check_amount(amount: Money) -> Result<(), ProviderError> {
    if amount.minor() > 0 {
        Ok(())
    } else {
        Err(ProviderError::InvalidInput(format!(
            "an amount to charge must be positive, not {amount}"
        )))
    }
}

#[async_trait::async_trait]
impl PaymentProvider for StripeClient {
    fn name(&self) -> &'static str {
        "stripe"
    }

    async fn create_customer(&self, customer: &NewCustomer) -> Result<CustomerId, ProviderError> {
        let mut form = Form::default();
        form.add("name", &customer.name);
        if let Some(email) = &customer.email {
            form.add("email", email.as_str());
        }
        form.metadata(
            "metadata",
            &PaymentMetadata::for_client(&customer.client_ref),
        );
        let created: RawId = self
            .post("/v1/customers", &form, &customer.idempotency_key)
            .await?;
        Ok(created.id)
    }

    async fn create_checkout_payment(
        &self,
        payment: &CheckoutPayment,
    ) -> Result<CheckoutRedirect, ProviderError> {
        check_amount(payment.amount)?;
        let currency = payment.amount.currency();
        let kinds = self.kinds_for(currency);
        if kinds.is_empty() {
            return Err(ProviderError::InvalidInput(format!(
                "no configured payment method type can pay in {currency}"
            )));
        }
        let metadata = PaymentMetadata::for_invoice(&payment.invoice_number, &payment.client_ref)
            .with(PaymentMetadata::PAYMENT, &payment.payment_ref);
        let mut form = Form::default();
        form.add("mode", "payment");
        form.add("client_reference_id", &payment.client_ref);
        if let Some(customer) = &payment.customer {
            form.add("customer", check_id(customer)?);
        }
        let item = "line_items[0]";
        form.add(
            &format!("{item}[price_data][currency]"),
            &currency.code().to_ascii_lowercase(),
        );
        form.add(
            &format!("{item}[price_data][unit_amount]"),
            &payment.amount.minor().to_string(),
        );
        form.add(
            &format!("{item}[price_data][product_data][name]"),
            &payment.description,
        );
        form.add(&format!("{item}[quantity]"), "1");
        form.kinds(&kinds);
        form.add("success_url", &payment.success_url);
        form.add("cancel_url", &payment.cancel_url);
        form.metadata("metadata", &metadata);
        form.add("payment_intent_data[description]", &payment.description);
        form.metadata("payment_intent_data[metadata]", &metadata);
        let session: RawCheckoutSession = self
            .post("/v1/checkout/sessions", &form, &payment.idempotency_key)
            .await?;
        session.into_redirect()
    }

    async fn create_checkout_setup(
        &self,
        setup: &CheckoutSetup,
    ) -> Result<CheckoutRedirect, ProviderError> {
        let kinds = self.kinds_for(setup.currency);
        if kinds.is_empty() {
            return Err(ProviderError::InvalidInput(format!(
                "no configured payment method type can pay in {}",
                setup.currency
            )));
        }
        let metadata = PaymentMetadata::for_client(&setup.client_ref);
        let mut form = Form::default();
        form.add("mode", "setup");
        form.add("client_reference_id", &setup.client_ref);
        form.add("customer", check_id(&setup.customer)?);
        form.add("currency", &setup.currency.code().to_ascii_lowercase());
        form.kinds(&kinds);
        form.add("success_url", &setup.success_url);
        form.add("cancel_url", &setup.cancel_url);
        if let Some(text) = &setup.consent_text {
            form.add("custom_text[submit][message]", text);
        }
        form.metadata("metadata", &metadata);
        form.metadata("setup_intent_data[metadata]", &metadata);
        let session: RawCheckoutSession = self
            .post("/v1/checkout/sessions", &form, &setup.idempotency_key)
            .await?;
        session.into_redirect()
    }

    async fn fetch_checkout_session(&self, id: &str) -> Result<CheckoutSession, ProviderError> {
        let raw: RawCheckoutSession = self
            .get(&format!("/v1/checkout/sessions/{}", check_id(id)?))
            .await?;
        raw.into_typed()
    }

    async fn fetch_payment_intent(&self, id: &str) -> Result<PaymentIntent, ProviderError> {
        let raw: RawPaymentIntent = self
            .get(&format!("/v1/payment_intents/{}", check_id(id)?))
            .await?;
        raw.into_typed()
    }

    async fn fetch_setup_intent(&self, id: &str) -> Result<SetupIntent, ProviderError> {
        let raw: RawSetupIntent = self
            .get(&format!("/v1/setup_intents/{}", check_id(id)?))
            .await?;
        Ok(raw.into_typed())
    }

    async fn fetch_payment_method(&self, id: &str) -> Result<PaymentMethod, ProviderError> {
        let raw: RawPaymentMethod = self
            .get(&format!("/v1/payment_methods/{}", check_id(id)?))
            .await?;
        Ok(raw.into_typed())
    }

    async fn detach_payment_method(&self, id: &str) -> Result<(), ProviderError> {
        let id = check_id(id)?;
        // A key per method: a second detach (a retry, a double click) gets
        // the first answer instead of "not attached".
        let _: RawId = self
            .post(
                &format!("/v1/payment_methods/{id}/detach"),
                &Form::default(),
                &format!("detach-{id}"),
            )
            .await?;
        Ok(())
    }

    async fn charge_off_session(
        &self,
        charge: &OffSessionCharge,
    ) -> Result<PaymentIntent, ProviderError> {
        check_amount(charge.amount)?;
        let currency = charge.amount.currency();
        let mut form = Form::default();
        form.add("amount", &charge.amount.minor().to_string());
        form.add("currency", &currency.code().to_ascii_lowercase());
        form.add("customer", check_id(&charge.customer)?);
        form.add("payment_method", check_id(&charge.payment_method)?);
        form.add("off_session", "true");
        form.add("confirm", "true");
        form.add("description", &charge.description);
        form.kinds(&self.kinds_for(currency));
        form.metadata("metadata", &charge.metadata);
        let raw: RawPaymentIntent = self
            .post("/v1/payment_intents", &form, &charge.idempotency_key)
            .await?;
        raw.into_typed()
    }
}

// ---------------------------------------------------------------- requests

/// A form body with Stripe's bracketed keys, in order.
#[derive(Default)]
struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    fn add(&mut self, key: &str, value: &str) {
        self.pairs.push((key.to_string(), value.to_string()));
    }

    fn kinds(&mut self, kinds: &[&PaymentMethodKind]) {
        for (i, kind) in kinds.iter().enumerate() {
            self.add(&format!("payment_method_types[{i}]"), kind.as_str());
        }
    }

    fn metadata(&mut self, prefix: &str, metadata: &PaymentMetadata) {
        for (key, value) in metadata.entries() {
            self.add(&format!("{prefix}[{key}]"), value);
        }
    }
}

// ---------------------------------------------------------------- answers

#[derive(Deserialize)]
struct RawId {
    id: String,
}

#[derive(Deserialize)]
struct RawCheckoutSession {
    id: String,
    url: Option<String>,
    mode: String,
    status: Option<String>,
    payment_status: String,
    amount_total: Option<i64>,
    currency: Option<String>,
    customer: Option<String>,
    payment_intent: Option<String>,
    setup_intent: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    created: i64,
}

impl RawCheckoutSession {
    fn into_redirect(self) -> Result<CheckoutRedirect, ProviderError> {
        let url = self.url.ok_or_else(|| {
            ProviderError::UnexpectedResponse("a new checkout session has no url".into())
        })?;
        Ok(CheckoutRedirect {
            session_id: self.id,
            url,
        })
    }

    fn into_typed(self) -> Result<CheckoutSession, ProviderError> {
        let amount_total = match (self.amount_total, &self.currency) {
            (Some(minor), Some(code)) => Some(money(minor, code)?),
            _ => None,
        };
        Ok(CheckoutSession {
            mode: match self.mode.as_str() {
                "payment" => CheckoutMode::Payment,
                "setup" => CheckoutMode::Setup,
                _ => CheckoutMode::Other(self.mode),
            },
            status: match self.status.as_deref() {
                Some("open") => CheckoutStatus::Open,
                Some("complete") => CheckoutStatus::Complete,
                Some("expired") => CheckoutStatus::Expired,
                other => CheckoutStatus::Other(other.unwrap_or_default().to_string()),
            },
            payment_status: match self.payment_status.as_str() {
                "paid" => CheckoutPaymentStatus::Paid,
                "unpaid" => CheckoutPaymentStatus::Unpaid,
                "no_payment_required" => CheckoutPaymentStatus::NoPaymentRequired,
                _ => CheckoutPaymentStatus::Other(self.payment_status),
            },
            amount_total,
            customer: self.customer,
            payment_intent: self.payment_intent,
            setup_intent: self.setup_intent,
            metadata: metadata(&self.metadata),
            created: self.created,
            id: self.id,
        })
    }
}

#[derive(Deserialize)]
struct RawPaymentIntent {
    id: String,
    status: String,
    amount: i64,
    #[serde(default)]
    amount_received: i64,
    currency: String,
    customer: Option<String>,
    payment_method: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    last_payment_error: Option<RawError>,
    created: i64,
}

impl RawPaymentIntent {
    fn into_typed(self) -> Result<PaymentIntent, ProviderError> {
        let status = match self.status.as_str() {
            "requires_payment_method" => PaymentIntentStatus::RequiresPaymentMethod,
            "requires_confirmation" => PaymentIntentStatus::RequiresConfirmation,
            "requires_action" => PaymentIntentStatus::RequiresAction,
            "processing" => PaymentIntentStatus::Processing,
            "requires_capture" => PaymentIntentStatus::RequiresCapture,
            "canceled" => PaymentIntentStatus::Canceled,
            "succeeded" => PaymentIntentStatus::Succeeded,
            _ => PaymentIntentStatus::Other(self.status.clone()),
        };
        let id = self.id;
        Ok(PaymentIntent {
            status,
            amount: money(self.amount, &self.currency)?,
            amount_received: money(self.amount_received, &self.currency)?,
            customer: self.customer,
            payment_method: self.payment_method,
            metadata: metadata(&self.metadata),
            last_error: self.last_payment_error.map(|e| Decline {
                code: e.code,
                decline_code: e.decline_code,
                message: e.message.unwrap_or_default(),
                payment_intent: Some(id.clone()),
            }),
            created: self.created,
            id,
        })
    }
}

#[derive(Deserialize)]
struct RawSetupIntent {
    id: String,
    status: String,
    customer: Option<String>,
    payment_method: Option<String>,
    mandate: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    created: i64,
}

impl RawSetupIntent {
    fn into_typed(self) -> SetupIntent {
        SetupIntent {
            status: match self.status.as_str() {
                "requires_payment_method" => SetupIntentStatus::RequiresPaymentMethod,
                "requires_confirmation" => SetupIntentStatus::RequiresConfirmation,
                "requires_action" => SetupIntentStatus::RequiresAction,
                "processing" => SetupIntentStatus::Processing,
                "canceled" => SetupIntentStatus::Canceled,
                "succeeded" => SetupIntentStatus::Succeeded,
                _ => SetupIntentStatus::Other(self.status.clone()),
            },
            id: self.id,
            customer: self.customer,
            payment_method: self.payment_method,
            mandate: self.mandate,
            metadata: metadata(&self.metadata),
            created: self.created,
        }
    }
}

/// Only the fields a page may show are read; the rest of Stripe's object
/// (fingerprint, billing details, …) is never deserialised.
#[derive(Deserialize)]
struct RawPaymentMethod {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    customer: Option<String>,
    card: Option<RawCard>,
    us_bank_account: Option<RawUsBankAccount>,
    sepa_debit: Option<RawSepaDebit>,
}

#[derive(Deserialize)]
struct RawCard {
    brand: Option<String>,
    last4: Option<String>,
    exp_month: Option<u8>,
    exp_year: Option<u16>,
}

#[derive(Deserialize)]
struct RawUsBankAccount {
    bank_name: Option<String>,
    last4: Option<String>,
}

#[derive(Deserialize)]
struct RawSepaDebit {
    last4: Option<String>,
}

impl RawPaymentMethod {
    fn into_typed(self) -> PaymentMethod {
        let kind = PaymentMethodKind::parse(&self.kind);
        let (brand, last4, exp_month, exp_year) = match &kind {
            PaymentMethodKind::Card => match self.card {
                Some(c) => (c.brand, c.last4, c.exp_month, c.exp_year),
                None => (None, None, None, None),
            },
            PaymentMethodKind::UsBankAccount => match self.us_bank_account {
                Some(b) => (b.bank_name, b.last4, None, None),
                None => (None, None, None, None),
            },
            PaymentMethodKind::SepaDebit => {
                (None, self.sepa_debit.and_then(|s| s.last4), None, None)
            }
            PaymentMethodKind::Other(_) => (None, None, None, None),
        };
        PaymentMethod {
            id: self.id,
            kind,
            brand,
            last4,
            exp_month,
            exp_year,
            customer: self.customer,
        }
    }
}

fn money(minor: i64, code: &str) -> Result<Money, ProviderError> {
    let currency =
        Currency::parse(code).map_err(|e| ProviderError::UnexpectedResponse(e.to_string()))?;
    Ok(Money::from_minor(minor, currency))
}

fn metadata(raw: &BTreeMap<String, String>) -> PaymentMetadata {
    PaymentMetadata::from_entries(raw.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

// ---------------------------------------------------------------- errors

#[derive(Deserialize)]
struct RawErrorBody {
    error: RawError,
}

#[derive(Deserialize)]
struct RawError {
    #[serde(rename = "type")]
    kind: Option<String>,
    code: Option<String>,
    decline_code: Option<String>,
    message: Option<String>,
    param: Option<String>,
    payment_intent: Option<RawId>,
}

/// Maps Stripe's error answer (`{"error": {"type": …}}`) to a [`ProviderError`].
fn error_from_response(status: u16, body: &[u8]) -> ProviderError {
    let Ok(RawErrorBody { error }) = serde_json::from_slice::<RawErrorBody>(body) else {
        return match status {
            429 => ProviderError::RateLimited,
            401 | 403 => ProviderError::Authentication { status },
            500.. => ProviderError::Unavailable { status },
            _ => {
                ProviderError::UnexpectedResponse(format!("HTTP {status} without an error object"))
            }
        };
    };
    let message = error.message.unwrap_or_default();
    match (error.kind.as_deref(), status) {
        (Some("card_error"), _) | (_, 402) => ProviderError::Declined(Decline {
            code: error.code,
            decline_code: error.decline_code,
            message,
            payment_intent: error.payment_intent.map(|p| p.id),
        }),
        (Some("idempotency_error"), _) => ProviderError::IdempotencyConflict,
        (Some("authentication_error"), _) | (_, 401 | 403) => {
            ProviderError::Authentication { status }
        }
        (_, 429) => ProviderError::RateLimited,
        (Some("api_error"), _) | (_, 500..) => ProviderError::Unavailable { status },
        (_, 404) => ProviderError::NotFound { message },
        _ => ProviderError::InvalidRequest {
            status,
            code: error.code,
            param: error.param,
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(status: u16, body: &str) -> ProviderError {
        error_from_response(status, body.as_bytes())
    }

    #[test]
    fn stripe_errors_become_typed_errors() {
        let declined = map(
            402,
            r#"{"error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds",
                "message":"Your card has insufficient funds.","payment_intent":{"id":"pi_1","status":"requires_payment_method"}}}"#,
        );
        let ProviderError::Declined(d) = declined else {
            panic!("{declined:?}")
        };
        assert_eq!(d.code.as_deref(), Some("card_declined"));
        assert_eq!(d.decline_code.as_deref(), Some("insufficient_funds"));
        assert_eq!(d.payment_intent.as_deref(), Some("pi_1"));
        assert!(!d.needs_payer());

        assert!(matches!(
            map(
                404,
                r#"{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such payment_intent: 'pi_x'"}}"#
            ),
            ProviderError::NotFound { .. }
        ));
        let invalid = map(
            400,
            r#"{"error":{"type":"invalid_request_error","code":"parameter_missing","param":"success_url","message":"Missing required param: success_url."}}"#,
        );
        assert!(
            matches!(&invalid, ProviderError::InvalidRequest { status: 400, param: Some(p), .. } if p == "success_url"),
            "{invalid:?}"
        );
        assert!(
            invalid.to_string().contains("parameter success_url"),
            "{invalid}"
        );
        assert!(matches!(
            map(
                401,
                r#"{"error":{"type":"invalid_request_error","message":"Invalid API Key provided: sk_test_****abcd"}}"#
            ),
            ProviderError::Authentication { status: 401 }
        ));
        assert!(matches!(
            map(
                400,
                r#"{"error":{"type":"idempotency_error","message":"Keys for idempotent requests can only be used with the same parameters"}}"#
            ),
            ProviderError::IdempotencyConflict
        ));
        assert!(matches!(map(429, "{}"), ProviderError::RateLimited));
        assert!(matches!(
            map(502, "<html>bad gateway</html>"),
            ProviderError::Unavailable { status: 502 }
        ));
        assert!(map(503, r#"{"error":{"type":"api_error","message":"x"}}"#).is_retryable());
        assert!(!map(
            400,
            r#"{"error":{"type":"invalid_request_error","message":"x"}}"#
        )
        .is_retryable());
    }

    #[test]
    fn the_key_is_not_in_debug_output() {
        let config = StripeConfig {
            api_base: "https://api.stripe.com".into(),
            secret_key: "sk_test_do_not_print_me".into(),
            webhook_secrets: vec!["whsec_nor_me".into()],
            payment_method_types: vec![PaymentMethodKind::Card],
        };
        let client = StripeClient::new(&config).unwrap();
        let printed = format!("{client:?} {config:?}");
        assert!(!printed.contains("do_not_print_me"), "{printed}");
        assert!(!printed.contains("nor_me"), "{printed}");
    }
}
