-- A file's own title as its source lists it (IA file metadata `title`), when it gives one:
-- ATTRIBUTION.md credits each recording of an album item by it.
ALTER TABLE files ADD COLUMN title TEXT;
