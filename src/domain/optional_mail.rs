//! Optional mail (SPEC §4): the kinds of mail a person may decline — the
//! monthly statement, the monthly service report and announcements — and a
//! contact's choices among them. Everything else (acknowledgements,
//! invoices, receipts, reminders, alerts) is not optional.

/// A kind of optional mail; also the "list" of RFC 8058 one-click
/// unsubscribe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptionalMail {
    /// The monthly statement (billing and primary contacts).
    Statement,
    /// The monthly service report (primary contacts).
    Report,
    /// Announcements: maintenance windows, news.
    Announcements,
}

impl OptionalMail {
    pub const ALL: [OptionalMail; 3] = [Self::Statement, Self::Report, Self::Announcements];

    /// The name in URLs and forms.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Statement => "statement",
            Self::Report => "report",
            Self::Announcements => "announcements",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// What a person reads on the preferences page.
    pub fn label(self) -> &'static str {
        match self {
            Self::Statement => "Monthly statement of your account",
            Self::Report => "Monthly service report (tickets, hours, invoices)",
            Self::Announcements => "Announcements (maintenance, news)",
        }
    }
}

/// A contact's own switch per kind of optional mail (all on by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MailChoices {
    pub statement: bool,
    pub report: bool,
    pub announcements: bool,
}

impl Default for MailChoices {
    fn default() -> Self {
        Self::all(true)
    }
}

impl MailChoices {
    pub fn all(on: bool) -> Self {
        Self {
            statement: on,
            report: on,
            announcements: on,
        }
    }

    pub fn get(&self, kind: OptionalMail) -> bool {
        match kind {
            OptionalMail::Statement => self.statement,
            OptionalMail::Report => self.report,
            OptionalMail::Announcements => self.announcements,
        }
    }

    pub fn set(&mut self, kind: OptionalMail, on: bool) {
        match kind {
            OptionalMail::Statement => self.statement = on,
            OptionalMail::Report => self.report = on,
            OptionalMail::Announcements => self.announcements = on,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_choices_switch_one_kind() {
        for kind in OptionalMail::ALL {
            assert_eq!(OptionalMail::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(OptionalMail::parse("invoice"), None);
        let mut choices = MailChoices::default();
        choices.set(OptionalMail::Report, false);
        assert!(choices.get(OptionalMail::Statement));
        assert!(!choices.get(OptionalMail::Report));
        assert!(choices.get(OptionalMail::Announcements));
    }
}
