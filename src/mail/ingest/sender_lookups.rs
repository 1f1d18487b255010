//! Who the senders of a batch are, looked up set-wise before the batch is
//! applied: their contacts, the clients of their domains and those clients'
//! names — three queries per batch instead of up to three per message.
//!
//! A message can create a contact (a first mail from an address), so once a
//! message from an address is applied, that address is looked up in the
//! database again for the rest of the batch. Clients and their domains are
//! never changed by ingest, so those answers hold for the whole batch.

use std::collections::{HashMap, HashSet};

use sqlx::AnyConnection;

use crate::db::contacts::{self, Contact};
use crate::db::DbError;
use crate::domain::EmailAddress;

/// What a lookup knows about one question.
pub(super) enum Known<T> {
    /// Answered by the batch's lookup (`None`: there is none).
    Answer(Option<T>),
    /// Not covered, or possibly changed since: ask the database.
    Ask,
}

#[derive(Default)]
pub(super) struct SenderLookups {
    covered: HashSet<String>,
    contacts: HashMap<String, Contact>,
    domains: HashSet<String>,
    clients_by_domain: HashMap<String, i64>,
    client_names: HashMap<i64, String>,
    /// Senders of messages applied since the lookup.
    changed: HashSet<String>,
}

impl SenderLookups {
    /// Looks up the contacts of `senders`, the clients of their domains and
    /// the names of all those clients.
    pub(super) async fn fetch(
        conn: &mut AnyConnection,
        senders: &[&EmailAddress],
    ) -> Result<Self, DbError> {
        let mut addresses: Vec<&str> = senders.iter().map(|a| a.as_str()).collect();
        addresses.sort_unstable();
        addresses.dedup();
        let mut domains: Vec<&str> = senders.iter().map(|a| a.domain()).collect();
        domains.sort_unstable();
        domains.dedup();
        let found = contacts::find_contacts_by_emails(conn, &addresses).await?;
        let clients_by_domain: HashMap<String, i64> =
            contacts::find_clients_by_domains(conn, &domains)
                .await?
                .into_iter()
                .collect();
        let mut client_ids: Vec<i64> = found
            .iter()
            .filter_map(|c| c.client_id)
            .chain(clients_by_domain.values().copied())
            .collect();
        client_ids.sort_unstable();
        client_ids.dedup();
        let client_names = contacts::client_names(conn, &client_ids)
            .await?
            .into_iter()
            .collect();
        Ok(Self {
            covered: addresses.iter().map(|a| a.to_string()).collect(),
            contacts: found.into_iter().map(|c| (c.email.clone(), c)).collect(),
            domains: domains.iter().map(|d| d.to_string()).collect(),
            clients_by_domain,
            client_names,
            changed: HashSet::new(),
        })
    }

    /// The contact of `address`.
    pub(super) fn contact(&self, address: &EmailAddress) -> Known<&Contact> {
        let a = address.as_str();
        if !self.covered.contains(a) || self.changed.contains(a) {
            return Known::Ask;
        }
        Known::Answer(self.contacts.get(a))
    }

    /// The client whose domain `domain` is.
    pub(super) fn client_of_domain(&self, domain: &str) -> Known<i64> {
        if !self.domains.contains(domain) {
            return Known::Ask;
        }
        Known::Answer(self.clients_by_domain.get(domain).copied())
    }

    /// The name of client `id`.
    pub(super) fn client_name(&self, id: i64) -> Known<String> {
        match self.client_names.get(&id) {
            Some(name) => Known::Answer(Some(name.clone())),
            None => Known::Ask,
        }
    }

    /// A message from `address` was applied: its contact may be new.
    pub(super) fn applied_from(&mut self, address: &EmailAddress) {
        self.changed.insert(address.as_str().to_string());
    }
}
