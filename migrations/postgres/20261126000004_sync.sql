-- The sync feed: per registered device, the changes to send, in order. A device's
-- checkpoint is the seq of the last feed row it committed. Upserts name the version row
-- (resource_version.seq) whose immutable content is sent.
CREATE TABLE sync_device (
    device_id   TEXT    PRIMARY KEY,
    global_seq  BIGINT  NOT NULL,   -- the hub change sequence the feed is built up to
    feed_seq    BIGINT  NOT NULL,   -- the last seq in this device's feed
    subject     TEXT    NOT NULL,   -- the user's role, organisation and teams at that point
    patients    TEXT    NOT NULL    -- JSON array: the patients visible at that point
);

CREATE TABLE sync_feed (
    device_id   TEXT    NOT NULL,
    seq         BIGINT  NOT NULL,
    kind        TEXT    NOT NULL,   -- upsert | remove | purge
    res_type    TEXT,
    res_id      TEXT,
    version_seq BIGINT,             -- upsert: the resource_version row to send
    patient_id  TEXT,
    reason      TEXT,               -- remove | purge: why
    PRIMARY KEY (device_id, seq)
);

-- What each device was last sent (the feed's view of its replica): a removal is sent only
-- for what it holds, an unchanged version is never sent twice.
CREATE TABLE sync_sent (
    device_id   TEXT    NOT NULL,
    res_type    TEXT    NOT NULL,
    res_id      TEXT    NOT NULL,
    version     BIGINT  NOT NULL,
    patient_id  TEXT,
    PRIMARY KEY (device_id, res_type, res_id)
);
CREATE INDEX sync_sent_patient ON sync_sent (device_id, patient_id);

-- Pushed edits the hub applied, by the device's id for the edit: a re-sent edit is
-- answered from here and never applied twice. Written in the same transaction as the edit.
CREATE TABLE sync_edit (
    client_edit_id TEXT    PRIMARY KEY,
    device_id      TEXT    NOT NULL,
    version        BIGINT  NOT NULL,
    applied_at     BIGINT  NOT NULL
);

-- Where each device's uploaded offline audit chain stands.
CREATE TABLE sync_audit_head (
    device_id TEXT    PRIMARY KEY,
    next_seq  BIGINT  NOT NULL,
    head      TEXT    NOT NULL
);
