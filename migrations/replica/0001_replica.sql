-- Careshare encrypted local replica, schema version 1.
--
-- The whole file is encrypted by SQLCipher; nothing here is readable without
-- the data key. Timestamps are RFC 3339 UTC strings. JSON columns hold the
-- exact text that was written (FHIR JSON is kept as written).

-- Authorised subset of the shared record, one row per resource.
CREATE TABLE resource (
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    version_id    TEXT,            -- meta.versionId of the stored content, if any
    content       TEXT NOT NULL,   -- resource JSON
    base_version  TEXT,            -- hub version the local copy derives from
    patient_id    TEXT NOT NULL,   -- patient whose record this belongs to
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (resource_type, resource_id)
);
CREATE INDEX resource_by_patient ON resource (patient_id);

-- When each patient's record was last brought up to date from the hub.
CREATE TABLE patient_freshness (
    patient_id TEXT PRIMARY KEY NOT NULL,
    synced_at  TEXT NOT NULL
);

-- Edits made offline, waiting to be sent to the hub. The client generates
-- client_edit_id so that a resend is recognised as the same edit.
CREATE TABLE outbox (
    client_edit_id TEXT PRIMARY KEY NOT NULL,
    resource_type  TEXT NOT NULL,
    resource_id    TEXT NOT NULL,
    patient_id     TEXT NOT NULL,
    base_version   TEXT,
    edit           TEXT NOT NULL,  -- edit JSON
    created_at     TEXT NOT NULL,
    state          TEXT NOT NULL DEFAULT 'pending'
                   CHECK (state IN ('pending', 'sent', 'rejected'))
);
CREATE INDEX outbox_by_patient ON outbox (patient_id);

-- Conflicts between a local edit and a newer hub version, awaiting a person.
CREATE TABLE conflict (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    patient_id    TEXT NOT NULL,
    base          TEXT,            -- common ancestor JSON, if known
    ours          TEXT NOT NULL,   -- local JSON
    theirs        TEXT NOT NULL,   -- hub JSON
    detected_at   TEXT NOT NULL
);
CREATE INDEX conflict_by_patient ON conflict (patient_id);

-- Where the next pull from the hub resumes. At most one row.
CREATE TABLE pull_checkpoint (
    id         INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    cursor     TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Local audit log, hash-chained (see the crate documentation for the hash).
CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY NOT NULL,
    recorded_at TEXT NOT NULL,
    event       TEXT NOT NULL,     -- event JSON
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
