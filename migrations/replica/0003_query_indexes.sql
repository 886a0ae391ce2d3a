-- Careshare encrypted local replica, schema version 3: the screens' queries.
--
-- The patient summary and the caseload read one patient's records by type (alerts,
-- allergies, medicines, observations…), the latest first; `clinical_time` is the record's
-- own time (an observation's effective time, a document's date…), kept in a column so that
-- "the latest 50 observations" is an index range, not a scan of every observation.
ALTER TABLE resource ADD COLUMN clinical_time TEXT;
CREATE INDEX resource_by_patient_type ON resource (patient_id, resource_type, clinical_time);
