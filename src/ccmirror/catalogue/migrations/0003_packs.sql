-- Packs (DESIGN §6). A sealed pack never changes; obsolete packs stay recorded.
CREATE TABLE packs (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,                   -- <mirror>-t<tier>-<seq:04d>
    tier INTEGER NOT NULL,                       -- 1 = most popular; 0 for the metadata torrent
    seq INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'sealed')),
    is_metadata INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    sealed_at TEXT,
    creation_date INTEGER,                       -- unix time written into the torrent
    format TEXT,                                 -- v1 | hybrid | v2
    piece_size INTEGER,
    info_hash_v1 TEXT,                           -- hex
    info_hash_v2 TEXT,                           -- hex (full sha256)
    torrent_path TEXT,                           -- relative to the data dir
    torrent_size INTEGER,
    num_files INTEGER,                           -- audio + ATTRIBUTION.md + MANIFEST.csv
    data_size INTEGER,
    popularity REAL NOT NULL DEFAULT 0,          -- sum over its items' files' share basis
    obsolete INTEGER NOT NULL DEFAULT 0,
    obsolete_reason TEXT,
    UNIQUE (tier, seq, is_metadata)
);

-- Which files a pack holds, at which path inside the torrent (<source>/<item>/<file>).
CREATE TABLE pack_files (
    pack_id INTEGER NOT NULL REFERENCES packs (id),
    file_id INTEGER NOT NULL REFERENCES files (id),
    path TEXT NOT NULL,
    PRIMARY KEY (pack_id, file_id)
);
CREATE INDEX pack_files_file ON pack_files (file_id);

-- The tier an item was first packed in; it stays there (sealed packs never reshuffle).
ALTER TABLE items ADD COLUMN tier INTEGER;
