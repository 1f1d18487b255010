//! Optional mail (SPEC §4): the kinds of mail a person may decline — the
//! monthly statement, the monthly service report and announcements always;
//! expiry alerts, saved-card expiry alerts and payment reminders (dunning)
//! only when the operator marks them optional (`[schedules]
//! optional_reminders`) — and a contact's choices among them. Everything
//! else (acknowledgements, invoices, receipts, ticket mail) is not optional.

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
    /// Reminder: domains, certificates, warranties, contracts expiring.
    #[serde(rename = "expiry")]
    ExpiryAlerts,
    /// Reminder: a saved card expires before the auto-pay charge.
    CardExpiry,
    /// Reminder: an invoice is due or overdue (the dunning stages).
    Dunning,
}

impl OptionalMail {
    pub const ALL: [OptionalMail; 6] = [
        Self::Statement,
        Self::Report,
        Self::Announcements,
        Self::ExpiryAlerts,
        Self::CardExpiry,
        Self::Dunning,
    ];

    /// The reminders, optional only when the operator marks them so.
    pub const REMINDERS: [OptionalMail; 3] = [Self::ExpiryAlerts, Self::CardExpiry, Self::Dunning];

    /// A reminder kind: optional only when the operator marks it so.
    pub fn is_reminder(self) -> bool {
        Self::REMINDERS.contains(&self)
    }

    /// The name in URLs and forms.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Statement => "statement",
            Self::Report => "report",
            Self::Announcements => "announcements",
            Self::ExpiryAlerts => "expiry",
            Self::CardExpiry => "card-expiry",
            Self::Dunning => "dunning",
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
            Self::ExpiryAlerts => {
                "Reminders of expiring domains, certificates, warranties and contracts"
            }
            Self::CardExpiry => "Reminders that a saved card expires before its next charge",
            Self::Dunning => "Reminders of invoices that are due or overdue",
        }
    }
}

/// A contact's own switch per kind of optional mail (all on by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MailChoices {
    pub statement: bool,
    pub report: bool,
    pub announcements: bool,
    pub expiry_alerts: bool,
    pub card_expiry: bool,
    pub dunning: bool,
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
            expiry_alerts: on,
            card_expiry: on,
            dunning: on,
        }
    }

    pub fn get(&self, kind: OptionalMail) -> bool {
        match kind {
            OptionalMail::Statement => self.statement,
            OptionalMail::Report => self.report,
            OptionalMail::Announcements => self.announcements,
            OptionalMail::ExpiryAlerts => self.expiry_alerts,
            OptionalMail::CardExpiry => self.card_expiry,
            OptionalMail::Dunning => self.dunning,
        }
    }

    pub fn set(&mut self, kind: OptionalMail, on: bool) {
        match kind {
            OptionalMail::Statement => self.statement = on,
            OptionalMail::Report => self.report = on,
            OptionalMail::Announcements => self.announcements = on,
            OptionalMail::ExpiryAlerts => self.expiry_alerts = on,
            OptionalMail::CardExpiry => self.card_expiry = on,
            OptionalMail::Dunning => self.dunning = on,
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
        choices.set(OptionalMail::Dunning, false);
        assert!(!choices.get(OptionalMail::Dunning));
        assert!(choices.get(OptionalMail::CardExpiry));
        let reminders: Vec<_> = OptionalMail::ALL
            .into_iter()
            .filter(|k| k.is_reminder())
            .collect();
        assert_eq!(reminders, OptionalMail::REMINDERS);
    }
}
