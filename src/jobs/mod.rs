//! Background work carried out from database rows: the outbox sender now, the
//! scheduler's job runs later. Every task takes a cancellation token and stops
//! between units of work.

pub mod outbox_sender;
pub mod send_journal;
