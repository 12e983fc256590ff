-- The loss audit reads recordings in storage-key order, page by page:
-- (account_sid, sid) is the default layout's order.
CREATE INDEX recordings_by_account_sid ON recordings (account_sid, sid);

-- Results of past audits (the summary only), for the trend on /audit.
CREATE TABLE audit_runs (
    id          TEXT COLLATE "C" PRIMARY KEY NOT NULL,  -- started_at, unique enough
    started_at  TEXT COLLATE "C" NOT NULL,
    finished_at TEXT COLLATE "C" NOT NULL,
    summary     TEXT NOT NULL                           -- audit summary as JSON
);
