//! Invoice and quote states. "Opened" is deliberately not one: a mail
//! scanner opens links too, so an open proves nothing.

use chrono::{Datelike, Months, NaiveDate};
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

    /// The status an invoice takes after money moved: `paid` (succeeded
    /// payments) against `total`, `processing` (bank debits not yet settled),
    /// and whether the due date has passed. Drafts and cancelled invoices keep
    /// their status: a payment does not publish or revive them.
    pub fn after_payment(self, total: i64, paid: i64, processing: i64, past_due: bool) -> Self {
        match self {
            Self::Draft | Self::Cancelled => self,
            _ if paid >= total => Self::Paid,
            _ if processing > 0 => Self::Processing,
            _ if past_due => Self::Overdue,
            _ if paid > 0 => Self::Partial,
            _ => Self::Sent,
        }
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

/// Where a payment stands with its provider. Only `Succeeded` counts toward
/// an invoice's paid amount; `Processing` (a bank debit in flight) holds that
/// part of the balance so it is not asked for twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    /// Handed to the provider's checkout; the client may never finish it.
    Open,
    Processing,
    Succeeded,
    Failed,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 4] =
        [Self::Open, Self::Processing, Self::Succeeded, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Processing => "processing",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// How often a recurring invoice bills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Frequency {
    Monthly,
    Quarterly,
    Yearly,
}

impl Frequency {
    pub const ALL: [Frequency; 3] = [Self::Monthly, Self::Quarterly, Self::Yearly];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Monthly => "monthly",
            Self::Quarterly => "quarterly",
            Self::Yearly => "yearly",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    pub fn months(self) -> u32 {
        match self {
            Self::Monthly => 1,
            Self::Quarterly => 3,
            Self::Yearly => 12,
        }
    }

    /// The bill date after `current` for a series started on day
    /// `anchor_day` of the month: a series started on the 31st bills on the
    /// last day of shorter months and returns to the 31st after them
    /// (31 Jan → 28 Feb → 31 Mar), instead of drifting to the 28th for good.
    pub fn next_bill_date(self, current: NaiveDate, anchor_day: u32) -> Option<NaiveDate> {
        let first = current
            .with_day(1)?
            .checked_add_months(Months::new(self.months()))?;
        let last_day = first.checked_add_months(Months::new(1))?.pred_opt()?.day();
        first.with_day(anchor_day.clamp(1, 31).min(last_day))
    }

    /// Shown to the client.
    pub fn label(self) -> &'static str {
        match self {
            Self::Monthly => "Monthly",
            Self::Quarterly => "Quarterly",
            Self::Yearly => "Yearly",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn bill_dates_keep_their_day_through_short_months() {
        let monthly = Frequency::Monthly;
        let mut d = date("2027-01-31");
        let mut seen = Vec::new();
        for _ in 0..4 {
            d = monthly.next_bill_date(d, 31).unwrap();
            seen.push(d.to_string());
        }
        assert_eq!(
            seen,
            ["2027-02-28", "2027-03-31", "2027-04-30", "2027-05-31"]
        );
        assert_eq!(
            monthly.next_bill_date(date("2028-01-30"), 30),
            Some(date("2028-02-29"))
        );
        assert_eq!(
            Frequency::Quarterly.next_bill_date(date("2026-11-30"), 30),
            Some(date("2027-02-28"))
        );
        assert_eq!(
            Frequency::Quarterly.next_bill_date(date("2027-02-28"), 30),
            Some(date("2027-05-30"))
        );
        assert_eq!(
            Frequency::Yearly.next_bill_date(date("2028-02-29"), 29),
            Some(date("2029-02-28"))
        );
        assert_eq!(
            Frequency::Yearly.next_bill_date(date("2029-02-28"), 29),
            Some(date("2030-02-28"))
        );
        assert_eq!(
            monthly.next_bill_date(date("2026-12-15"), 15),
            Some(date("2027-01-15"))
        );
    }

    #[test]
    fn statuses_round_trip_and_opened_is_not_one() {
        for s in InvoiceStatus::ALL {
            assert_eq!(InvoiceStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(InvoiceStatus::parse(" Paid "), Some(InvoiceStatus::Paid));
        assert_eq!(InvoiceStatus::parse("opened"), None);
    }

    #[test]
    fn status_follows_the_money() {
        use InvoiceStatus::*;
        assert_eq!(Sent.after_payment(100, 100, 0, false), Paid);
        assert_eq!(Overdue.after_payment(100, 120, 0, true), Paid);
        assert_eq!(Sent.after_payment(100, 40, 0, false), Partial);
        assert_eq!(Partial.after_payment(100, 40, 60, false), Processing);
        assert_eq!(Processing.after_payment(100, 40, 0, true), Overdue);
        assert_eq!(Processing.after_payment(100, 0, 0, false), Sent);
        assert_eq!(Draft.after_payment(100, 100, 0, false), Draft);
        assert_eq!(Cancelled.after_payment(100, 0, 0, false), Cancelled);
    }
}
