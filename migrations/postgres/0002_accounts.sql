-- Accounts (tenants): a name for pages, the auth token Twilio signs its
-- webhooks with (needed in the clear to compute HMACs), a home time zone.
CREATE TABLE accounts (
    sid        TEXT COLLATE "C" PRIMARY KEY NOT NULL,      -- AC + 32 hex
    name       TEXT,
    auth_token TEXT,
    time_zone  TEXT,
    updated_at TEXT COLLATE "C" NOT NULL
);
