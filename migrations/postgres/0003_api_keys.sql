-- Account API keys. Only a SHA-256 hash of each secret is kept.
CREATE TABLE api_keys (
    id          TEXT COLLATE "C" PRIMARY KEY NOT NULL,     -- KY + 32 hex
    account_sid TEXT COLLATE "C" NOT NULL,
    secret_hash TEXT COLLATE "C" NOT NULL UNIQUE,
    read_only   BOOLEAN NOT NULL DEFAULT false,
    label       TEXT,
    created_at  TEXT COLLATE "C" NOT NULL,
    revoked_at  TEXT COLLATE "C"
);
CREATE INDEX api_keys_by_account ON api_keys (account_sid);
