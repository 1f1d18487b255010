-- Postdesk schema, SQLite flavour. Keep in step with ../postgres/0001_initial.sql:
-- same tables, same columns, same meaning. Times are Unix epoch milliseconds
-- (BIGINT) written by the application's Clock; flags are 0/1 integers so the
-- same runtime queries decode on both backends.

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);

CREATE TABLE clients (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    timezone   TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE client_domains (
    domain    TEXT PRIMARY KEY,
    client_id BIGINT NOT NULL REFERENCES clients(id)
);

CREATE TABLE contacts (
    id              INTEGER PRIMARY KEY,
    client_id       BIGINT REFERENCES clients(id),
    email           TEXT NOT NULL UNIQUE,
    name            TEXT,
    is_primary      BIGINT NOT NULL DEFAULT 0,
    is_billing      BIGINT NOT NULL DEFAULT 0,
    is_technical    BIGINT NOT NULL DEFAULT 0,
    active          BIGINT NOT NULL DEFAULT 1,
    link_generation BIGINT NOT NULL DEFAULT 0,
    origin          TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX contacts_client ON contacts(client_id);

CREATE TABLE tickets (
    id                    INTEGER PRIMARY KEY,
    number                TEXT NOT NULL UNIQUE,
    subject               TEXT NOT NULL,
    status                TEXT NOT NULL,
    priority              TEXT NOT NULL,
    category              TEXT,
    client_id             BIGINT REFERENCES clients(id),
    requester_contact_id  BIGINT REFERENCES contacts(id),
    requester_email       TEXT NOT NULL,
    assignee_email        TEXT,
    mailbox               TEXT,
    reply_token           TEXT NOT NULL UNIQUE,
    linked_ticket_id      BIGINT REFERENCES tickets(id),
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    first_response_at     BIGINT,
    first_response_due_at BIGINT,
    closed_at             BIGINT,
    time_worked_minutes   BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX tickets_client ON tickets(client_id);
CREATE INDEX tickets_status ON tickets(status);

CREATE TABLE ticket_participants (
    ticket_id BIGINT NOT NULL REFERENCES tickets(id),
    email     TEXT NOT NULL,
    PRIMARY KEY (ticket_id, email)
);

-- Every message of a ticket, inbound and outbound.
CREATE TABLE messages (
    id           INTEGER PRIMARY KEY,
    ticket_id    BIGINT NOT NULL REFERENCES tickets(id),
    direction    TEXT NOT NULL,
    kind         TEXT NOT NULL,
    message_id   TEXT,
    from_email   TEXT,
    from_name    TEXT,
    to_list      TEXT NOT NULL,
    cc_list      TEXT NOT NULL,
    subject      TEXT NOT NULL,
    -- public: the client thread; internal: staff only (notes, strangers,
    -- auto-replies); system: what Postdesk itself recorded (bounces).
    visibility   TEXT NOT NULL DEFAULT 'public',
    body_text    TEXT NOT NULL,
    -- What the person wrote, without quoted history and signature.
    body_trimmed TEXT,
    body_html    TEXT,
    raw_sha256   TEXT,
    size_bytes   BIGINT NOT NULL,
    truncated    BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL
);
CREATE INDEX messages_ticket ON messages(ticket_id);
CREATE INDEX messages_message_id ON messages(message_id);

CREATE TABLE attachments (
    id           INTEGER PRIMARY KEY,
    message_id   BIGINT NOT NULL REFERENCES messages(id),
    filename     TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size_bytes   BIGINT NOT NULL,
    sha256       TEXT NOT NULL,
    content_id   TEXT,
    is_inline    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX attachments_message ON attachments(message_id);

-- One row per distinct inbound message (Message-ID, or a hash of the raw
-- bytes when there is none): the de-duplication gate of ingest.
CREATE TABLE inbound_receipts (
    dedupe_key  TEXT PRIMARY KEY,
    raw_sha256  TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    ticket_id   BIGINT REFERENCES tickets(id),
    created_at  BIGINT NOT NULL
);

-- Every mailbox UID already applied, so a re-fetch after a crash is a no-op.
CREATE TABLE mailbox_uids (
    mailbox     TEXT NOT NULL,
    uidvalidity BIGINT NOT NULL,
    uid         BIGINT NOT NULL,
    PRIMARY KEY (mailbox, uidvalidity, uid)
);

CREATE TABLE mailbox_checkpoints (
    mailbox     TEXT PRIMARY KEY,
    uidvalidity BIGINT NOT NULL,
    last_uid    BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE quarantine (
    id          INTEGER PRIMARY KEY,
    raw_sha256  TEXT NOT NULL,
    source      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    subject     TEXT,
    created_at  BIGINT NOT NULL
);

-- Mail waiting to be sent. `raw` is the complete rendered RFC 5322 message,
-- written in the transaction of the change that caused it.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL,
    ticket_id       BIGINT REFERENCES tickets(id),
    message_id      TEXT NOT NULL UNIQUE,
    envelope_from   TEXT NOT NULL,
    recipients      TEXT NOT NULL,
    subject         TEXT NOT NULL,
    raw             BLOB NOT NULL,
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claimed_until   BIGINT NOT NULL DEFAULT 0,
    claimed_by      TEXT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT
);
CREATE INDEX outbox_due ON outbox(status, next_attempt_at);

-- One row per recipient of every queued mail: what the per-recipient rate
-- limits count.
CREATE TABLE outbox_recipients (
    outbox_id  BIGINT NOT NULL REFERENCES outbox(id),
    email      TEXT NOT NULL,
    ticket_id  BIGINT,
    automated  BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX outbox_recipients_email ON outbox_recipients(email, created_at);

-- Addresses we must not mail (hard bounces, opt-outs).
CREATE TABLE suppressions (
    email      TEXT PRIMARY KEY,
    reason     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
