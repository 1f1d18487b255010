//! Invoice and quote states. "Opened" is deliberately not one: a mail
//! scanner opens links too, so an open proves nothing.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InvoiceStatus {
    Draft,
    Sent,
    /// A bank debit was started and has not settled.
    Processing,
    Partial,
    Paid,
    Overdue,
    Cancelled,
}

impl InvoiceStatus {
    pub const ALL: [InvoiceStatus; 7] = [
        Self::Draft,
        Self::Sent,
        Self::Processing,
        Self::Partial,
        Self::Paid,
        Self::Overdue,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Sent => "sent",
            Self::Processing => "processing",
            Self::Partial => "partial",
            Self::Paid => "paid",
            Self::Overdue => "overdue",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Shown to the client: "Sent", "Paid", …
    pub fn label(self) -> &'static str {
        match self {
            Self::Draft => "Draft",
            Self::Sent => "Sent",
            Self::Processing => "Processing",
            Self::Partial => "Partially paid",
            Self::Paid => "Paid",
            Self::Overdue => "Overdue",
            Self::Cancelled => "Cancelled",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum QuoteStatus {
    Draft,
    Sent,
    Accepted,
    Declined,
}

impl QuoteStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Sent => "sent",
            Self::Accepted => "accepted",
            Self::Declined => "declined",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Draft, Self::Sent, Self::Accepted, Self::Declined]
            .into_iter()
            .find(|v| v.as_str() == s.trim())
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Draft => "Draft",
            Self::Sent => "Awaiting your decision",
            Self::Accepted => "Accepted",
            Self::Declined => "Declined",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_opened_is_not_one() {
        for s in InvoiceStatus::ALL {
            assert_eq!(InvoiceStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(InvoiceStatus::parse(" Paid "), Some(InvoiceStatus::Paid));
        assert_eq!(InvoiceStatus::parse("opened"), None);
    }
}
