-- SQLite flavour; keep in step with ../postgres/0003_payments.sql.
-- Payments as the provider sees them (issue 4). A payment is one transaction
-- of the client's (a Checkout Session, a bank transfer booked by staff, store
-- credit used); `payment_allocations` says which invoices it settles, because
-- one payment from the statement page pays several invoices together.
-- Status: open (sent to the provider, not completed), processing (a bank debit
-- waiting for its result), succeeded, failed. Only succeeded allocations count
-- toward an invoice's paid_minor.

ALTER TABLE payments ADD COLUMN contact_id BIGINT REFERENCES contacts(id);
ALTER TABLE payments ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
-- Staff's note of where money came from (a bank reference); not unique,
-- unlike provider_reference, which is the provider's own id.
ALTER TABLE payments ADD COLUMN reference TEXT;

CREATE TABLE payment_allocations (
    payment_id    BIGINT NOT NULL REFERENCES payments(id),
    invoice_id    BIGINT NOT NULL REFERENCES invoices(id),
    amount_minor  BIGINT NOT NULL,
    PRIMARY KEY (payment_id, invoice_id)
);
CREATE INDEX payment_allocations_invoice ON payment_allocations(invoice_id);

-- Webhook events already applied, by the provider's event id: a replayed or
-- re-delivered event changes nothing.
CREATE TABLE webhook_events (
    provider     TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    kind         TEXT NOT NULL,
    received_at  BIGINT NOT NULL,
    PRIMARY KEY (provider, event_id)
);

-- The payment provider's customer record of a client (saved methods and
-- off-session charges hang off it), created the first time it is needed.
CREATE TABLE provider_customers (
    client_id    BIGINT NOT NULL REFERENCES clients(id),
    provider     TEXT NOT NULL,
    customer_id  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (client_id, provider)
);
