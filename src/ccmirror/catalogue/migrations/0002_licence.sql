-- Licence verdicts (DESIGN §5): evidence and reason per file, identifiers from tags.
-- Pinned columns (other modules read them): verdict_reason, evidence, isrc, mbid, checked_at.
ALTER TABLE files ADD COLUMN verdict_reason TEXT;
ALTER TABLE files ADD COLUMN evidence TEXT NOT NULL DEFAULT '[]';   -- JSON [{"tag", "value"}]
ALTER TABLE files ADD COLUMN isrc TEXT;
ALTER TABLE files ADD COLUMN mbid TEXT;                               -- MusicBrainz recording id
ALTER TABLE files ADD COLUMN checked_at TEXT;
-- What `check` saw when it judged a file, so an unchanged file is not read again:
-- its size and mtime, and a key of the declared licence + policy the verdict rests on.
ALTER TABLE files ADD COLUMN checked_size INTEGER;
ALTER TABLE files ADD COLUMN checked_mtime_ns INTEGER;
ALTER TABLE files ADD COLUMN checked_key TEXT;
-- Where a conflict or unreadable file's bytes went (relative to the data dir); NULL if in store.
ALTER TABLE files ADD COLUMN quarantine_path TEXT;
