//! Who sees what on the client's pages (SPEC §1, §6). One rule, used by the
//! ticket page, its attachment URLs, the tickets list and its CSV, and by
//! link issuing:
//! - a Standard contact sees the tickets they asked or take part in;
//! - Technical and Primary contacts of a client see all of its tickets;
//! - only Primary and Technical contacts manage the client's contacts;
//! - only Billing and Primary contacts see the client's statement and its
//!   saved payment methods.
//!
//! Pages check these again on every request ([`may_open`]): a link issued
//! before a contact's types changed opens only what the types allow now.
//! Nothing of another client is ever visible: the client is part of every
//! rule.

use crate::db::contacts::Contact;
use crate::db::portal::{PortalTicket, TicketScope};
use crate::links::LinkPurpose;

/// Technical and Primary contacts of a client see all its tickets.
pub fn sees_all_client_tickets(contact: &Contact) -> bool {
    contact.client_id.is_some() && (contact.types.primary || contact.types.technical)
}

/// Primary and Technical contacts of a client manage its contacts.
pub fn manages_contacts(contact: &Contact) -> bool {
    sees_all_client_tickets(contact)
}

/// Billing and Primary contacts of a client see its statement and manage
/// its saved payment methods.
pub fn sees_client_accounts(contact: &Contact) -> bool {
    contact.client_id.is_some() && (contact.types.billing || contact.types.primary)
}

/// Whether `contact`'s types let them open a page of `purpose` at all (the
/// document's own rule, e.g. [`may_see_ticket`], comes on top).
pub fn may_open(contact: &Contact, purpose: LinkPurpose) -> bool {
    match purpose {
        LinkPurpose::Statement | LinkPurpose::PaymentMethods => sees_client_accounts(contact),
        LinkPurpose::Contacts => manages_contacts(contact),
        _ => true,
    }
}

/// The tickets `contact` may list.
pub fn ticket_scope(contact: &Contact) -> TicketScope {
    match contact.client_id {
        Some(client) if sees_all_client_tickets(contact) => TicketScope::Client(client),
        _ => TicketScope::Own {
            contact_id: contact.id,
            email: contact.email.clone(),
        },
    }
}

/// Whether `contact` may see `ticket` (the same rule as [`ticket_scope`]).
pub fn may_see_ticket(contact: &Contact, ticket: &PortalTicket) -> bool {
    match ticket_scope(contact) {
        TicketScope::Client(client) => ticket.client_id == Some(client),
        TicketScope::Own { contact_id, email } => {
            ticket.requester_contact_id == Some(contact_id)
                || ticket.requester_email == email
                || ticket.participants.contains(&email)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ContactTypes, MailChoices};

    fn contact(id: i64, client: Option<i64>, types: ContactTypes) -> Contact {
        Contact {
            id,
            client_id: client,
            email: format!("c{id}@customer.test"),
            name: None,
            types,
            active: true,
            link_generation: 0,
            optional_mail: true,
            choices: MailChoices::all(true),
        }
    }

    fn ticket(client: Option<i64>, requester: i64, participants: &[&str]) -> PortalTicket {
        PortalTicket {
            id: 1,
            number: "T-1".into(),
            subject: "s".into(),
            status: "open".into(),
            priority: "medium".into(),
            category: None,
            client_id: client,
            requester_contact_id: Some(requester),
            requester_email: format!("c{requester}@customer.test"),
            assignee_email: None,
            time_worked_minutes: 0,
            created_at: 0,
            updated_at: 0,
            closed_at: None,
            participants: participants.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn standard_contacts_see_what_they_asked_or_take_part_in() {
        let bob = contact(2, Some(10), ContactTypes::default());
        assert!(may_see_ticket(&bob, &ticket(Some(10), 2, &[])));
        assert!(may_see_ticket(
            &bob,
            &ticket(Some(10), 1, &["c2@customer.test"])
        ));
        assert!(!may_see_ticket(&bob, &ticket(Some(10), 1, &[])));
        assert!(!manages_contacts(&bob));
    }

    #[test]
    fn technical_and_primary_contacts_see_their_clients_tickets_only() {
        for types in [
            ContactTypes {
                technical: true,
                ..Default::default()
            },
            ContactTypes {
                primary: true,
                ..Default::default()
            },
        ] {
            let tess = contact(3, Some(10), types);
            assert!(may_see_ticket(&tess, &ticket(Some(10), 1, &[])));
            assert!(!may_see_ticket(&tess, &ticket(Some(11), 1, &[])));
            assert!(!may_see_ticket(&tess, &ticket(None, 1, &[])));
            assert!(manages_contacts(&tess));
        }
        let billing = contact(
            4,
            Some(10),
            ContactTypes {
                billing: true,
                ..Default::default()
            },
        );
        assert!(!may_see_ticket(&billing, &ticket(Some(10), 1, &[])));
        // A primary contact of no client sees only their own.
        let loose = contact(
            5,
            None,
            ContactTypes {
                primary: true,
                ..Default::default()
            },
        );
        assert!(!may_see_ticket(&loose, &ticket(None, 1, &[])));
        assert!(may_see_ticket(&loose, &ticket(None, 5, &[])));
    }
}
