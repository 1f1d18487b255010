-- SQLite flavour; keep in step with ../postgres/0002_billing.sql.
-- Billing (issue 4): invoices, quotes, payments, store credit, recurring
-- invoices, saved payment methods, and the append-only record of link opens.
-- Money is BIGINT minor units of the row's currency (ISO 4217 code; its
-- exponent is known to the application). Calendar dates (issue, due, expiry,
-- next bill date) are ISO 'YYYY-MM-DD' text: they are days in the client's
-- time zone, not instants. Instants are Unix epoch milliseconds from the Clock.

CREATE TABLE invoices (
    id               INTEGER PRIMARY KEY,
    number           TEXT NOT NULL UNIQUE,
    client_id        BIGINT NOT NULL REFERENCES clients(id),
    -- draft, sent, processing, partial, paid, overdue, cancelled
    status           TEXT NOT NULL,
    currency         TEXT NOT NULL,
    issue_date       TEXT NOT NULL,
    due_date         TEXT NOT NULL,
    -- per-line or per-invoice (domain::TaxRounding)
    tax_rounding     TEXT NOT NULL,
    subtotal_minor   BIGINT NOT NULL,
    tax_minor        BIGINT NOT NULL,
    total_minor      BIGINT NOT NULL,
    paid_minor       BIGINT NOT NULL DEFAULT 0,
    notes            TEXT,
    terms            TEXT,
    disputed         BIGINT NOT NULL DEFAULT 0,
    undeliverable    BIGINT NOT NULL DEFAULT 0,
    recurring_id     BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX invoices_client ON invoices(client_id, status);

CREATE TABLE invoice_lines (
    invoice_id          BIGINT NOT NULL REFERENCES invoices(id),
    position            BIGINT NOT NULL,
    description         TEXT NOT NULL,
    -- thousandths (1.5 h = 1500)
    quantity_milli      BIGINT NOT NULL,
    unit_price_minor    BIGINT NOT NULL,
    -- hundredths of a percent (19 % = 1900)
    tax_rate_bp         BIGINT NOT NULL,
    net_minor           BIGINT NOT NULL,
    tax_minor           BIGINT NOT NULL,
    PRIMARY KEY (invoice_id, position)
);

CREATE TABLE quotes (
    id               INTEGER PRIMARY KEY,
    number           TEXT NOT NULL UNIQUE,
    client_id        BIGINT NOT NULL REFERENCES clients(id),
    -- draft, sent, accepted, declined, expired
    status           TEXT NOT NULL,
    currency         TEXT NOT NULL,
    issue_date       TEXT NOT NULL,
    expiry_date      TEXT NOT NULL,
    tax_rounding     TEXT NOT NULL,
    subtotal_minor   BIGINT NOT NULL,
    tax_minor        BIGINT NOT NULL,
    total_minor      BIGINT NOT NULL,
    notes            TEXT,
    terms            TEXT,
    decided_at       BIGINT,
    decided_by       BIGINT REFERENCES contacts(id),
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX quotes_client ON quotes(client_id, status);

CREATE TABLE quote_lines (
    quote_id            BIGINT NOT NULL REFERENCES quotes(id),
    position            BIGINT NOT NULL,
    description         TEXT NOT NULL,
    quantity_milli      BIGINT NOT NULL,
    unit_price_minor    BIGINT NOT NULL,
    tax_rate_bp         BIGINT NOT NULL,
    net_minor           BIGINT NOT NULL,
    tax_minor           BIGINT NOT NULL,
    PRIMARY KEY (quote_id, position)
);

-- Saved payment methods: the provider's references and what may be shown
-- (brand, last 4, expiry). Never card numbers.
CREATE TABLE payment_methods (
    id                 INTEGER PRIMARY KEY,
    client_id          BIGINT NOT NULL REFERENCES clients(id),
    provider           TEXT NOT NULL,
    provider_customer  TEXT NOT NULL,
    provider_method    TEXT NOT NULL UNIQUE,
    -- card, us-bank-account, sepa-debit
    kind               TEXT NOT NULL,
    brand              TEXT,
    last4              TEXT,
    exp_month          BIGINT,
    exp_year           BIGINT,
    consent_at         BIGINT NOT NULL,
    removed_at         BIGINT,
    created_at         BIGINT NOT NULL
);
CREATE INDEX payment_methods_client ON payment_methods(client_id);

CREATE TABLE recurring_invoices (
    id                 INTEGER PRIMARY KEY,
    client_id          BIGINT NOT NULL REFERENCES clients(id),
    scope              TEXT NOT NULL,
    currency           TEXT NOT NULL,
    description        TEXT NOT NULL,
    quantity_milli     BIGINT NOT NULL,
    unit_price_minor   BIGINT NOT NULL,
    tax_rate_bp        BIGINT NOT NULL,
    -- monthly, quarterly, yearly
    frequency          TEXT NOT NULL,
    -- the day of month the series was started on (end-of-month handling)
    anchor_day         BIGINT NOT NULL,
    next_bill_date     TEXT NOT NULL,
    payment_terms_days BIGINT NOT NULL,
    auto_pay           BIGINT NOT NULL DEFAULT 0,
    payment_method_id  BIGINT REFERENCES payment_methods(id),
    active             BIGINT NOT NULL DEFAULT 1,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE INDEX recurring_invoices_due ON recurring_invoices(active, next_bill_date);

CREATE TABLE payments (
    id                 INTEGER PRIMARY KEY,
    client_id          BIGINT NOT NULL REFERENCES clients(id),
    invoice_id         BIGINT REFERENCES invoices(id),
    -- card, us-bank-account, sepa-debit, bank-transfer, cash, credit, manual
    method             TEXT NOT NULL,
    provider           TEXT,
    provider_reference TEXT UNIQUE,
    currency           TEXT NOT NULL,
    amount_minor       BIGINT NOT NULL,
    -- processing, succeeded, failed
    status             TEXT NOT NULL,
    received_at        BIGINT NOT NULL,
    created_at         BIGINT NOT NULL
);
CREATE INDEX payments_invoice ON payments(invoice_id);
CREATE INDEX payments_client ON payments(client_id, received_at);

-- Store credit as a ledger: positive entries add credit, negative use it.
CREATE TABLE store_credit_entries (
    id            INTEGER PRIMARY KEY,
    client_id     BIGINT NOT NULL REFERENCES clients(id),
    currency      TEXT NOT NULL,
    amount_minor  BIGINT NOT NULL,
    reason        TEXT NOT NULL,
    invoice_id    BIGINT REFERENCES invoices(id),
    created_at    BIGINT NOT NULL
);
CREATE INDEX store_credit_client ON store_credit_entries(client_id);

-- Append-only: every open of a signed link (a mail scanner's too). Never a
-- status: "opened" proves nothing about a person.
CREATE TABLE link_opens (
    id          INTEGER PRIMARY KEY,
    purpose     TEXT NOT NULL,
    resource    TEXT NOT NULL,
    contact_id  BIGINT NOT NULL,
    -- opened, expired, revoked
    result      TEXT NOT NULL,
    remote_addr TEXT,
    user_agent  TEXT,
    opened_at   BIGINT NOT NULL
);
CREATE INDEX link_opens_contact ON link_opens(contact_id, opened_at);
