-- Per-recording metadata (issue 18): what the sources say about each recording, and where
-- they are silent, what the file's own tags and stream say (filled by check). Title (files
-- .title, items.title), creator, album, date, ISRC, MusicBrainz id and duration (0020)
-- exist already. Lists are JSON lists of strings; a genre list the source gave in a shape
-- that does not parse is kept as the source's text.
ALTER TABLE files ADD COLUMN artists TEXT;        -- JSON list
ALTER TABLE files ADD COLUMN track TEXT;          -- track number as given ("3", "3/12")
ALTER TABLE files ADD COLUMN genres TEXT;         -- JSON list, or the source's text
ALTER TABLE files ADD COLUMN composer TEXT;
ALTER TABLE files ADD COLUMN lyricist TEXT;
ALTER TABLE files ADD COLUMN producer TEXT;
ALTER TABLE files ADD COLUMN engineer TEXT;
ALTER TABLE files ADD COLUMN publisher TEXT;      -- publisher or label
ALTER TABLE files ADD COLUMN release_date TEXT;   -- ISO 8601 (a year, a date, a stamp)
ALTER TABLE files ADD COLUMN codec TEXT;          -- from the stream, at check
ALTER TABLE files ADD COLUMN bit_rate INTEGER;    -- bits per second
ALTER TABLE files ADD COLUMN sample_rate INTEGER; -- Hz
ALTER TABLE files ADD COLUMN channels INTEGER;
-- The MANIFEST.csv columns a pack was sealed with (JSON list). NULL: sealed before this
-- migration, with the columns of that time; a rebuild writes exactly those again.
ALTER TABLE packs ADD COLUMN manifest_columns TEXT;
