-- Careshare encrypted local replica, schema version 2: the device's identity
-- with the hub and the bookkeeping of sync.
--
-- Conventions used by the sync client (careshare-client):
--   * resource.patient_id = '' marks a resource that belongs to no patient
--     (a Practitioner, an Organization); such rows are never purged by patient
--     and have no freshness.
--   * outbox.edit holds the edited resource, or JSON null for a delete.
--   * conflict.ours / conflict.theirs hold JSON null for "deleted".

-- The device's identity with the hub. At most one row. The signing key and
-- the refresh token are secrets: they exist only here, inside the encrypted
-- database, never in a file beside it.
CREATE TABLE device (
    id                INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    hub_url           TEXT NOT NULL,
    username          TEXT NOT NULL,
    practitioner_role TEXT,             -- 'PractitionerRole/<id>' of the user, when known
    device_id         TEXT NOT NULL,    -- the hub's id of this device
    device_name       TEXT NOT NULL,
    signing_key       BLOB NOT NULL,    -- Ed25519 private key, PKCS#8 document
    refresh_token     TEXT,             -- current device-bound refresh token (spent on use)
    audit_sent_seq    INTEGER NOT NULL DEFAULT 0,  -- last audit_log.seq the hub holds
    audit_sent_hash   TEXT,             -- its hash
    enrolled_at       TEXT NOT NULL,
    last_sync_at      TEXT              -- end of the last complete sync
);

-- Why the hub refused an edit (state 'rejected'): its OperationOutcome JSON.
ALTER TABLE outbox ADD COLUMN outcome TEXT;
CREATE INDEX outbox_by_resource ON outbox (resource_type, resource_id);

-- What a person needs to resolve a conflict that came back from a push.
ALTER TABLE conflict ADD COLUMN client_edit_id  TEXT;  -- the edit that could not merge
ALTER TABLE conflict ADD COLUMN current_version TEXT;  -- hub's current version: the base of the resolution
ALTER TABLE conflict ADD COLUMN details         TEXT;  -- JSON: the elements that could not merge
