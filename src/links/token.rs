//! Signed link tokens (SPEC §6): what a link in a mail may show, to whom and
//! until when, signed with HMAC-SHA256 under a key id so keys can rotate (the
//! first `[[links.keys]]` signs, every key verifies).
//!
//! Shape: `<key id>.<payload>.<signature>`, payload and signature base64url
//! without padding; the payload is `v1`, purpose, resource, contact id,
//! generation and expiry (Unix seconds), separated by `~`. The signature
//! covers the key id and the payload. Whether the generation is still the
//! contact's current one is for the caller to check against the database
//! (revocation); this module knows no SQL, no HTTP and never logs a token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::LinkKey;

type HmacSha256 = Hmac<Sha256>;

/// 128 bits of the HMAC: plenty against forgery, and keeps links short.
const SIGNATURE_BYTES: usize = 16;
const VERSION: &str = "v1";
const SEPARATOR: char = '~';
/// Tokens longer than this are not looked at.
const MAX_TOKEN_LEN: usize = 512;

/// What a link opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkPurpose {
    Invoice,
    Quote,
    Ticket,
    Tickets,
    Statement,
    PaymentMethods,
    Contacts,
    Preferences,
    /// One attachment of a ticket's public conversation, as the ticket page
    /// links it: short-lived, never mailed, not opened through `/l/`.
    Attachment,
    /// The confirmation of a contact's new address, mailed to that address.
    AddressChange,
}

impl LinkPurpose {
    pub const ALL: [LinkPurpose; 10] = [
        Self::Invoice,
        Self::Quote,
        Self::Ticket,
        Self::Tickets,
        Self::Statement,
        Self::PaymentMethods,
        Self::Contacts,
        Self::Preferences,
        Self::Attachment,
        Self::AddressChange,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invoice => "invoice",
            Self::Quote => "quote",
            Self::Ticket => "ticket",
            Self::Tickets => "tickets",
            Self::Statement => "statement",
            Self::PaymentMethods => "payment-methods",
            Self::Contacts => "contacts",
            Self::Preferences => "preferences",
            Self::Attachment => "attachment",
            Self::AddressChange => "address-change",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Invoices, quotes and tickets name one document (an attachment and an
    /// address change their id); the rest are about the contact (or their
    /// client) as a whole.
    pub fn takes_resource(self) -> bool {
        matches!(
            self,
            Self::Invoice | Self::Quote | Self::Ticket | Self::Attachment | Self::AddressChange
        )
    }

    /// Whether `postdesk link` and mails may hand out a link of this
    /// purpose for a page; attachment URLs are made by the ticket page and
    /// address confirmations by the contacts page, for one use each.
    pub fn is_page_link(self) -> bool {
        !matches!(self, Self::Attachment | Self::AddressChange)
    }
}

/// The signed facts of a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkClaims {
    pub purpose: LinkPurpose,
    /// The document number (`INV-2026-0042`, `T-1042`); empty when the
    /// purpose takes none.
    pub resource: String,
    pub contact_id: i64,
    /// The contact's link generation when the link was made; a deactivation
    /// or address change bumps the contact's, and older links stop working.
    pub generation: i64,
    /// Unix seconds after which the link no longer opens.
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Not a token of ours, or altered: the page says only "not found".
    #[error("not a valid link")]
    Invalid,
    /// Genuine but past its expiry: the page may offer a fresh link.
    #[error("the link has expired")]
    Expired(LinkClaims),
    /// A resource that cannot be carried (signing side only).
    #[error("a link resource must be 1-64 characters of letters, digits, '-' or '_'")]
    BadResource,
    #[error("no link key is configured")]
    NoKey,
}

fn mac(key: &LinkKey, payload: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(&key.secret).expect("HMAC takes keys of any length");
    mac.update(b"postdesk-link\n");
    mac.update(key.id.as_bytes());
    mac.update(b"\n");
    mac.update(payload.as_bytes());
    mac
}

fn valid_resource(resource: &str, purpose: LinkPurpose) -> bool {
    if !purpose.takes_resource() {
        return resource.is_empty();
    }
    (1..=64).contains(&resource.len())
        && resource
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// Signs `claims` with the first of `keys`.
pub fn sign(keys: &[LinkKey], claims: &LinkClaims) -> Result<String, LinkError> {
    let key = keys.first().ok_or(LinkError::NoKey)?;
    if !valid_resource(&claims.resource, claims.purpose) {
        return Err(LinkError::BadResource);
    }
    let payload = [
        VERSION.to_string(),
        claims.purpose.as_str().to_string(),
        claims.resource.clone(),
        claims.contact_id.to_string(),
        claims.generation.to_string(),
        claims.expires_at.to_string(),
    ]
    .join(&SEPARATOR.to_string());
    let payload = URL_SAFE_NO_PAD.encode(payload);
    let tag = mac(key, &payload).finalize().into_bytes();
    Ok(format!(
        "{}.{}.{}",
        key.id,
        payload,
        URL_SAFE_NO_PAD.encode(&tag[..SIGNATURE_BYTES])
    ))
}

/// Verifies `token` against `keys` at `now` (Unix seconds). The signature is
/// checked in constant time before anything in the payload is believed.
pub fn verify(keys: &[LinkKey], token: &str, now: i64) -> Result<LinkClaims, LinkError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(LinkError::Invalid);
    }
    let mut parts = token.split('.');
    let (Some(key_id), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(LinkError::Invalid);
    };
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| LinkError::Invalid)?;
    if signature.len() != SIGNATURE_BYTES {
        return Err(LinkError::Invalid);
    }
    let key = keys
        .iter()
        .find(|k| k.id == key_id)
        .ok_or(LinkError::Invalid)?;
    mac(key, payload)
        .verify_truncated_left(&signature)
        .map_err(|_| LinkError::Invalid)?;

    // Signed by us: the payload is ours, but parse it strictly all the same.
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| LinkError::Invalid)?;
    let payload = String::from_utf8(payload).map_err(|_| LinkError::Invalid)?;
    let fields: Vec<&str> = payload.split(SEPARATOR).collect();
    let [VERSION, purpose, resource, contact_id, generation, expires_at] = fields[..] else {
        return Err(LinkError::Invalid);
    };
    let purpose = LinkPurpose::parse(purpose).ok_or(LinkError::Invalid)?;
    let number = |s: &str| s.parse::<i64>().map_err(|_| LinkError::Invalid);
    let claims = LinkClaims {
        purpose,
        resource: resource.to_string(),
        contact_id: number(contact_id)?,
        generation: number(generation)?,
        expires_at: number(expires_at)?,
    };
    if !valid_resource(&claims.resource, purpose) {
        return Err(LinkError::Invalid);
    }
    if now > claims.expires_at {
        return Err(LinkError::Expired(claims));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, secret: &str) -> LinkKey {
        LinkKey {
            id: id.into(),
            secret: secret.as_bytes().to_vec(),
        }
    }

    fn claims() -> LinkClaims {
        LinkClaims {
            purpose: LinkPurpose::Invoice,
            resource: "INV-2026-0042".into(),
            contact_id: 7,
            generation: 2,
            expires_at: 2_000_000_000,
        }
    }

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_signed_link_verifies_to_its_claims() {
        let keys = [key("k1", "secret-one-0123456789abcdef")];
        let token = sign(&keys, &claims()).unwrap();
        assert!(token.starts_with("k1."));
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
            "URL-safe: {token}"
        );
        assert_eq!(verify(&keys, &token, NOW), Ok(claims()));
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let keys = [key("k1", "secret-one-0123456789abcdef")];
        let token = sign(&keys, &claims()).unwrap();
        let bytes = token.as_bytes();
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x20, 0x80] {
                let mut altered = bytes.to_vec();
                altered[i] ^= flip;
                let Ok(altered) = String::from_utf8(altered) else {
                    continue;
                };
                // Flipping bit 0x20 turns some base64 letters into their
                // other case: still a different token, still refused.
                assert_eq!(
                    verify(&keys, &altered, NOW),
                    Err(LinkError::Invalid),
                    "byte {i} ^ {flip:#x}: {altered}"
                );
            }
        }
        assert_eq!(verify(&keys, "", NOW), Err(LinkError::Invalid));
        assert_eq!(
            verify(&keys, &format!("{token}.x"), NOW),
            Err(LinkError::Invalid)
        );
        assert_eq!(
            verify(&keys, &"a".repeat(5000), NOW),
            Err(LinkError::Invalid)
        );
    }

    #[test]
    fn an_expired_link_says_so_and_keeps_its_claims() {
        let keys = [key("k1", "secret-one-0123456789abcdef")];
        let token = sign(&keys, &claims()).unwrap();
        assert_eq!(verify(&keys, &token, 2_000_000_000), Ok(claims()));
        assert_eq!(
            verify(&keys, &token, 2_000_000_001),
            Err(LinkError::Expired(claims()))
        );
    }

    #[test]
    fn keys_rotate_the_first_signs_and_all_verify() {
        let old = key("old", "old-secret-0123456789abcdef");
        let new = key("new", "new-secret-0123456789abcdef");
        let issued_before = sign(std::slice::from_ref(&old), &claims()).unwrap();
        let rotated = [new.clone(), old.clone()];
        assert_eq!(verify(&rotated, &issued_before, NOW), Ok(claims()));
        let issued_after = sign(&rotated, &claims()).unwrap();
        assert!(issued_after.starts_with("new."));
        // The old key retired: its links stop working, the new ones don't.
        assert_eq!(
            verify(std::slice::from_ref(&new), &issued_before, NOW),
            Err(LinkError::Invalid)
        );
        assert_eq!(
            verify(std::slice::from_ref(&new), &issued_after, NOW),
            Ok(claims())
        );
        // Same id, different secret: refused.
        let impostor = [key("new", "guessed-secret-0123456789ab")];
        assert_eq!(
            verify(&impostor, &issued_after, NOW),
            Err(LinkError::Invalid)
        );
    }

    #[test]
    fn resources_are_checked_on_both_sides() {
        let keys = [key("k1", "secret-one-0123456789abcdef")];
        let mut c = claims();
        c.resource = "INV~1".into();
        assert_eq!(sign(&keys, &c), Err(LinkError::BadResource));
        c.resource = String::new();
        assert_eq!(sign(&keys, &c), Err(LinkError::BadResource));
        let statement = LinkClaims {
            purpose: LinkPurpose::Statement,
            resource: String::new(),
            ..claims()
        };
        let token = sign(&keys, &statement).unwrap();
        assert_eq!(verify(&keys, &token, NOW), Ok(statement));
        assert_eq!(sign(&[], &claims()), Err(LinkError::NoKey));
        for p in LinkPurpose::ALL {
            assert_eq!(LinkPurpose::parse(p.as_str()), Some(p));
        }
    }
}
