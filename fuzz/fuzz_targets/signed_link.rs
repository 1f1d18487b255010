//! The signed-link decoder (`GET /l/<token>`), two ways. Any text as a
//! token must be refused cleanly, never panic. And claims made from the
//! input, signed, verify back to themselves — while the same token with any
//! one byte changed is refused (or, if the change is invisible to the
//! decoder, still says exactly the same thing).
#![no_main]

use libfuzzer_sys::fuzz_target;
use postdesk::config::LinkKey;
use postdesk::links::{sign, verify, LinkClaims, LinkError, LinkPurpose};

const NOW: i64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    let keys = [
        LinkKey {
            id: "k2".into(),
            secret: b"fuzz-secret-new-0123456789abcdef012345".to_vec(),
        },
        LinkKey {
            id: "k1".into(),
            secret: b"fuzz-secret-old-0123456789abcdef012345".to_vec(),
        },
    ];
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = verify(&keys, text, NOW);
    }
    if data.len() < 10 {
        return;
    }
    let purpose = LinkPurpose::ALL[usize::from(data[0]) % LinkPurpose::ALL.len()];
    let number = |b: &[u8]| i64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let claims = LinkClaims {
        purpose,
        resource: if purpose.takes_resource() {
            String::from_utf8_lossy(&data[9..]).into_owned()
        } else {
            String::new()
        },
        contact_id: number(&data[1..5]),
        generation: i64::from(data[5]),
        expires_at: NOW + number(&data[5..9]),
    };
    let Ok(token) = sign(&keys, &claims) else {
        return;
    };
    match verify(&keys, &token, NOW) {
        Ok(back) | Err(LinkError::Expired(back)) => assert_eq!(back, claims),
        Err(e) => panic!("a token just signed was refused: {e}"),
    }
    let mut bytes = token.clone().into_bytes();
    let at = usize::from(data[0]) * 7 % bytes.len();
    bytes[at] ^= 1 + (data[1] % 127);
    if let Ok(changed) = String::from_utf8(bytes) {
        match verify(&keys, &changed, NOW) {
            Ok(back) | Err(LinkError::Expired(back)) => assert_eq!(back, claims),
            Err(_) => {}
        }
    }
});
