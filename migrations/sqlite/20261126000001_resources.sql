-- Every version of every resource, in commit order. `seq` is the hub's change sequence:
-- assigned under the hub's write lock, so it grows in commit order and a reader that has
-- seen seq N has seen every change up to N. A version row is never rewritten, except to
-- record which later version superseded it.
CREATE TABLE resource_version (
    seq            INTEGER PRIMARY KEY,
    res_type       TEXT    NOT NULL,
    res_id         TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    last_updated   INTEGER NOT NULL,            -- microseconds since the epoch
    deleted        INTEGER NOT NULL DEFAULT 0,  -- 1: this version is a deletion
    superseded_seq INTEGER,                     -- seq of the next version; NULL while current
    content        TEXT,                        -- the resource JSON as stored; NULL for a deletion
    UNIQUE (res_type, res_id, version)
);
CREATE INDEX resource_current ON resource_version (res_type, res_id) WHERE superseded_seq IS NULL;
CREATE INDEX resource_type_seq ON resource_version (res_type, seq);
CREATE INDEX resource_last_updated ON resource_version (last_updated);

-- Search index rows belong to one version (by seq) and are never changed: a search as of
-- a snapshot reads the versions current at that snapshot, so paging stays stable while
-- data changes.
CREATE TABLE idx_token (
    seq      INTEGER NOT NULL,
    res_type TEXT    NOT NULL,
    param    TEXT    NOT NULL,
    system   TEXT    NOT NULL,
    code     TEXT    NOT NULL
);
CREATE INDEX idx_token_lookup ON idx_token (res_type, param, code, system, seq);
CREATE INDEX idx_token_system ON idx_token (res_type, param, system, seq);

CREATE TABLE idx_string (
    seq      INTEGER NOT NULL,
    res_type TEXT    NOT NULL,
    param    TEXT    NOT NULL,
    value    TEXT    NOT NULL,   -- normalised (lower case, trimmed)
    exact    TEXT    NOT NULL    -- as written, for :exact
);
CREATE INDEX idx_string_lookup ON idx_string (res_type, param, value, seq);

CREATE TABLE idx_date (
    seq      INTEGER NOT NULL,
    res_type TEXT    NOT NULL,
    param    TEXT    NOT NULL,
    lo       INTEGER NOT NULL,   -- range start, microseconds (inclusive)
    hi       INTEGER NOT NULL    -- range end, microseconds (exclusive)
);
CREATE INDEX idx_date_lookup ON idx_date (res_type, param, lo, seq);

CREATE TABLE idx_reference (
    seq      INTEGER NOT NULL,
    res_type TEXT    NOT NULL,
    param    TEXT    NOT NULL,
    target   TEXT    NOT NULL    -- Type/id
);
CREATE INDEX idx_reference_lookup ON idx_reference (res_type, param, target, seq);
CREATE INDEX idx_reference_seq ON idx_reference (seq);

-- Which patients' compartments each version belongs to (the sync feed and access policy
-- read it).
CREATE TABLE compartment (
    seq        INTEGER NOT NULL,
    patient_id TEXT    NOT NULL
);
CREATE INDEX compartment_patient ON compartment (patient_id, seq);
CREATE INDEX compartment_seq ON compartment (seq);
