-- A device's recovery key: 32 random bytes (base64url) made by the device at enrolment,
-- which seal a second copy of its replica's data key. The hub gives it back only to the
-- device's own user, signed in again with their passphrase, so that a replica locked
-- after too many wrong passphrases can be re-authorised; the device then replaces it.
-- It is kept in clear like the record itself, which this database already holds; it is
-- removed when the device is revoked.
ALTER TABLE device ADD COLUMN recovery_key TEXT;
