-- SQLite flavour; keep in step with ../postgres/0005_portal.sql.
-- The client's own pages (issue 7): mail preferences and "email me my links".

-- Which optional mails (SPEC §4) a contact wants, one switch per kind. The
-- contact gets a kind when `optional_mail` (the switch of import and the
-- admin API: no optional mail at all) and the kind's own switch are both on.
-- The preferences page and one-click unsubscribe (RFC 8058) write these.
ALTER TABLE contacts ADD COLUMN statement_mail BIGINT NOT NULL DEFAULT 1;
ALTER TABLE contacts ADD COLUMN report_mail BIGINT NOT NULL DEFAULT 1;
ALTER TABLE contacts ADD COLUMN announcement_mail BIGINT NOT NULL DEFAULT 1;

-- Requests of the public "email me my links" page, for its rate limits. The
-- address and the client's IP are kept only as keyed hashes (HMAC under the
-- first link key), so this table names nobody. outcome: pending, mailed,
-- unknown (no active contact has the address), limited (over a limit),
-- withheld (the contact's address is suppressed).
CREATE TABLE link_requests (
    id           INTEGER PRIMARY KEY,
    address_key  TEXT NOT NULL,
    client_key   TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    handled_at   BIGINT
);
CREATE INDEX link_requests_address ON link_requests(address_key, requested_at);
CREATE INDEX link_requests_client ON link_requests(client_key, requested_at);
-- Rows older than a day are deleted as new requests come.
CREATE INDEX link_requests_time ON link_requests(requested_at);
