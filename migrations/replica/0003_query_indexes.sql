-- Careshare encrypted local replica, schema version 3: the screens' queries.
--
-- The patient summary and the caseload read one patient's records by type (alerts,
-- allergies, medicines, observations…); without this index each such read scans every
-- record of the patient.
CREATE INDEX resource_by_patient_type ON resource (patient_id, resource_type);
