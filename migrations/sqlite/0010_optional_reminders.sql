-- SQLite flavour; keep in step with ../postgres/0010_optional_reminders.sql.
-- Reminders the operator may mark optional (`[schedules] optional_reminders`):
-- a contact's own switch per kind, like the other optional mails of 0005.
-- They only count while the operator has the kind marked optional.
ALTER TABLE contacts ADD COLUMN expiry_mail BIGINT NOT NULL DEFAULT 1;
ALTER TABLE contacts ADD COLUMN card_expiry_mail BIGINT NOT NULL DEFAULT 1;
ALTER TABLE contacts ADD COLUMN dunning_mail BIGINT NOT NULL DEFAULT 1;
