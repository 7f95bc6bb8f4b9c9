-- FMA harvest: a compact fingerprint of the dataset row, audio and licence policy that
-- made an item (16 hex digits); a later harvest skips a row whose fingerprint is equal.
ALTER TABLE items ADD COLUMN fingerprint TEXT;
-- Any other write to a column the harvest owns (a takedown, a hand edit) voids the
-- fingerprint, so the next harvest plans that row again instead of trusting it.
CREATE TRIGGER items_fingerprint_void
AFTER UPDATE OF title, creator, album, date, source_url, licence_url, licence_title,
    declared_licence_id, popularity, extra, status, reason ON items
WHEN OLD.fingerprint IS NOT NULL AND NEW.fingerprint IS OLD.fingerprint
BEGIN
    UPDATE items SET fingerprint = NULL WHERE id = NEW.id;
END;
