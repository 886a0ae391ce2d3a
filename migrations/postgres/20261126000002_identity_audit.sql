-- Staff accounts: a sign-in name bound to a PractitionerRole. Passphrases are stored only
-- as slow salted hashes (PBKDF2-HMAC-SHA256, iterations and salt in the stored string).
CREATE TABLE account (
    username             TEXT    PRIMARY KEY,
    practitioner_role_id TEXT    NOT NULL,
    password_hash        TEXT    NOT NULL,
    failed_attempts      BIGINT  NOT NULL DEFAULT 0,
    locked_until         BIGINT  NOT NULL DEFAULT 0,   -- microseconds; 0: not locked
    revoked_at           BIGINT                         -- set: the account is revoked
);

-- Registered desktop devices: an Ed25519 public key per device, for one user.
CREATE TABLE device (
    device_id     TEXT    PRIMARY KEY,
    username      TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    public_key    TEXT    NOT NULL,   -- base64url, 32 bytes
    registered_at BIGINT  NOT NULL,
    revoked_at    BIGINT
);

-- Issued tokens, by the SHA-256 of the token: a token itself is never stored.
CREATE TABLE token (
    token_hash TEXT    PRIMARY KEY,
    kind       TEXT    NOT NULL,      -- access | refresh
    username   TEXT    NOT NULL,
    device_id  TEXT,                  -- set: the token is bound to this device
    expires_at BIGINT  NOT NULL,
    revoked    BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX token_user ON token (username);

-- One-time challenges a device signs to prove it holds its key.
CREATE TABLE device_challenge (
    nonce      TEXT    PRIMARY KEY,
    device_id  TEXT    NOT NULL,
    expires_at BIGINT  NOT NULL
);

-- The audit trail: append-only, each row chained to the one before by hash, so that a
-- changed or removed row is detected (`careshare-hub audit verify`).
CREATE TABLE audit_log (
    seq         BIGINT PRIMARY KEY,
    recorded    BIGINT  NOT NULL,
    username    TEXT,
    patient_id  TEXT,
    action      TEXT    NOT NULL,
    outcome     TEXT    NOT NULL,
    purpose     TEXT,
    content     TEXT    NOT NULL,   -- the FHIR AuditEvent
    prev_hash   TEXT    NOT NULL,
    hash        TEXT    NOT NULL
);
CREATE INDEX audit_patient ON audit_log (patient_id, seq);
CREATE INDEX audit_user ON audit_log (username, seq);
