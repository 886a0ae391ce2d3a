-- Careshare encrypted local replica, schema version 4: the directory.
--
-- Organisations (and the user's own PractitionerRole) as the hub last gave them, so that
-- the app names who wrote each entry ("Hexham General Hospital") offline too. They belong
-- to no patient and are replaced wholesale at each refresh.
CREATE TABLE directory (
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    content       TEXT NOT NULL,
    PRIMARY KEY (resource_type, resource_id)
);
