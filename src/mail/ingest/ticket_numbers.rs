//! Ticket numbers for a batch applied straight through: the counter is
//! advanced (and so locked until the commit) once, the batch's further
//! tickets count on from there in memory, and the counter is written back
//! once at the end — one statement per batch instead of one per ticket.

use std::sync::Mutex;

use sqlx::AnyConnection;

use crate::db::{self, DbError};

const COUNTER: &str = "ticket_number";

#[derive(Default)]
pub(super) struct TicketNumbers {
    /// The last number given out in this batch.
    last: Mutex<Option<i64>>,
}

impl TicketNumbers {
    /// The next ticket number (`first` when there has never been a ticket).
    pub(super) async fn next(&self, tx: &mut AnyConnection, first: i64) -> Result<i64, DbError> {
        let counted_on = {
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            last.as_mut().map(|n| {
                *n += 1;
                *n
            })
        };
        if let Some(n) = counted_on {
            return Ok(n);
        }
        let n = next_from_database(tx, first).await?;
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(n);
        Ok(n)
    }

    /// Writes the last number given out back to the counter.
    pub(super) async fn write_back(&self, tx: &mut AnyConnection) -> Result<(), DbError> {
        let last = *self.last.lock().unwrap_or_else(|e| e.into_inner());
        match last {
            Some(n) => db::set_counter(tx, COUNTER, n).await,
            None => Ok(()),
        }
    }
}

/// The next ticket number straight from the counter (one message alone).
pub(super) async fn next_from_database(tx: &mut AnyConnection, first: i64) -> Result<i64, DbError> {
    db::next_counter(tx, COUNTER, first).await
}
