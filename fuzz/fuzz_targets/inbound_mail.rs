//! Any bytes as an inbound message, through everything ingest does before it
//! touches the database: parse, classify, the threading keys (our signed
//! Message-IDs, the subject's ticket tag, the subject normalised for
//! matching), reply trimming of the text, and the bounce parser. None of it
//! may panic or hang, whatever arrives.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postdesk::config::LinkKey;
use postdesk::mail::{bounce, classify, message_id, parse, reply_trim, subject};

fuzz_target!(|raw: &[u8]| {
    let keys = [LinkKey {
        id: "fuzz".into(),
        secret: b"fuzz-secret-0123456789abcdef0123456789".to_vec(),
    }];
    if let Ok(mail) = parse::parse(raw) {
        let _ = classify::classify(&mail);
        for id in mail.thread_ids() {
            let _ = message_id::verify(&keys, &id);
        }
        let _ = subject::find_ticket_tag(&mail.subject, "T-");
        let _ = subject::normalized_for_matching(&mail.subject);
        let _ = subject::strip_reply_prefixes(&mail.subject);
        let _ = reply_trim::trim_reply(&mail.text);
    }
    let _ = bounce::parse_bounce(raw);
});
