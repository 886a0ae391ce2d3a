-- The hub decides each pushed edit once: besides the version an applied edit made, it keeps
-- the answer it gave an edit it did not apply (a conflict or a rejection), and gives it
-- again to a re-sent edit, so a late or repeated request can never apply an edit the device
-- was told would not be applied.
ALTER TABLE sync_edit ADD COLUMN answer TEXT;
