-- OAuth2 grants of the mail accounts (issue 6): one row per grant (token
-- endpoint + client + account), written the first time the token endpoint
-- rotates its refresh token or refuses it.
CREATE TABLE oauth_grants (
    -- hex SHA-256 of token_url, client_id and the account name
    grant_key TEXT PRIMARY KEY,
    -- the grant's name in logs, metrics and mails: a mailbox name or "smtp"
    credential TEXT NOT NULL,
    -- fingerprint of the configured refresh token the stored one descends
    -- from: a different configured token (a new grant) wins over the row
    origin_fingerprint TEXT NOT NULL,
    -- the latest refresh token, encrypted (AEAD under a key derived from
    -- [[links.keys]]); NULL while the configured one is still current
    refresh_token TEXT,
    -- fingerprint of the refresh token the endpoint refused (invalid_grant);
    -- NULL while the grant works. Operators are mailed once per value.
    revoked_fingerprint TEXT,
    revoked_at BIGINT,
    updated_at BIGINT NOT NULL
);
