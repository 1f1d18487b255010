//! Payment providers: the typed interface through which the web pages and the
//! scheduler take money, and its Stripe implementation.
//!
//! What lives here:
//! * [`PaymentProvider`], the calls a provider offers (hosted checkout for a
//!   payment or for saving a method, fetching what the provider knows about a
//!   session, payment, setup or method, detaching a method, charging a saved
//!   method off-session), with typed inputs and outputs;
//! * [`stripe`], the HTTP client that speaks Stripe's API;
//! * [`webhook`], verification of Stripe's signed webhook requests.
//!
//! What must not live here: SQL, deciding what a payment means for an invoice
//! or recording it (that is `db/` and `web/`), and anything provider-specific
//! in the types below — no Stripe JSON leaves `stripe.rs`. Nothing here logs:
//! the caller logs an error once, where it is handled, by object id only.
//! Keys, webhook secrets, card data and customer addresses are never printed,
//! not even by `Debug`.
//!
//! Money travels as [`Money`] (integer minor units and a currency); a provider
//! is told the lowercase ISO code and the minor units, as Stripe expects.
//! Card numbers never reach Postdesk: the provider hosts the forms, we keep
//! only its references (customer, payment method, payment ids).

pub mod stripe;
pub mod webhook;

use std::collections::BTreeMap;

use crate::domain::{Currency, EmailAddress, Money};

pub use stripe::StripeClient;
pub use webhook::{verify, EventKind, VerifiedEvent, WebhookError};

/// A payment provider. Object-safe: the application holds an
/// `Arc<dyn PaymentProvider>`, tests may hold another implementation.
///
/// Every call that creates something takes an idempotency key: the same key
/// again (a retry after a timeout, a double click) returns the first result
/// instead of creating a second session, customer or charge.
#[async_trait::async_trait]
pub trait PaymentProvider: Send + Sync {
    /// Short name recorded with payments ("stripe").
    fn name(&self) -> &'static str;

    /// Creates the provider's customer record for one of our clients; saved
    /// payment methods and off-session charges hang off it.
    async fn create_customer(&self, customer: &NewCustomer) -> Result<CustomerId, ProviderError>;

    /// Starts a hosted checkout that takes `payment.amount` (the full balance
    /// or a part of it) for one invoice; the payer is redirected to the URL.
    async fn create_checkout_payment(
        &self,
        payment: &CheckoutPayment,
    ) -> Result<CheckoutRedirect, ProviderError>;

    /// Starts a hosted checkout in setup mode: the payer enters a card or bank
    /// account and agrees to future charges (the mandate / consent is
    /// collected by the provider's page); nothing is charged.
    async fn create_checkout_setup(
        &self,
        setup: &CheckoutSetup,
    ) -> Result<CheckoutRedirect, ProviderError>;

    async fn fetch_checkout_session(&self, id: &str) -> Result<CheckoutSession, ProviderError>;

    async fn fetch_payment_intent(&self, id: &str) -> Result<PaymentIntent, ProviderError>;

    async fn fetch_setup_intent(&self, id: &str) -> Result<SetupIntent, ProviderError>;

    async fn fetch_payment_method(&self, id: &str) -> Result<PaymentMethod, ProviderError>;

    /// Removes a saved method from its customer: it can no longer be charged.
    /// Detaching the same method twice succeeds (the call is idempotent).
    async fn detach_payment_method(&self, id: &str) -> Result<(), ProviderError>;

    /// Charges a saved method without the payer present (auto-pay). A card
    /// settles at once ([`PaymentIntentStatus::Succeeded`]); a bank debit is
    /// [`PaymentIntentStatus::Processing`] until its webhook says otherwise;
    /// a decline is [`ProviderError::Declined`].
    async fn charge_off_session(
        &self,
        charge: &OffSessionCharge,
    ) -> Result<PaymentIntent, ProviderError>;
}

/// The provider's id of a customer (Stripe: `cus_…`).
pub type CustomerId = String;

/// What a payment or setup is about, stored on the provider's objects so a
/// webhook can be mapped back to an invoice and a client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentMetadata {
    pub invoice_number: Option<String>,
    /// Our reference of the client (an id, never a name or an address).
    pub client_ref: Option<String>,
    /// Further keys (at most a few, short values; e.g. `attempt`,
    /// `recurring_invoice`). Keys are ASCII letters, digits and `_`.
    pub other: BTreeMap<String, String>,
}

impl PaymentMetadata {
    pub const INVOICE_NUMBER: &'static str = "invoice_number";
    pub const CLIENT_REF: &'static str = "client_ref";
    /// Our payment's id (key of [`PaymentMetadata::other`]).
    pub const PAYMENT: &'static str = "payment";

    pub fn for_invoice(invoice_number: &str, client_ref: &str) -> Self {
        Self {
            invoice_number: Some(invoice_number.to_string()),
            client_ref: Some(client_ref.to_string()),
            other: BTreeMap::new(),
        }
    }

    pub fn for_client(client_ref: &str) -> Self {
        Self {
            client_ref: Some(client_ref.to_string()),
            ..Self::default()
        }
    }

    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.other.insert(key.to_string(), value.to_string());
        self
    }

    /// All entries as key/value pairs, the well-known keys first.
    pub fn entries(&self) -> Vec<(&str, &str)> {
        let mut entries = Vec::new();
        if let Some(n) = &self.invoice_number {
            entries.push((Self::INVOICE_NUMBER, n.as_str()));
        }
        if let Some(c) = &self.client_ref {
            entries.push((Self::CLIENT_REF, c.as_str()));
        }
        entries.extend(self.other.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        entries
    }

    /// Builds the typed value from the provider's key/value map.
    pub fn from_entries<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut metadata = Self::default();
        for (key, value) in entries {
            match key {
                Self::INVOICE_NUMBER => metadata.invoice_number = Some(value.to_string()),
                Self::CLIENT_REF => metadata.client_ref = Some(value.to_string()),
                _ => {
                    metadata.other.insert(key.to_string(), value.to_string());
                }
            }
        }
        metadata
    }
}

/// A customer record to create at the provider.
#[derive(Debug, Clone)]
pub struct NewCustomer {
    pub client_ref: String,
    /// The client's name as shown in the provider's dashboard.
    pub name: String,
    /// Where the provider may send its own receipts or mandate notices.
    pub email: Option<EmailAddress>,
    pub idempotency_key: String,
}

/// A hosted checkout paying (part of) one invoice.
#[derive(Debug, Clone)]
pub struct CheckoutPayment {
    pub invoice_number: String,
    pub client_ref: String,
    /// Our payment's id, stored on the session: if we crash between the
    /// provider creating the session and us recording its id, the webhook
    /// still finds the payment.
    pub payment_ref: String,
    /// The provider's customer of this client, when it has one (the payer
    /// then sees saved details and can save the method).
    pub customer: Option<CustomerId>,
    /// What is charged: the balance due or the part the payer chose. Must be
    /// positive.
    pub amount: Money,
    /// The line the payer sees ("Invoice INV-1042").
    pub description: String,
    /// Where the payer lands after paying; the provider replaces
    /// `{CHECKOUT_SESSION_ID}` in it by the session id.
    pub success_url: String,
    pub cancel_url: String,
    /// One per attempt (per click of "Pay now").
    pub idempotency_key: String,
}

/// A hosted checkout saving a card or bank account for later charges.
#[derive(Debug, Clone)]
pub struct CheckoutSetup {
    pub client_ref: String,
    /// Create it first with [`PaymentProvider::create_customer`] if the
    /// client has none.
    pub customer: CustomerId,
    /// The currency later charges will be in (decides which bank debits
    /// apply: SEPA for EUR, US bank accounts for USD).
    pub currency: Currency,
    /// Shown above the confirm button: what the payer agrees to, e.g.
    /// "I authorise Example IT to charge this method for future invoices."
    pub consent_text: Option<String>,
    pub success_url: String,
    pub cancel_url: String,
    pub idempotency_key: String,
}

/// Where to send the payer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRedirect {
    pub session_id: String,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckoutMode {
    Payment,
    Setup,
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckoutStatus {
    Open,
    Complete,
    Expired,
    Other(String),
}

/// Whether a checkout's money has arrived. A bank debit completes the
/// session as `Unpaid` and turns `Paid` with its async success event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckoutPaymentStatus {
    Paid,
    Unpaid,
    NoPaymentRequired,
    Other(String),
}

/// A hosted checkout as the provider knows it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSession {
    pub id: String,
    pub mode: CheckoutMode,
    pub status: CheckoutStatus,
    pub payment_status: CheckoutPaymentStatus,
    /// The amount the session charges (payment mode).
    pub amount_total: Option<Money>,
    pub customer: Option<CustomerId>,
    pub payment_intent: Option<String>,
    pub setup_intent: Option<String>,
    pub metadata: PaymentMetadata,
    /// Unix seconds.
    pub created: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentIntentStatus {
    RequiresPaymentMethod,
    RequiresConfirmation,
    RequiresAction,
    /// A bank debit on its way; it settles days later.
    Processing,
    RequiresCapture,
    Canceled,
    Succeeded,
    Other(String),
}

/// Why the provider refused a payment, in its words; `message` is meant for
/// the payer ("Your card was declined.").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decline {
    /// e.g. `card_declined`, `authentication_required`, `expired_card`.
    pub code: Option<String>,
    /// The bank's reason, e.g. `insufficient_funds`, `generic_decline`.
    pub decline_code: Option<String>,
    pub message: String,
    /// The payment that was declined, when one was created.
    pub payment_intent: Option<String>,
}

impl Decline {
    /// The bank wants the payer present (3-D Secure): an off-session charge
    /// cannot succeed, only a pay link can.
    pub fn needs_payer(&self) -> bool {
        self.code.as_deref() == Some("authentication_required")
    }
}

/// One payment as the provider knows it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentIntent {
    pub id: String,
    pub status: PaymentIntentStatus,
    /// What was asked for.
    pub amount: Money,
    /// What has arrived (zero until it succeeds). This, not `amount`, is what
    /// reduces a balance.
    pub amount_received: Money,
    pub customer: Option<CustomerId>,
    pub payment_method: Option<String>,
    pub metadata: PaymentMetadata,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<Decline>,
    pub created: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupIntentStatus {
    RequiresPaymentMethod,
    RequiresConfirmation,
    /// e.g. micro-deposit verification of a US bank account.
    RequiresAction,
    Processing,
    Canceled,
    Succeeded,
    Other(String),
}

/// The outcome of a setup checkout: the saved method and the mandate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupIntent {
    pub id: String,
    pub status: SetupIntentStatus,
    pub customer: Option<CustomerId>,
    pub payment_method: Option<String>,
    /// The provider's record of the payer's authorisation (bank debits).
    pub mandate: Option<String>,
    pub metadata: PaymentMetadata,
    pub created: i64,
}

/// The kinds of payment method Postdesk offers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PaymentMethodKind {
    Card,
    UsBankAccount,
    SepaDebit,
    Other(String),
}

impl PaymentMethodKind {
    /// The kinds a configuration may list.
    pub const CONFIGURABLE: [PaymentMethodKind; 3] = [
        PaymentMethodKind::Card,
        PaymentMethodKind::UsBankAccount,
        PaymentMethodKind::SepaDebit,
    ];

    pub fn parse(name: &str) -> Self {
        match name {
            "card" => Self::Card,
            "us_bank_account" => Self::UsBankAccount,
            "sepa_debit" => Self::SepaDebit,
            other => Self::Other(other.to_string()),
        }
    }

    /// The provider's name of the kind (`card`, `us_bank_account`, `sepa_debit`).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Card => "card",
            Self::UsBankAccount => "us_bank_account",
            Self::SepaDebit => "sepa_debit",
            Self::Other(other) => other,
        }
    }

    /// Bank debits settle days later: Processing until then.
    pub fn is_delayed(&self) -> bool {
        matches!(self, Self::UsBankAccount | Self::SepaDebit)
    }

    /// Whether the kind can pay in `currency` (SEPA debits only EUR, US bank
    /// accounts only USD, cards any).
    pub fn accepts(&self, currency: Currency) -> bool {
        match self {
            Self::Card | Self::Other(_) => true,
            Self::UsBankAccount => currency.code() == "USD",
            Self::SepaDebit => currency.code() == "EUR",
        }
    }
}

/// A saved payment method: only what a page may show. Never the number,
/// the fingerprint or the holder's details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentMethod {
    pub id: String,
    pub kind: PaymentMethodKind,
    /// Card network (`visa`, `mastercard`) or, for a US bank account, the
    /// bank's name; `None` for SEPA debits.
    pub brand: Option<String>,
    pub last4: Option<String>,
    /// Cards only.
    pub exp_month: Option<u8>,
    /// Cards only.
    pub exp_year: Option<u16>,
    /// The customer it is attached to; `None` once detached.
    pub customer: Option<CustomerId>,
}

impl PaymentMethod {
    /// "Visa •••• 4242", "Bank account •••• 6789", "SEPA Direct Debit •••• 3000".
    pub fn label(&self) -> String {
        let name = match (&self.kind, &self.brand) {
            (PaymentMethodKind::Card, Some(brand)) => capitalise(brand),
            (PaymentMethodKind::Card, None) => "Card".to_string(),
            (PaymentMethodKind::UsBankAccount, Some(bank)) => bank.clone(),
            (PaymentMethodKind::UsBankAccount, None) => "Bank account".to_string(),
            (PaymentMethodKind::SepaDebit, _) => "SEPA Direct Debit".to_string(),
            (PaymentMethodKind::Other(kind), _) => kind.clone(),
        };
        match &self.last4 {
            Some(last4) => format!("{name} •••• {last4}"),
            None => name,
        }
    }
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A charge of a saved method without the payer present.
#[derive(Debug, Clone)]
pub struct OffSessionCharge {
    pub customer: CustomerId,
    pub payment_method: String,
    /// Must be positive.
    pub amount: Money,
    /// The line on the payer's statement or in the provider's dashboard.
    pub description: String,
    pub metadata: PaymentMetadata,
    /// One per invoice and attempt, e.g. `autopay-INV-1042-1`.
    pub idempotency_key: String,
}

/// What went wrong talking to the provider.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The bank or card network refused the payment.
    #[error("payment declined ({})", .0.code.as_deref().unwrap_or("no code"))]
    Declined(Decline),
    /// The object does not exist (or not for this account).
    #[error("not found at the payment provider: {message}")]
    NotFound { message: String },
    /// The provider refused the request as malformed (our bug or our
    /// configuration, not the payer's).
    #[error("the payment provider refused the request (HTTP {status}, {}{}): {message}",
        code.as_deref().unwrap_or("no code"),
        param.as_deref().map(|p| format!(", parameter {p}")).unwrap_or_default())]
    InvalidRequest {
        status: u16,
        code: Option<String>,
        param: Option<String>,
        message: String,
    },
    /// The idempotency key was used before with different parameters.
    #[error("the idempotency key was used before with different parameters")]
    IdempotencyConflict,
    /// The API key is wrong, revoked, or lacks the permission.
    #[error("the payment provider refused our API key (HTTP {status})")]
    Authentication { status: u16 },
    #[error("the payment provider asks us to slow down")]
    RateLimited,
    /// The provider failed (5xx): try again later with the same key.
    #[error("the payment provider is unavailable (HTTP {status})")]
    Unavailable { status: u16 },
    /// No answer: connection, TLS or timeout. Retry with the same
    /// idempotency key; the first request may have been carried out.
    #[error("cannot reach the payment provider: {0}")]
    Transport(#[source] reqwest::Error),
    /// The provider answered something we cannot read.
    #[error("unexpected answer from the payment provider: {0}")]
    UnexpectedResponse(String),
    /// Refused before sending: a malformed id or amount.
    #[error("not sent to the payment provider: {0}")]
    InvalidInput(String),
}

impl ProviderError {
    /// Whether the same call (with the same idempotency key) may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited | Self::Unavailable { .. } | Self::Transport(_)
        )
    }
}

/// Whether `id` looks like a provider object id (`cs_test_a1B2…`, `pi_…`):
/// ASCII letters, digits and `_`, 1 to 255 characters. Ids from webhooks
/// and forms are checked before they go into a URL path.
pub fn is_object_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 255 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_through_entries() {
        let m = PaymentMetadata::for_invoice("INV-7", "42").with("attempt", "2");
        let entries = m.entries();
        assert_eq!(
            entries,
            vec![
                ("invoice_number", "INV-7"),
                ("client_ref", "42"),
                ("attempt", "2")
            ]
        );
        assert_eq!(PaymentMetadata::from_entries(entries), m);
    }

    #[test]
    fn bank_debits_are_limited_to_their_currency() {
        let eur = Currency::parse("EUR").unwrap();
        let usd = Currency::parse("USD").unwrap();
        assert!(PaymentMethodKind::SepaDebit.accepts(eur));
        assert!(!PaymentMethodKind::SepaDebit.accepts(usd));
        assert!(PaymentMethodKind::UsBankAccount.accepts(usd));
        assert!(!PaymentMethodKind::UsBankAccount.accepts(eur));
        assert!(PaymentMethodKind::Card.accepts(eur));
    }

    #[test]
    fn labels_show_brand_and_last_four_only() {
        let card = PaymentMethod {
            id: "pm_1".into(),
            kind: PaymentMethodKind::Card,
            brand: Some("visa".into()),
            last4: Some("4242".into()),
            exp_month: Some(12),
            exp_year: Some(2030),
            customer: None,
        };
        assert_eq!(card.label(), "Visa •••• 4242");
        let sepa = PaymentMethod {
            kind: PaymentMethodKind::SepaDebit,
            brand: None,
            last4: Some("3000".into()),
            ..card
        };
        assert_eq!(sepa.label(), "SEPA Direct Debit •••• 3000");
    }

    #[test]
    fn object_ids_are_plain() {
        assert!(is_object_id("cs_test_a1B2c3"));
        for bad in ["", "../customers", "pi_1?expand=x", "pm 1", "pm/1"] {
            assert!(!is_object_id(bad), "{bad}");
        }
    }
}
