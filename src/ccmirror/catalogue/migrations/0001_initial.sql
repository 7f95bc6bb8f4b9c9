-- Items (an IA item, an FMA track) and their files.
CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL CHECK (source IN ('ia', 'fma')),
    source_id TEXT NOT NULL,
    title TEXT,
    creator TEXT,
    album TEXT,
    date TEXT,
    collections TEXT NOT NULL DEFAULT '[]',      -- JSON list
    source_url TEXT,                             -- the item's public page (attribution)
    licence_url TEXT,                            -- as the source declares it
    licence_title TEXT,
    declared_licence_id TEXT,                    -- normalised id of the declared licence
    downloads INTEGER NOT NULL DEFAULT 0,
    downloads_month INTEGER NOT NULL DEFAULT 0,
    downloads_week INTEGER NOT NULL DEFAULT 0,
    popularity REAL NOT NULL DEFAULT 0,          -- ranking key: IA downloads, FMA listens
    extra TEXT NOT NULL DEFAULT '{}',            -- JSON, source-specific
    source_updated TEXT,                         -- the source's last-update stamp
    status TEXT NOT NULL DEFAULT 'ok'
        CHECK (status IN ('ok', 'refused', 'dark', 'empty', 'withdrawn')),
    reason TEXT,
    first_seen TEXT NOT NULL,
    harvested_at TEXT NOT NULL,
    UNIQUE (source, source_id)
);
CREATE INDEX items_rank ON items (source, popularity DESC, source_id);

CREATE TABLE files (
    id INTEGER PRIMARY KEY,
    item_id INTEGER NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    size INTEGER,
    md5 TEXT,
    sha1 TEXT,
    sha256 TEXT,
    format TEXT,
    origin TEXT NOT NULL DEFAULT 'original',     -- original | derivative
    url TEXT,                                    -- where the bytes come from
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'fetched', 'failed', 'refused')),
    reason TEXT,
    store_path TEXT,                             -- relative to the data dir
    fetched_at TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    verdict TEXT,                                -- DESIGN §5; NULL until checked
    licence_id TEXT,
    licence_url TEXT,
    UNIQUE (item_id, name)
);
CREATE INDEX files_status ON files (status);
CREATE INDEX files_verdict ON files (verdict);
