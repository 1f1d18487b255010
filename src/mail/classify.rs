//! What kind of mail a parsed message is, decided from its headers before
//! anything is answered (SPEC §2 step 3). Automated mail is never acknowledged
//! and never opens a ticket, which is what keeps two auto-responders from
//! talking to each other forever.

use super::parse::InboundMail;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Classification {
    /// Written by a person: may open a ticket and be acknowledged.
    Human,
    /// Our own mail came back (loop header present).
    OwnMail,
    /// A delivery status notification or other bounce.
    Bounce,
    /// Auto-reply, out-of-office, bulk or list mail.
    Automated,
    /// Flagged as spam by the upstream filter.
    Spam,
}

impl Classification {
    pub fn as_str(self) -> &'static str {
        match self {
            Classification::Human => "human",
            Classification::OwnMail => "own-mail",
            Classification::Bounce => "bounce",
            Classification::Automated => "automated",
            Classification::Spam => "spam",
        }
    }
}

/// Classifies `mail`, returning the class and the header that decided it.
pub fn classify(mail: &InboundMail) -> (Classification, &'static str) {
    let h = &mail.headers;
    if h.our_loop_header {
        return (Classification::OwnMail, "our loop header");
    }
    let sender_is_daemon = mail.from.as_ref().is_some_and(|f| {
        let local = f.address.base_local_part();
        local.eq_ignore_ascii_case("mailer-daemon") || local.eq_ignore_ascii_case("postmaster")
    });
    if h.multipart_report {
        return (Classification::Bounce, "Content-Type: multipart/report");
    }
    if sender_is_daemon && h.empty_return_path {
        return (Classification::Bounce, "mailer-daemon with Return-Path <>");
    }
    if h.spam_flag {
        return (Classification::Spam, "upstream spam flag");
    }
    if h.auto_submitted
        .as_deref()
        .is_some_and(|v| !v.starts_with("no"))
    {
        return (Classification::Automated, "Auto-Submitted");
    }
    if h.x_autoreply {
        return (Classification::Automated, "X-Autoreply");
    }
    if h.precedence
        .as_deref()
        .is_some_and(|p| matches!(p, "bulk" | "junk" | "list" | "auto_reply"))
    {
        return (Classification::Automated, "Precedence");
    }
    if h.list_id {
        return (Classification::Automated, "List-Id");
    }
    if h.x_auto_response_suppress {
        return (Classification::Automated, "X-Auto-Response-Suppress");
    }
    if sender_is_daemon {
        return (Classification::Bounce, "mailer-daemon sender");
    }
    if h.empty_return_path {
        return (Classification::Automated, "Return-Path <>");
    }
    (Classification::Human, "no automation header")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::parse::parse;

    fn class_of(headers: &str) -> Classification {
        let raw = format!("From: a@customer.test\r\nSubject: s\r\n{headers}\r\n\r\nbody\r\n");
        classify(&parse(raw.as_bytes()).unwrap()).0
    }

    #[test]
    fn headers_decide() {
        assert_eq!(class_of(""), Classification::Human);
        assert_eq!(class_of("Auto-Submitted: no"), Classification::Human);
        assert_eq!(
            class_of("Auto-Submitted: auto-replied"),
            Classification::Automated
        );
        assert_eq!(class_of("Precedence: bulk"), Classification::Automated);
        assert_eq!(
            class_of("List-Id: <x.lists.test>"),
            Classification::Automated
        );
        assert_eq!(class_of("X-Spam-Flag: YES"), Classification::Spam);
        assert_eq!(
            class_of("X-Postdesk-Loop: example.test"),
            Classification::OwnMail
        );
        assert_eq!(
            class_of("Content-Type: multipart/report; report-type=delivery-status; boundary=x"),
            Classification::Bounce
        );
    }
}
