-- Publishing (issue 7): full-text search over the catalogue and the takedown record.

-- One row per item (rowid = items.id). `identifiers` holds "<source>:<id>", the bare id
-- and the files' ISRCs and MusicBrainz ids, so any of them finds the item.
CREATE VIRTUAL TABLE items_fts USING fts5 (
    title, creator, album, identifiers,
    tokenize = 'unicode61 remove_diacritics 2'
);

-- The row for one item, rebuilt whole: cheaper to reason about than partial updates.
CREATE TRIGGER items_fts_insert AFTER INSERT ON items BEGIN
    INSERT INTO items_fts (rowid, title, creator, album, identifiers)
    VALUES (new.id, coalesce(new.title, ''), coalesce(new.creator, ''), coalesce(new.album, ''),
            new.source || ':' || new.source_id || ' ' || new.source_id);
END;

CREATE TRIGGER items_fts_update AFTER UPDATE OF title, creator, album, source, source_id
ON items BEGIN
    DELETE FROM items_fts WHERE rowid = old.id;
    INSERT INTO items_fts (rowid, title, creator, album, identifiers)
    SELECT new.id, coalesce(new.title, ''), coalesce(new.creator, ''), coalesce(new.album, ''),
           new.source || ':' || new.source_id || ' ' || new.source_id || ' ' ||
           coalesce((SELECT group_concat(coalesce(isrc, '') || ' ' || coalesce(mbid, ''), ' ')
                     FROM files WHERE item_id = new.id), '');
END;

CREATE TRIGGER items_fts_delete AFTER DELETE ON items BEGIN
    DELETE FROM items_fts WHERE rowid = old.id;
END;

-- ISRCs and MusicBrainz ids arrive with the licence check, on files.
CREATE TRIGGER items_fts_file_ids AFTER UPDATE OF isrc, mbid ON files
WHEN coalesce(new.isrc, '') != coalesce(old.isrc, '')
  OR coalesce(new.mbid, '') != coalesce(old.mbid, '')
BEGIN
    DELETE FROM items_fts WHERE rowid = new.item_id;
    INSERT INTO items_fts (rowid, title, creator, album, identifiers)
    SELECT i.id, coalesce(i.title, ''), coalesce(i.creator, ''), coalesce(i.album, ''),
           i.source || ':' || i.source_id || ' ' || i.source_id || ' ' ||
           coalesce((SELECT group_concat(coalesce(isrc, '') || ' ' || coalesce(mbid, ''), ' ')
                     FROM files WHERE item_id = i.id), '')
    FROM items AS i WHERE i.id = new.item_id;
END;

CREATE TRIGGER items_fts_file_insert AFTER INSERT ON files
WHEN new.isrc IS NOT NULL OR new.mbid IS NOT NULL
BEGIN
    DELETE FROM items_fts WHERE rowid = new.item_id;
    INSERT INTO items_fts (rowid, title, creator, album, identifiers)
    SELECT i.id, coalesce(i.title, ''), coalesce(i.creator, ''), coalesce(i.album, ''),
           i.source || ':' || i.source_id || ' ' || i.source_id || ' ' ||
           coalesce((SELECT group_concat(coalesce(isrc, '') || ' ' || coalesce(mbid, ''), ' ')
                     FROM files WHERE item_id = i.id), '')
    FROM items AS i WHERE i.id = new.item_id;
END;

-- Mirrors that existed before this migration.
INSERT INTO items_fts (rowid, title, creator, album, identifiers)
SELECT i.id, coalesce(i.title, ''), coalesce(i.creator, ''), coalesce(i.album, ''),
       i.source || ':' || i.source_id || ' ' || i.source_id || ' ' ||
       coalesce((SELECT group_concat(coalesce(isrc, '') || ' ' || coalesce(mbid, ''), ' ')
                 FROM files WHERE item_id = i.id), '')
FROM items AS i;

-- Takedowns: one row per withdrawn item; public/withdrawn.json is written from this table.
CREATE TABLE withdrawals (
    id INTEGER PRIMARY KEY,
    item_id INTEGER NOT NULL UNIQUE REFERENCES items (id),
    source TEXT NOT NULL,
    source_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    withdrawn_at TEXT NOT NULL,
    previous_status TEXT NOT NULL,
    files_removed INTEGER NOT NULL DEFAULT 0,   -- store and payload copies deleted so far
    packs_obsoleted TEXT NOT NULL DEFAULT '[]'  -- JSON list of pack names
);
