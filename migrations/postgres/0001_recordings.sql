-- The catalog: what is known about each recording, after Twilio's Recording
-- resource. The same schema, version by version, as migrations/sqlite/.
-- Times are fixed-width RFC 3339 in UTC: text order is time order.
-- Text that is ordered or compared is COLLATE "C" (byte order), as in
-- SQLite, whatever the database's locale: catalog rows are merged with
-- storage listings in key order.
CREATE TABLE recordings (
    sid            TEXT COLLATE "C" PRIMARY KEY NOT NULL,  -- RE + 32 hex
    account_sid    TEXT COLLATE "C" NOT NULL,              -- AC + 32 hex
    call_sid       TEXT COLLATE "C",                       -- CA + 32 hex
    start_time     TEXT COLLATE "C",                       -- when recording started
    duration       BIGINT,                                 -- seconds
    end_time       TEXT COLLATE "C",                       -- start_time + duration (indexed)
    channels       BIGINT,
    source         TEXT,                                   -- Twilio's RecordingSource
    track          TEXT,
    status         TEXT NOT NULL,                          -- processing|completed|absent|failed|deleted
    error_code     BIGINT,                                 -- e.g. 16101/16102 for absent
    formats        TEXT NOT NULL DEFAULT 'wav,mp3',
    deleted_at     TEXT COLLATE "C",
    deleted_reason TEXT,
    date_updated   TEXT COLLATE "C" NOT NULL
);
CREATE INDEX recordings_by_call ON recordings (call_sid);
CREATE INDEX recordings_by_account_start ON recordings (account_sid, start_time);
CREATE INDEX recordings_by_end ON recordings (end_time);
CREATE INDEX recordings_by_start ON recordings (start_time);

-- Incidents created through the admin API (file incidents live in files).
CREATE TABLE incidents (
    id         TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    spec       TEXT NOT NULL,                              -- IncidentSpec as JSON
    updated_at TEXT COLLATE "C" NOT NULL
);
