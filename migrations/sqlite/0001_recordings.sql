-- The catalog: what is known about each recording, after Twilio's Recording
-- resource. Times are RFC 3339 in UTC (text sorts chronologically).
CREATE TABLE recordings (
    sid            TEXT PRIMARY KEY NOT NULL,   -- RE + 32 hex
    account_sid    TEXT NOT NULL,               -- AC + 32 hex
    call_sid       TEXT,                        -- CA + 32 hex
    start_time     TEXT,                        -- when recording started
    duration       INTEGER,                     -- seconds
    end_time       TEXT,                        -- start_time + duration (indexed)
    channels       INTEGER,
    source         TEXT,                        -- Twilio's RecordingSource
    track          TEXT,
    status         TEXT NOT NULL,               -- processing|completed|absent|failed|deleted
    error_code     INTEGER,                     -- e.g. 16101/16102 for absent
    formats        TEXT NOT NULL DEFAULT 'wav,mp3',
    deleted_at     TEXT,
    deleted_reason TEXT,
    date_updated   TEXT NOT NULL
);
CREATE INDEX recordings_by_call ON recordings (call_sid);
CREATE INDEX recordings_by_account_start ON recordings (account_sid, start_time);
CREATE INDEX recordings_by_end ON recordings (end_time);
CREATE INDEX recordings_by_start ON recordings (start_time);

-- Incidents created through the admin API (file incidents live in files).
CREATE TABLE incidents (
    id         TEXT PRIMARY KEY NOT NULL,
    spec       TEXT NOT NULL,                   -- IncidentSpec as JSON
    updated_at TEXT NOT NULL
);
