//! Mail in and out. Inbound: IMAP watcher → parse → classify → ingest.
//! Outbound: templates → compose → outbox row → SMTP (sent by `jobs`).
//! No SQL here: storage goes through `db`.

pub mod authentication_results;
pub mod bounce;
pub mod classify;
pub mod compose;
pub mod html_text;
pub mod imap;
pub mod ingest;
pub mod mailbox_lease;
pub mod message_id;
pub mod oauth2;
pub mod outgoing;
pub mod parse;
pub mod reply_trim;
pub mod sanitize;
pub mod smtp;
pub mod staff_commands;
pub mod subject;
pub mod templates;
pub mod threading;
pub mod ticket_data;
