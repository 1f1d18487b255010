//! Verification of Stripe's webhook requests: the only way a payment can
//! become known to Postdesk.
//!
//! The `Stripe-Signature` header reads `t=<unix seconds>,v1=<hex>,v1=<hex>,…`
//! (`v0` and unknown schemes are ignored). A request is genuine when any `v1`
//! equals HMAC-SHA256, keyed with any configured secret (several during a
//! rotation), over `"{t}.{raw body}"`, compared in constant time, and `t` is
//! within [`TOLERANCE_SECONDS`] of now. Only then is the body read, into a
//! typed [`VerifiedEvent`].
//!
//! What must not live here: acting on events, de-duplicating event ids
//! (that needs the database: the caller records `VerifiedEvent::id`), and
//! trusting the event's object — the caller re-fetches it from the API
//! before it counts. Nothing here logs; secrets and signatures appear in no
//! error message.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use super::is_object_id;

/// How far the signed timestamp may lie from now, either way.
pub const TOLERANCE_SECONDS: i64 = 300;

/// Longest header and most signatures looked at: bounds the work an
/// unauthenticated request can cause.
const MAX_HEADER_BYTES: usize = 4096;
const MAX_SIGNATURES: usize = 8;

/// An event whose signature and timestamp were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEvent {
    /// Stripe's event id (`evt_…`): the key for de-duplication.
    pub id: String,
    pub kind: EventKind,
    /// The id of `data.object` (a checkout session, payment intent or setup
    /// intent, by kind). Re-fetch it before acting.
    pub object_id: String,
    /// Unix seconds when Stripe created the event.
    pub created: i64,
    /// False for events of Stripe's test mode.
    pub livemode: bool,
}

/// The event types Postdesk acts on; anything else is `Other` and ignored
/// by the caller (acknowledged, so Stripe does not resend it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// `checkout.session.completed`: a card payment is paid, a bank debit
    /// is Processing, a setup has saved a method.
    CheckoutSessionCompleted,
    /// `checkout.session.async_payment_succeeded`: a bank debit settled.
    CheckoutSessionAsyncPaymentSucceeded,
    /// `checkout.session.async_payment_failed`: a bank debit bounced.
    CheckoutSessionAsyncPaymentFailed,
    PaymentIntentSucceeded,
    PaymentIntentPaymentFailed,
    PaymentIntentProcessing,
    SetupIntentSucceeded,
    Other(String),
}

impl EventKind {
    pub fn parse(name: &str) -> Self {
        match name {
            "checkout.session.completed" => Self::CheckoutSessionCompleted,
            "checkout.session.async_payment_succeeded" => {
                Self::CheckoutSessionAsyncPaymentSucceeded
            }
            "checkout.session.async_payment_failed" => Self::CheckoutSessionAsyncPaymentFailed,
            "payment_intent.succeeded" => Self::PaymentIntentSucceeded,
            "payment_intent.payment_failed" => Self::PaymentIntentPaymentFailed,
            "payment_intent.processing" => Self::PaymentIntentProcessing,
            "setup_intent.succeeded" => Self::SetupIntentSucceeded,
            other => Self::Other(other.to_string()),
        }
    }

    /// Stripe's name of the event type.
    pub fn as_str(&self) -> &str {
        match self {
            Self::CheckoutSessionCompleted => "checkout.session.completed",
            Self::CheckoutSessionAsyncPaymentSucceeded => {
                "checkout.session.async_payment_succeeded"
            }
            Self::CheckoutSessionAsyncPaymentFailed => "checkout.session.async_payment_failed",
            Self::PaymentIntentSucceeded => "payment_intent.succeeded",
            Self::PaymentIntentPaymentFailed => "payment_intent.payment_failed",
            Self::PaymentIntentProcessing => "payment_intent.processing",
            Self::SetupIntentSucceeded => "setup_intent.succeeded",
            Self::Other(other) => other,
        }
    }
}

/// Why a webhook request was refused. Answer 400 to every one of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("malformed Stripe-Signature header: {0}")]
    MalformedHeader(&'static str),
    #[error("no webhook secret is configured")]
    NoSecrets,
    #[error("no v1 signature matches any configured webhook secret")]
    SignatureMismatch,
    /// The signature is right but the request is stale (a replay) or from
    /// the future (a clock far off).
    #[error("signed timestamp is {age_seconds} s from now (tolerance {TOLERANCE_SECONDS} s)")]
    OutsideTolerance { age_seconds: i64 },
    /// Correctly signed, but not an event we can read.
    #[error("signed body is not a Stripe event: {0}")]
    MalformedEvent(String),
}

/// Checks `signature_header` against `raw_body` (exactly the bytes received)
/// with each of `secrets`, then reads the event.
pub fn verify(
    raw_body: &[u8],
    signature_header: &str,
    secrets: &[String],
    now_unix: i64,
) -> Result<VerifiedEvent, WebhookError> {
    if secrets.is_empty() {
        return Err(WebhookError::NoSecrets);
    }
    let header = SignatureHeader::parse(signature_header)?;
    let matched = secrets.iter().any(|secret| {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
            return false;
        };
        mac.update(header.timestamp_text.as_bytes());
        mac.update(b".");
        mac.update(raw_body);
        // verify_slice compares in constant time.
        header
            .signatures
            .iter()
            .any(|signature| mac.clone().verify_slice(signature).is_ok())
    });
    if !matched {
        return Err(WebhookError::SignatureMismatch);
    }
    let age_seconds = now_unix.saturating_sub(header.timestamp);
    if age_seconds.abs() > TOLERANCE_SECONDS {
        return Err(WebhookError::OutsideTolerance { age_seconds });
    }
    parse_event(raw_body)
}

struct SignatureHeader<'a> {
    timestamp: i64,
    /// As sent: the signed payload starts with these exact characters.
    timestamp_text: &'a str,
    signatures: Vec<Vec<u8>>,
}

impl<'a> SignatureHeader<'a> {
    fn parse(header: &'a str) -> Result<Self, WebhookError> {
        if header.len() > MAX_HEADER_BYTES {
            return Err(WebhookError::MalformedHeader("too long"));
        }
        let mut timestamp = None;
        let mut signatures = Vec::new();
        let mut v1_seen = false;
        for item in header.split(',') {
            let Some((scheme, value)) = item.trim().split_once('=') else {
                return Err(WebhookError::MalformedHeader("an item without `=`"));
            };
            match scheme {
                "t" => {
                    if timestamp.is_some() {
                        return Err(WebhookError::MalformedHeader("two timestamps"));
                    }
                    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(WebhookError::MalformedHeader("timestamp is not a number"));
                    }
                    let parsed: i64 = value
                        .parse()
                        .map_err(|_| WebhookError::MalformedHeader("timestamp is not a number"))?;
                    timestamp = Some((parsed, value));
                }
                "v1" => {
                    v1_seen = true;
                    // A v1 that is not 32 bytes of hex can match nothing.
                    if let Ok(bytes) = hex::decode(value) {
                        if bytes.len() == 32 && signatures.len() < MAX_SIGNATURES {
                            signatures.push(bytes);
                        }
                    }
                }
                _ => {} // v0 (Stripe's test-mode scheme) and schemes yet to come
            }
        }
        let Some((timestamp, timestamp_text)) = timestamp else {
            return Err(WebhookError::MalformedHeader("no timestamp"));
        };
        if !v1_seen {
            return Err(WebhookError::MalformedHeader("no v1 signature"));
        }
        Ok(Self {
            timestamp,
            timestamp_text,
            signatures,
        })
    }
}

#[derive(Deserialize)]
struct RawEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created: i64,
    #[serde(default)]
    livemode: bool,
    data: RawEventData,
}

#[derive(Deserialize)]
struct RawEventData {
    object: RawEventObject,
}

#[derive(Deserialize)]
struct RawEventObject {
    id: String,
}

fn parse_event(raw_body: &[u8]) -> Result<VerifiedEvent, WebhookError> {
    let raw: RawEvent = serde_json::from_slice(raw_body)
        .map_err(|e| WebhookError::MalformedEvent(e.to_string()))?;
    if !is_object_id(&raw.id) {
        return Err(WebhookError::MalformedEvent("malformed event id".into()));
    }
    if !is_object_id(&raw.data.object.id) {
        return Err(WebhookError::MalformedEvent("malformed object id".into()));
    }
    Ok(VerifiedEvent {
        id: raw.id,
        kind: EventKind::parse(&raw.kind),
        object_id: raw.data.object.id,
        created: raw.created,
        livemode: raw.livemode,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000;
    const SECRET: &str = "whsec_test_secret_one";
    const BODY: &str = r#"{"id":"evt_1","object":"event","type":"checkout.session.completed","created":1794999990,"livemode":false,"data":{"object":{"id":"cs_test_1","object":"checkout.session"}}}"#;

    /// The test's own signer (Stripe's algorithm, written out here).
    fn sign(body: &[u8], secret: &str, t: i64) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    fn header(body: &[u8], secret: &str, t: i64) -> String {
        format!("t={t},v1={}", sign(body, secret, t))
    }

    fn secrets(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_good_signature_gives_the_typed_event() {
        let h = header(BODY.as_bytes(), SECRET, NOW - 10);
        let event = verify(BODY.as_bytes(), &h, &secrets(&[SECRET]), NOW).unwrap();
        assert_eq!(
            event,
            VerifiedEvent {
                id: "evt_1".into(),
                kind: EventKind::CheckoutSessionCompleted,
                object_id: "cs_test_1".into(),
                created: 1_794_999_990,
                livemode: false,
            }
        );
    }

    #[test]
    fn every_flipped_byte_of_the_body_is_refused() {
        let h = header(BODY.as_bytes(), SECRET, NOW);
        let s = secrets(&[SECRET]);
        for i in 0..BODY.len() {
            let mut body = BODY.as_bytes().to_vec();
            body[i] ^= 0x01;
            assert_eq!(
                verify(&body, &h, &s, NOW),
                Err(WebhookError::SignatureMismatch),
                "byte {i}"
            );
        }
    }

    #[test]
    fn a_wrong_secret_is_refused() {
        let h = header(BODY.as_bytes(), "whsec_someone_else", NOW);
        assert_eq!(
            verify(BODY.as_bytes(), &h, &secrets(&[SECRET]), NOW),
            Err(WebhookError::SignatureMismatch)
        );
    }

    #[test]
    fn any_secret_of_a_rotation_and_any_v1_may_match() {
        let new = "whsec_test_secret_two";
        let h = header(BODY.as_bytes(), new, NOW);
        assert!(verify(BODY.as_bytes(), &h, &secrets(&[SECRET, new]), NOW).is_ok());
        // Stripe sends one v1 per active secret during its own rotation.
        let both = format!(
            "t={NOW},v1={},v0=abc,v1={},x9=future",
            sign(BODY.as_bytes(), "whsec_other", NOW),
            sign(BODY.as_bytes(), SECRET, NOW)
        );
        assert!(verify(BODY.as_bytes(), &both, &secrets(&[SECRET]), NOW).is_ok());
        // A v0 alone is not enough.
        let v0 = format!("t={NOW},v0={}", sign(BODY.as_bytes(), SECRET, NOW));
        assert_eq!(
            verify(BODY.as_bytes(), &v0, &secrets(&[SECRET]), NOW),
            Err(WebhookError::MalformedHeader("no v1 signature"))
        );
    }

    #[test]
    fn old_and_future_timestamps_are_refused() {
        let s = secrets(&[SECRET]);
        let at = |t: i64| {
            verify(
                BODY.as_bytes(),
                &header(BODY.as_bytes(), SECRET, t),
                &s,
                NOW,
            )
        };
        assert!(at(NOW - TOLERANCE_SECONDS).is_ok());
        assert!(at(NOW + TOLERANCE_SECONDS).is_ok());
        assert_eq!(
            at(NOW - TOLERANCE_SECONDS - 1),
            Err(WebhookError::OutsideTolerance { age_seconds: 301 })
        );
        assert_eq!(
            at(NOW + TOLERANCE_SECONDS + 1),
            Err(WebhookError::OutsideTolerance { age_seconds: -301 })
        );
    }

    #[test]
    fn the_signed_timestamp_cannot_be_swapped() {
        // A valid signature for t=NOW-1000 replayed with a fresh t.
        let old = sign(BODY.as_bytes(), SECRET, NOW - 1000);
        let h = format!("t={NOW},v1={old}");
        assert_eq!(
            verify(BODY.as_bytes(), &h, &secrets(&[SECRET]), NOW),
            Err(WebhookError::SignatureMismatch)
        );
    }

    #[test]
    fn malformed_headers_are_refused() {
        let s = secrets(&[SECRET]);
        let good = sign(BODY.as_bytes(), SECRET, NOW);
        for bad in [
            String::new(),
            "garbage".to_string(),
            format!("v1={good}"),
            format!("t=,v1={good}"),
            format!("t=-5,v1={good}"),
            format!("t=12x,v1={good}"),
            format!("t={NOW},t={NOW},v1={good}"),
            format!("t={NOW}"),
            format!("t={NOW},v1"),
            "t=99999999999999999999999,v1=00".to_string(),
            format!("t={NOW},{}", "v0=1,".repeat(2000)),
        ] {
            assert!(
                matches!(
                    verify(BODY.as_bytes(), &bad, &s, NOW),
                    Err(WebhookError::MalformedHeader(_))
                ),
                "{bad:.80}"
            );
        }
        // Non-hex or short v1 values match nothing.
        for v1 in ["zz", "abcd", &good[..62]] {
            assert_eq!(
                verify(BODY.as_bytes(), &format!("t={NOW},v1={v1}"), &s, NOW),
                Err(WebhookError::SignatureMismatch)
            );
        }
        // Spaces around items are tolerated.
        assert!(verify(BODY.as_bytes(), &format!("t={NOW}, v1={good}"), &s, NOW).is_ok());
        assert_eq!(
            verify(BODY.as_bytes(), &format!("t={NOW},v1={good}"), &[], NOW),
            Err(WebhookError::NoSecrets)
        );
    }

    #[test]
    fn a_signed_body_that_is_no_event_is_refused_after_the_signature() {
        let s = secrets(&[SECRET]);
        for body in [
            "not json",
            r#"{"id":"evt_1","type":"x","created":1}"#,
            r#"{"id":"evt/1","type":"x","created":1,"data":{"object":{"id":"pi_1"}}}"#,
            r#"{"id":"evt_1","type":"x","created":1,"data":{"object":{"id":"../v1/customers"}}}"#,
        ] {
            let h = header(body.as_bytes(), SECRET, NOW);
            assert!(
                matches!(
                    verify(body.as_bytes(), &h, &s, NOW),
                    Err(WebhookError::MalformedEvent(_))
                ),
                "{body}"
            );
        }
    }

    #[test]
    fn event_kinds_round_trip_and_unknown_ones_are_kept() {
        for name in [
            "checkout.session.completed",
            "checkout.session.async_payment_succeeded",
            "checkout.session.async_payment_failed",
            "payment_intent.succeeded",
            "payment_intent.payment_failed",
            "payment_intent.processing",
            "setup_intent.succeeded",
            "customer.created",
        ] {
            assert_eq!(EventKind::parse(name).as_str(), name);
        }
        assert_eq!(
            EventKind::parse("charge.refunded"),
            EventKind::Other("charge.refunded".into())
        );
    }
}
