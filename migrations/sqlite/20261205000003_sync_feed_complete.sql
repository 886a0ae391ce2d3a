-- A large refresh of a device's feed is written in several transactions, so that the
-- device can take its first pages while the rest is written. Until the last of them
-- commits the device's row says so (0): should the writing stop half-way, the next
-- refresh decides every patient the user may see again against what the device was sent.
ALTER TABLE sync_device ADD COLUMN complete INTEGER NOT NULL DEFAULT 1;
