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
