-- Cover art (issue 18): an IA item's original JPEG/PNG images are files of the item, under
-- its licence, fetched, verified, judged and packed beside its audio. `kind` tells them
-- apart: 'audio' (every row before this migration) or 'artwork'.
ALTER TABLE files ADD COLUMN kind TEXT NOT NULL DEFAULT 'audio'
    CHECK (kind IN ('audio', 'artwork'));
CREATE INDEX files_artwork ON files (item_id) WHERE kind = 'artwork';
