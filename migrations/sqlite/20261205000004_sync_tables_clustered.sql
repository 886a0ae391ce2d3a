-- The sync feed and the hub's view of each replica, stored in their keys' order: a first
-- sync writes tens of thousands of rows to each, and a table without rowids is one B-tree
-- per row instead of a table and its key's index.
CREATE TABLE sync_feed_by_key (
    device_id   TEXT    NOT NULL,
    seq         INTEGER  NOT NULL,
    kind        TEXT    NOT NULL,
    res_type    TEXT,
    res_id      TEXT,
    version_seq INTEGER,
    patient_id  TEXT,
    reason      TEXT,
    PRIMARY KEY (device_id, seq)
) WITHOUT ROWID;
INSERT INTO sync_feed_by_key
    SELECT device_id, seq, kind, res_type, res_id, version_seq, patient_id, reason FROM sync_feed;
DROP TABLE sync_feed;
ALTER TABLE sync_feed_by_key RENAME TO sync_feed;

CREATE TABLE sync_sent_by_key (
    device_id   TEXT    NOT NULL,
    res_type    TEXT    NOT NULL,
    res_id      TEXT    NOT NULL,
    version     INTEGER  NOT NULL,
    patient_id  TEXT,
    PRIMARY KEY (device_id, res_type, res_id)
) WITHOUT ROWID;
INSERT INTO sync_sent_by_key
    SELECT device_id, res_type, res_id, version, patient_id FROM sync_sent;
DROP TABLE sync_sent;
ALTER TABLE sync_sent_by_key RENAME TO sync_sent;
CREATE INDEX sync_sent_patient ON sync_sent (device_id, patient_id);
