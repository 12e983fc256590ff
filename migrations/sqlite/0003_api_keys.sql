-- Account API keys. Only a SHA-256 hash of each secret is kept.
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY NOT NULL,      -- KY + 32 hex
    account_sid TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    read_only   INTEGER NOT NULL DEFAULT 0,
    label       TEXT,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
CREATE INDEX api_keys_by_account ON api_keys (account_sid);
