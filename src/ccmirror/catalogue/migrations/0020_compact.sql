-- Compact tiers (DESIGN §6): lawful format-shifted copies of recordings in the long tail.
-- A copy is a file row of its own (origin 'compact'): fetched or made, verified, judged and
-- packed like any file. `copy_of` names the original it was made from.
ALTER TABLE files ADD COLUMN copy_of INTEGER REFERENCES files (id);
-- How the copy was made: "opusenc --bitrate 96 --vbr (opus-tools 0.2, libopus 1.3.1)",
-- "Internet Archive derivative (VBR MP3)".
ALTER TABLE files ADD COLUMN encoder TEXT;
-- On an original, what its compact tier did with it: 'copied' (a verified copy took its
-- place; its bytes left the store, store_path NULL, checksums kept), 'derivative' (the
-- source's smaller lossy derivative is fetched instead), 'kept' (already lossy at or
-- under the bitrate: packed as it is), 'original' (its licence does not permit format
-- shifting, or no decoder reads it: packed as it is). NULL: not decided.
ALTER TABLE files ADD COLUMN compact TEXT;
ALTER TABLE files ADD COLUMN compact_reason TEXT;
-- Playing time in seconds, where the source says it (IA `length`) or once decoded:
-- a compact copy's size is estimated from it before it is made.
ALTER TABLE files ADD COLUMN duration REAL;
CREATE INDEX files_copy_of ON files (copy_of) WHERE copy_of IS NOT NULL;

-- IA's own lossy derivatives of an original (Ogg Vorbis, VBR MP3), as the item lists them
-- with their checksums: a compact tier fetches one instead of the original when smaller.
CREATE TABLE derivatives (
    file_id INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    format TEXT NOT NULL,
    size INTEGER,
    md5 TEXT,
    sha1 TEXT,
    url TEXT NOT NULL,
    PRIMARY KEY (file_id, name)
);
