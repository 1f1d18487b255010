//! What kind of mail a parsed message is, decided from its headers before
//! anything is answered (SPEC §2 step 3); for bounces whose headers do not
//! say so, from the sender, the subject and the opening lines. Automated mail
//! is never acknowledged and never opens a ticket, which is what keeps two
//! auto-responders from talking to each other forever.

use super::bounce;
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

/// Classifies `mail`, returning the class and what decided it: a header in
/// most cases; the sender, subject and opening text for bounces whose headers
/// do not say so.
pub fn classify(mail: &InboundMail) -> (Classification, &'static str) {
    let h = &mail.headers;
    if h.our_loop_header {
        return (Classification::OwnMail, "our loop header");
    }
    let sender_is_daemon = mail
        .from
        .as_ref()
        .is_some_and(|f| bounce::is_daemon_local_part(f.address.base_local_part()));
    if h.multipart_report {
        return (Classification::Bounce, "Content-Type: multipart/report");
    }
    if has_delivery_report_part(mail) {
        return (
            Classification::Bounce,
            "delivery-status or feedback-report part",
        );
    }
    if sender_is_daemon && h.empty_return_path {
        return (Classification::Bounce, "mailer-daemon with Return-Path <>");
    }
    if h.spam_flag {
        return (Classification::Spam, "upstream spam flag");
    }
    // Bounces first: many carry Auto-Submitted or Precedence as well, and
    // only a bounce gets its failed recipients read.
    if sender_is_daemon {
        return (Classification::Bounce, "mailer-daemon sender");
    }
    if bounce::is_ses_notification(&mail.text) {
        return (
            Classification::Bounce,
            "Amazon SES bounce or complaint notification",
        );
    }
    if is_complaint_report_subject(&mail.subject) {
        return (Classification::Bounce, "complaint report subject");
    }
    // A bounce whose sender did not parse (`MAILER-DAEMON <>`) or is a
    // no-reply address: the wording decides, as nobody could answer it anyway.
    let sender_is_machine = mail
        .from
        .as_ref()
        .is_none_or(|f| bounce::is_no_reply_local_part(f.address.base_local_part()));
    if (sender_is_machine || h.empty_return_path)
        && (bounce::subject_reads_as_bounce(&mail.subject)
            || bounce::text_reads_as_bounce(&mail.text))
    {
        return (
            Classification::Bounce,
            "no usable sender and bounce wording",
        );
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
    if h.empty_return_path {
        return (Classification::Automated, "Return-Path <>");
    }
    if is_auto_reply_subject(&mail.subject) {
        return (Classification::Automated, "auto-reply subject");
    }
    (Classification::Human, "no automation header")
}

/// An RFC 3464 delivery report or RFC 5965 complaint report sent inside
/// another multipart type than `multipart/report`.
fn has_delivery_report_part(mail: &InboundMail) -> bool {
    mail.attachments.iter().any(|a| {
        matches!(
            a.content_type.as_str(),
            "message/delivery-status"
                | "message/global-delivery-status"
                | "message/feedback-report"
        )
    })
}

/// Outlook.com's complaint feedback: "complaint about message from 192.0.2.1".
fn is_complaint_report_subject(subject: &str) -> bool {
    subject
        .trim()
        .to_ascii_lowercase()
        .strip_prefix("complaint about message from ")
        .is_some_and(|ip| ip.trim().parse::<std::net::IpAddr>().is_ok())
}

/// Subject prefixes vacation and out-of-office responders put before the
/// original subject. A reply to one starts with `Re:` and is not matched.
fn is_auto_reply_subject(subject: &str) -> bool {
    let subject = subject.trim_start().to_lowercase();
    [
        "auto reply:",
        "autoreply:",
        "auto-reply:",
        "automatic reply:",
        "auto response:",
        "autoresponse:",
        "auto-response:",
        "out of office:",
        "out of office autoreply:",
        "abwesenheitsnotiz:",
        "automatische antwort:",
        "réponse automatique :",
        "réponse automatique:",
        "respuesta automática:",
        "risposta automatica:",
        "automatisch antwoord:",
    ]
    .iter()
    .any(|prefix| subject.starts_with(prefix))
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

    fn class_of_mail(raw: &str) -> Classification {
        classify(&parse(raw.as_bytes()).unwrap()).0
    }

    #[test]
    fn bounces_without_bounce_headers() {
        // A delivery-status part inside multipart/mixed.
        assert_eq!(
            class_of_mail(
                "From: Mail Delivery Subsystem <MAILER-DAEMON>\r\nSubject: Returned mail\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
failed\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nAction: failed\r\n--b--\r\n"
            ),
            Classification::Bounce
        );
        // `MAILER-DAEMON <>` does not parse as a sender.
        assert_eq!(
            class_of_mail(
                "From: MAILER-DAEMON <>\r\nSubject: Mail delivery failed\r\n\r\n\
There was an error delivering your mail to <a@customer.test>.\r\n"
            ),
            Classification::Bounce
        );
        assert_eq!(
            class_of_mail(
                "From: no-reply@mx.example.test\r\nSubject: Mail error\r\n\r\n\
Your mail could not be delivered to: <a@customer.test>\r\n"
            ),
            Classification::Bounce
        );
        assert_eq!(
            class_of_mail("From: post_master@mx.example.test\r\nSubject: Re: Hi\r\n\r\nError\r\n"),
            Classification::Bounce
        );
        assert_eq!(
            class_of_mail(
                "From: staff@mail.example.test\r\n\
Subject: complaint about message from 192.0.2.1\r\n\r\nSee attached.\r\n"
            ),
            Classification::Bounce
        );
        assert_eq!(
            class_of_mail(
                "From: no-reply@sns.amazonaws.com\r\nSubject: AWS Notification Message\r\n\r\n\
{\"notificationType\":\"Bounce\",\"bounce\":{\"bouncedRecipients\":[]}}\r\n"
            ),
            Classification::Bounce
        );
    }

    #[test]
    fn auto_reply_subjects() {
        assert_eq!(
            class_of_mail("From: a@customer.test\r\nSubject: Auto reply: Printer\r\n\r\nAway.\r\n"),
            Classification::Automated
        );
        assert_eq!(
            class_of_mail(
                "From: a@customer.test\r\nSubject: Re: Automatic reply: Printer\r\n\r\nI am back.\r\n"
            ),
            Classification::Human
        );
    }

    #[test]
    fn people_talking_about_bounces_stay_human() {
        // A customer forwarding a bounce, or pasting one, is asking for help.
        assert_eq!(
            class_of_mail(
                "From: a@customer.test\r\nSubject: Fwd: Mail delivery failed\r\n\r\n\
Why does this happen?\r\n\r\n> This message was created automatically by mail delivery software.\r\n"
            ),
            Classification::Human
        );
        assert_eq!(
            class_of_mail(
                "From: a@customer.test\r\nSubject: Mail delivery failed\r\n\r\n\
This message was created automatically by mail delivery software.\r\n"
            ),
            Classification::Human
        );
        assert_eq!(
            class_of_mail(
                "From: a@customer.test\r\nSubject: complaint about message from our technician\r\n\r\n\
He was rude.\r\n"
            ),
            Classification::Human
        );
    }
}
