//! Leaving one kind of optional mail without a browser (SPEC §4): the
//! `List-Unsubscribe` of an optional mail offers a one-click POST URL
//! (RFC 8058, answered in `web::preferences`) and a `mailto:` (RFC 2369)
//! whose mail ingest recognises. Both carry the token of a preferences link,
//! which is the whole authority: whoever holds it may lower that contact's
//! mail. An expired but genuine token still may (it only ever lowers mail);
//! a revoked one (contact deactivated, address changed) may not.
//!
//! Here: what such a mail looks like and whose token it carries. The change
//! itself is `db::preferences::unsubscribe`, in the caller's transaction.

use sqlx::AnyConnection;

use crate::config::Config;
use crate::db::contacts::{self, Contact};
use crate::db::DbError;
use crate::domain::{EmailAddress, OptionalMail};
use crate::links::issue::UNSUBSCRIBE_DETAIL;
use crate::links::{verify, LinkError, LinkPurpose};

/// What an unsubscribe mail asks: leave `kind`, by the preferences token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailRequest<'a> {
    pub kind: OptionalMail,
    pub token: &'a str,
}

/// True when `to` holds the unsubscribe sub-address of one of our mailboxes
/// (`support+unsubscribe@…`).
pub fn is_unsubscribe_address<'a>(
    config: &Config,
    mut to: impl Iterator<Item = &'a EmailAddress>,
) -> bool {
    to.any(|address| {
        address.detail() == Some(UNSUBSCRIBE_DETAIL)
            && config
                .mailboxes
                .iter()
                .any(|m| m.address.same_mailbox(address))
    })
}

/// The request in a mail's subject, as the `mailto:` wrote it:
/// `unsubscribe <kind> <token>` (a client may put `Re:` or such in front).
/// `None` when the subject is anything else.
pub fn request_in_subject(subject: &str) -> Option<MailRequest<'_>> {
    let subject = crate::mail::subject::strip_reply_prefixes(subject);
    let mut words = subject.split_whitespace();
    let (Some(verb), Some(kind), Some(token), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return None;
    };
    if !verb.eq_ignore_ascii_case("unsubscribe") {
        return None;
    }
    Some(MailRequest {
        kind: OptionalMail::parse(kind)?,
        token,
    })
}

/// Why a token does not unsubscribe anybody.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("not a genuine preferences link")]
    NotGenuine,
    /// Of this contact (the link's), who was deactivated or changed address.
    #[error("the link's contact was deactivated or changed address")]
    Revoked(i64),
}

/// The contact whose preferences `token` opens, as it stands now.
pub async fn token_holder(
    config: &Config,
    conn: &mut AnyConnection,
    token: &str,
    now_secs: i64,
) -> Result<Result<Contact, Refused>, DbError> {
    let claims = match verify(&config.link_keys, token, now_secs) {
        Ok(claims) | Err(LinkError::Expired(claims)) => claims,
        Err(_) => return Ok(Err(Refused::NotGenuine)),
    };
    if claims.purpose != LinkPurpose::Preferences {
        return Ok(Err(Refused::NotGenuine));
    }
    Ok(
        match contacts::find_contact_by_id(conn, claims.contact_id).await? {
            Some(c) if c.active && c.link_generation == claims.generation => Ok(c),
            _ => Err(Refused::Revoked(claims.contact_id)),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subject_names_the_kind_and_the_token() {
        assert_eq!(
            request_in_subject("unsubscribe statement k1.abc.def"),
            Some(MailRequest {
                kind: OptionalMail::Statement,
                token: "k1.abc.def"
            })
        );
        assert_eq!(
            request_in_subject("Re: Unsubscribe dunning  k1.abc.def "),
            Some(MailRequest {
                kind: OptionalMail::Dunning,
                token: "k1.abc.def"
            })
        );
        for other in [
            "unsubscribe",
            "unsubscribe statement",
            "please unsubscribe statement k1.abc.def",
            "unsubscribe invoices k1.abc.def",
            "unsubscribe statement k1.abc.def and more",
            "Printer offline",
        ] {
            assert_eq!(request_in_subject(other), None, "{other}");
        }
    }
}
