-- The access facts of each version with content (its patients, kind, authoring
-- organisation and labels: careshare_policy::ResourceFacts::to_stored), worked out from its
-- JSON when the version is written, so that the sync feed decides on a record without
-- parsing it. Like the version, a row never changes. A version without a row (written
-- before this table, or not a readable resource) is decided from its JSON.
CREATE TABLE resource_facts (
    seq   INTEGER PRIMARY KEY,
    facts TEXT    NOT NULL
);
