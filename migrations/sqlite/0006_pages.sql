-- SQLite flavour; keep in step with ../postgres/0006_pages.sql.
-- The client's ticket, tickets and contacts pages (issue 7).

-- An address change asked for on the contacts page. It takes effect only
-- when the signed confirmation link mailed to the NEW address is confirmed
-- (a POST): until then the contact keeps their address and their links.
-- Confirming changes the address and bumps the contact's link generation.
-- A newer request for the same contact supersedes older pending ones.
CREATE TABLE contact_address_changes (
    id           INTEGER PRIMARY KEY,
    contact_id   BIGINT NOT NULL REFERENCES contacts(id),
    new_email    TEXT NOT NULL,
    requested_by BIGINT NOT NULL REFERENCES contacts(id),
    requested_at BIGINT NOT NULL,
    -- pending, confirmed, superseded
    status       TEXT NOT NULL,
    confirmed_at BIGINT
);
CREATE INDEX contact_address_changes_contact ON contact_address_changes(contact_id);
