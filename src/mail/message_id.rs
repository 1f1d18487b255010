//! Our own Message-IDs, signed with HMAC so a reply that refers to one can be
//! trusted to belong to our thread, and our own mail coming back recognised.
//! Shape: `<pd.<key id>.<random>.<signature>@<domain>>`.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::config::LinkKey;

type HmacSha256 = Hmac<Sha256>;

const SIGNATURE_HEX_LEN: usize = 24;

fn signature(key: &LinkKey, random: &str) -> String {
    let mut mac = HmacSha256::new_from_slice(&key.secret).expect("HMAC takes keys of any length");
    mac.update(b"message-id:");
    mac.update(random.as_bytes());
    let bytes = mac.finalize().into_bytes();
    hex::encode(&bytes[..SIGNATURE_HEX_LEN / 2])
}

/// A new signed Message-ID (without angle brackets) under `domain`.
pub fn generate(key: &LinkKey, domain: &str) -> String {
    let mut random = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut random);
    let random = hex::encode(random);
    format!(
        "pd.{}.{}.{}@{}",
        key.id,
        random,
        signature(key, &random),
        domain
    )
}

/// True when `id` is one of ours, signed by any of `keys`.
pub fn verify(keys: &[LinkKey], id: &str) -> bool {
    let id = id.trim().trim_matches(['<', '>']);
    let Some((local, _domain)) = id.split_once('@') else {
        return false;
    };
    let mut parts = local.split('.');
    let (Some("pd"), Some(key_id), Some(random), Some(sig), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    keys.iter().filter(|k| k.id == key_id).any(|k| {
        let expected = signature(k, random);
        // Constant-time comparison: the signature is a secret-derived value.
        expected.len() == sig.len()
            && expected
                .bytes()
                .zip(sig.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    })
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

    #[test]
    fn generated_ids_verify_and_forgeries_do_not() {
        let k1 = key("k1", "0123456789abcdef0123456789abcdef");
        let k2 = key("k2", "fedcba9876543210fedcba9876543210");
        let id = generate(&k1, "example.test");
        assert!(verify(&[k2.clone(), k1.clone()], &format!("<{id}>")));
        assert!(!verify(&[k2], &id), "wrong key must not verify");
        let forged = id.replacen("pd.k1.", "pd.k1.0", 1);
        assert!(!verify(std::slice::from_ref(&k1), &forged));
        assert!(!verify(&[k1], "random@example.test"));
    }

    /// The fuzz seeds (fuzz/seeds/) carry our Message-IDs signed with the
    /// fuzz target's key, so the fuzzer starts inside the signature check;
    /// if the format changes, they must be made again.
    #[test]
    fn the_fuzz_seeds_carry_ids_signed_with_the_fuzz_key() {
        let fuzz = key("fuzz", "fuzz-secret-0123456789abcdef0123456789");
        let in_reply_to = |mail: &str| {
            mail.lines()
                .find_map(|l| l.strip_prefix("In-Reply-To: "))
                .expect("In-Reply-To")
                .trim()
                .to_string()
        };
        let signed = in_reply_to(include_str!("../../fuzz/seeds/signed-reply.eml"));
        let forged = in_reply_to(include_str!("../../fuzz/seeds/forged-reply.eml"));
        assert!(verify(std::slice::from_ref(&fuzz), &signed), "{signed}");
        assert!(!verify(&[fuzz], &forged), "{forged}");
    }
}
