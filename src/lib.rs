//! Postdesk: an email-driven helpdesk daemon for managed IT service providers.
//!
//! ```text
//!  IMAP mailboxes ──watch (IDLE)──┐
//!                                 ├─► ingest ──one transaction──► tickets, messages,
//!  MTA pipe (`postdesk ingest`) ──┘   (keep raw, dedupe,           attachments,
//!                                      classify, identify)         outbox rows
//!                                                                      │
//!  SMTP server ◄──────────── outbox sender (claims due rows) ◄─────────┘
//! ```
//!
//! * `config` turns the TOML file and environment into a typed [`config::Config`].
//! * `domain` holds pure types (addresses, ticket vocabulary); `db` every SQL
//!   statement; `storage` the content-addressed raw mail and attachments.
//! * `mail` is inbound and outbound mail; `jobs` the workers that act on rows.
//! * `billing` and `payments` are invoices, payments and the provider;
//!   `schedule` the scheduled jobs (dunning, recurring invoices, auto-pay,
//!   expiry alerts), each due action exactly once.
//! * `links` signs the links in mails; `web` serves the pages they open;
//!   `portal` holds the rules of the client's ticket, tickets and contacts
//!   pages (who sees what; a reply posted there is ingested as the contact's
//!   own mail).
//! * `app` wires the pieces for `postdesk run`; `cli` is the command line.
//!
//! Time comes from [`clock::Clock`], never from SQL.

pub mod app;
pub mod audit;
pub mod billing;
pub mod cli;
pub mod clock;
pub mod config;
pub mod csv;
pub mod db;
pub mod domain;
pub mod import;
pub mod jobs;
pub mod links;
pub mod mail;
pub mod metrics;
pub mod payments;
pub mod pdf;
pub mod portal;
pub mod run_lock;
pub mod schedule;
pub mod storage;
pub mod tls;
pub mod web;
