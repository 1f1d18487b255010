-- PostgreSQL flavour; keep in step with ../sqlite/0008_mailbox_leases.sql.
-- Replicas on one PostgreSQL (issue 6): each mailbox is watched by one
-- replica at a time, the holder of its lease. The holder renews it well
-- before `expires_at`; when a holder dies, any other replica takes the lease
-- once it has expired. Times are milliseconds from the application's clock.
CREATE TABLE mailbox_leases (
    mailbox      TEXT PRIMARY KEY,
    holder       TEXT NOT NULL,
    acquired_at  BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
