//! A validated, normalised mail address.

use std::fmt;

/// A mail address as Postdesk compares and stores it: trimmed, without angle
/// brackets or display name, the domain lower-cased. The local part is
/// lower-cased as well: strictly it is case-sensitive, but no mail system an MSP
/// deals with treats `Alice@` and `alice@` as different people, and treating
/// them as one prevents duplicate contacts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailAddress(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailAddressError {
    #[error("an address needs exactly one @ between a local part and a domain")]
    Shape,
    #[error("the address is longer than 254 characters")]
    TooLong,
    #[error("the address contains spaces, control characters or brackets")]
    BadCharacter,
    #[error("the domain is not a valid host name")]
    BadDomain,
}

impl EmailAddress {
    pub fn parse(input: &str) -> Result<Self, EmailAddressError> {
        let s = input
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .trim();
        if s.len() > 254 {
            return Err(EmailAddressError::TooLong);
        }
        let (local, domain) = s.rsplit_once('@').ok_or(EmailAddressError::Shape)?;
        if local.is_empty() || domain.is_empty() || local.len() > 64 {
            return Err(EmailAddressError::Shape);
        }
        if s.chars().any(|c| {
            c.is_whitespace()
                || c.is_control()
                || matches!(
                    c,
                    '<' | '>' | ',' | ';' | '(' | ')' | '[' | ']' | '\\' | '"'
                )
        }) {
            return Err(EmailAddressError::BadCharacter);
        }
        let domain_ok = domain.split('.').count() >= 2
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if !domain_ok {
            return Err(EmailAddressError::BadDomain);
        }
        Ok(Self(format!(
            "{}@{}",
            local.to_lowercase(),
            domain.to_lowercase()
        )))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map(|(l, _)| l).unwrap_or_default()
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }

    /// The local part without a `+detail` sub-address.
    pub fn base_local_part(&self) -> &str {
        let local = self.local_part();
        local.split_once('+').map(|(base, _)| base).unwrap_or(local)
    }

    /// The `+detail` of a sub-address, if any (`support+abc@` → `abc`).
    pub fn detail(&self) -> Option<&str> {
        self.local_part().split_once('+').map(|(_, d)| d)
    }

    /// True when both name the same mailbox, ignoring `+detail`.
    pub fn same_mailbox(&self, other: &EmailAddress) -> bool {
        self.domain() == other.domain() && self.base_local_part() == other.base_local_part()
    }

    /// The sub-address `local+detail@domain` of this mailbox.
    pub fn with_detail(&self, detail: &str) -> EmailAddress {
        EmailAddress(format!(
            "{}+{}@{}",
            self.base_local_part(),
            detail,
            self.domain()
        ))
    }
}

impl serde::Serialize for EmailAddress {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_brackets() {
        let a = EmailAddress::parse(" <Alice@Customer.TEST> ").unwrap();
        assert_eq!(a.as_str(), "alice@customer.test");
        assert_eq!(a.domain(), "customer.test");
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "alice",
            "@x.test",
            "alice@",
            "a b@x.test",
            "alice@localhost",
            "a@-x.test",
            "a@x..test",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn sub_addresses() {
        let a = EmailAddress::parse("support+AbC@example.test").unwrap();
        assert_eq!(a.detail(), Some("abc"));
        let base = EmailAddress::parse("support@example.test").unwrap();
        assert!(a.same_mailbox(&base));
        assert_eq!(base.with_detail("tok").as_str(), "support+tok@example.test");
    }
}
