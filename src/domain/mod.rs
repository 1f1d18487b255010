//! Pure domain types and rules: no I/O, no SQL, no clock. Untrusted text becomes
//! one of these types at the edge (`EmailAddress::parse`, `Priority::parse`) and
//! the core works with the typed value from then on.

mod business_hours;
mod email_address;
mod invoice;
mod money;
mod optional_mail;
mod ticket;
mod trusted_proxies;

pub use business_hours::BusinessHours;
pub use email_address::{EmailAddress, EmailAddressError};
pub use invoice::{Frequency, InvoiceStatus, PaymentStatus, QuoteStatus};
pub use money::{
    format_amount, price_line, totals, Currency, Money, MoneyError, PricedLine, Quantity, TaxRate,
    TaxRounding, Totals,
};
pub use optional_mail::{MailChoices, OptionalMail};
pub use ticket::{ContactTypes, Priority, TicketNumber, TicketStatus};
pub use trusted_proxies::{InvalidProxy, TrustedProxies};
