-- SQLite flavour; keep in step with ../postgres/0009_audit.sql.
-- The audit log (SPEC §6, issue 7): who did what, when and from where —
-- link opens, form posts, payments, staff commands, admin API calls.
-- Append-only: rows are never changed (the trigger below refuses any
-- UPDATE); they are deleted only by the retention prune (`[audit]
-- retention_days`, src/db/audit.rs). Never an address, a body or a token
-- in any column: actors are ids, names or keyed hashes.
CREATE TABLE audit_events (
    id           INTEGER PRIMARY KEY,
    -- milliseconds from the application's clock
    occurred_at  BIGINT NOT NULL,
    -- link_open, form_post, payment, staff_command, admin_api
    kind         TEXT NOT NULL,
    -- contact, staff, api_token, stripe, system, anonymous
    actor_kind   TEXT NOT NULL,
    actor_id     TEXT,
    client_id    BIGINT,
    -- a short machine word: ticket.reply, invoice.pay, command.close …
    action       TEXT NOT NULL,
    -- ticket:T-1042, invoice:INV-0042, …
    resource     TEXT,
    -- ok, denied, failed, expired, revoked, invalid, limited
    outcome      TEXT NOT NULL,
    remote_addr  TEXT,
    user_agent   TEXT,
    -- a small JSON object; no bodies, tokens or addresses
    detail       TEXT
);
CREATE INDEX audit_events_time ON audit_events(occurred_at);
CREATE INDEX audit_events_kind ON audit_events(kind, occurred_at);
CREATE INDEX audit_events_client ON audit_events(client_id, occurred_at);
CREATE INDEX audit_events_actor ON audit_events(actor_kind, actor_id, occurred_at);
CREATE INDEX audit_events_action ON audit_events(action, occurred_at);

CREATE TRIGGER audit_events_append_only
BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

-- Link opens were kept in `link_opens` until now; the audit log is their one
-- place from here on. The rows so far move over; the old table stays
-- (migrations only add: the previous binary still writes there until it is
-- replaced) and is no longer read or written.
INSERT INTO audit_events (occurred_at, kind, actor_kind, actor_id, client_id, action,
                          resource, outcome, remote_addr, user_agent, detail)
SELECT o.opened_at, 'link_open', 'contact', CAST(o.contact_id AS TEXT),
       (SELECT c.client_id FROM contacts c WHERE c.id = o.contact_id),
       'link.open',
       CASE WHEN o.resource = '' THEN o.purpose ELSE o.purpose || ':' || o.resource END,
       CASE WHEN o.result = 'opened' THEN 'ok' ELSE o.result END,
       o.remote_addr, o.user_agent, NULL
FROM link_opens o
ORDER BY o.id;
