//! The client's own pages as business rules, apart from HTTP (SPEC §6,
//! issue 7): who may see which ticket and manage which contacts
//! ([`access`]), a reply or files posted on the ticket page written as the
//! contact's own mail and ingested like one ([`reply`]), closing and
//! reopening from the page ([`ticket_state`]), and the contacts page's
//! changes with the address confirmation by mail ([`contact_admin`]), and
//! unsubscribing without a browser by a preferences token ([`unsubscribe`]).
//! `web` renders; SQL stays in `db::portal`.

pub mod access;
pub mod contact_admin;
pub mod reply;
pub mod ticket_state;
pub mod unsubscribe;
