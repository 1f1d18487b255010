-- SQLite flavour; keep in step with ../postgres/0004_schedules.sql.
-- The scheduler (issue 5). Every due action is one row of `job_runs`, keyed
-- (kind, target, stage): the unique key is what makes a second planner pass,
-- a restart or a second replica a no-op. A worker claims a run with a lease
-- (claimed_by, claimed_until) and finishes it in the same transaction as the
-- outbox rows it writes, so a crash leaves it pending, never half done.
CREATE TABLE job_runs (
    id            INTEGER PRIMARY KEY,
    -- dunning, recurring, autopay, expiry
    kind          TEXT NOT NULL,
    -- what it is about: invoice:42, recurring:7, expiry:3:2027-01-31, ...
    target        TEXT NOT NULL,
    -- which step of the series: a dunning stage (+7), a bill date, attempt-2
    stage         TEXT NOT NULL,
    client_id     BIGINT REFERENCES clients(id),
    due_at        BIGINT NOT NULL,
    -- pending, done, skipped, failed
    status        TEXT NOT NULL,
    attempts      BIGINT NOT NULL DEFAULT 0,
    claimed_by    TEXT,
    claimed_until BIGINT NOT NULL DEFAULT 0,
    -- what was done, or why not (never an address)
    note          TEXT,
    created_at    BIGINT NOT NULL,
    finished_at   BIGINT,
    UNIQUE (kind, target, stage)
);
CREATE INDEX job_runs_due ON job_runs(status, kind, due_at);

-- Things of a client's that lapse: domains, certificates, asset warranties
-- and contracts. A renewal writes a new `expires_on`, and because the alert
-- runs are keyed by that date, the alerts arm again.
CREATE TABLE expiring_items (
    id           INTEGER PRIMARY KEY,
    client_id    BIGINT NOT NULL REFERENCES clients(id),
    -- domain, certificate, warranty, contract
    kind         TEXT NOT NULL,
    name         TEXT NOT NULL,
    expires_on   TEXT NOT NULL,
    -- certificates: read the real expiry from a TLS handshake
    probe        BIGINT NOT NULL DEFAULT 0,
    probe_port   BIGINT,
    issuer       TEXT,
    probed_at    BIGINT,
    probe_error  TEXT,
    notes        TEXT,
    active       BIGINT NOT NULL DEFAULT 1,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    UNIQUE (client_id, kind, name)
);
CREATE INDEX expiring_items_due ON expiring_items(active, expires_on);

-- Since when a ticket waits on the client (set when it enters
-- waiting-on-client, cleared when it leaves): the reminder and the
-- auto-close count from here, and their runs are keyed by it, so a ticket
-- that waits again later is reminded again.
ALTER TABLE tickets ADD COLUMN waiting_since BIGINT;
-- When the raw message was deleted by the retention purge (the ticket's
-- text, HTML and attachments stay).
ALTER TABLE messages ADD COLUMN raw_purged_at BIGINT;
CREATE INDEX tickets_watch ON tickets(status, first_response_at);

-- Prepaid hours: a block of a client's, drawn down by #time entries.
CREATE TABLE hour_blocks (
    id          INTEGER PRIMARY KEY,
    client_id   BIGINT NOT NULL REFERENCES clients(id),
    name        TEXT NOT NULL,
    minutes     BIGINT NOT NULL,
    starts_on   TEXT NOT NULL,
    -- the last day it can be drawn on; NULL: until used up
    ends_on     TEXT,
    created_at  BIGINT NOT NULL,
    UNIQUE (client_id, name)
);

-- Time worked, as staff recorded it with #time. An entry is drawn from a
-- prepaid block (block_id), or is unbilled until an invoice takes it
-- (invoice_id); an entry larger than a block's rest is split in two.
CREATE TABLE time_entries (
    id          INTEGER PRIMARY KEY,
    ticket_id   BIGINT NOT NULL REFERENCES tickets(id),
    client_id   BIGINT REFERENCES clients(id),
    minutes     BIGINT NOT NULL,
    block_id    BIGINT REFERENCES hour_blocks(id),
    invoice_id  BIGINT REFERENCES invoices(id),
    created_at  BIGINT NOT NULL
);
CREATE INDEX time_entries_client ON time_entries(client_id, created_at);

-- Optional mail (SPEC §4): the monthly statement and service report are
-- sent per client only when switched on, and only to contacts who have not
-- opted out of optional mail.
ALTER TABLE clients ADD COLUMN statement_mail BIGINT NOT NULL DEFAULT 1;
ALTER TABLE clients ADD COLUMN service_report BIGINT NOT NULL DEFAULT 1;
ALTER TABLE contacts ADD COLUMN optional_mail BIGINT NOT NULL DEFAULT 1;

-- When each job last ran a pass. Monthly mails are caught up only when a
-- cron time passed since the last pass (the daemon was down over it); the
-- daemon's very first start records "now", so a fresh installation does
-- not mail last month's statements.
CREATE TABLE schedule_passes (
    kind     TEXT PRIMARY KEY,
    last_at  BIGINT NOT NULL
);
