-- Emergency access grants: time-limited, with the reason given, each flagged for the
-- privacy officer until reviewed.
CREATE TABLE break_glass (
    grant_id       TEXT    PRIMARY KEY,
    username       TEXT    NOT NULL,
    patient_id     TEXT    NOT NULL,
    reason         TEXT    NOT NULL,
    granted_at     INTEGER NOT NULL,   -- microseconds
    expires_at     INTEGER NOT NULL,
    reviewed_by    TEXT,
    reviewed_at    INTEGER,
    review_outcome TEXT
);
CREATE INDEX break_glass_user ON break_glass (username, patient_id);
CREATE INDEX break_glass_unreviewed ON break_glass (reviewed_at, granted_at);
