-- Licence verdicts (DESIGN §5): evidence and reason per file, identifiers from tags.
-- Pinned columns (other modules read them): verdict_reason, evidence, isrc, mbid, checked_at.
ALTER TABLE files ADD COLUMN verdict_reason TEXT;
ALTER TABLE files ADD COLUMN evidence TEXT NOT NULL DEFAULT '[]';   -- JSON [{"tag", "value"}]
ALTER TABLE files ADD COLUMN isrc TEXT;
ALTER TABLE files ADD COLUMN mbid TEXT;                               -- MusicBrainz recording id
ALTER TABLE files ADD COLUMN checked_at TEXT;
