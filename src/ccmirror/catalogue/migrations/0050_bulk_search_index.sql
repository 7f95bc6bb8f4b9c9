-- Bulk loads (the FMA harvest: a million tracks) write the search index once per batch,
-- set-based, instead of row by row from triggers (per-row FTS5 inserts cost ~5x more,
-- and an item's row was written twice: once with its item, again with its file).
-- One definition of each index row, for the triggers and the bulk loader alike:
CREATE VIEW items_fts_rows (item_id, title, creator, album, identifiers, recording) AS
SELECT i.id, coalesce(i.title, ''), coalesce(i.creator, ''), coalesce(i.album, ''),
       i.source || ':' || i.source_id || ' ' || i.source_id || ' ' ||
       coalesce((SELECT group_concat(coalesce(isrc, '') || ' ' || coalesce(mbid, ''), ' ')
                 FROM files WHERE item_id = i.id), ''),
       coalesce((SELECT group_concat(
           coalesce(artists, '') || ' ' || coalesce(genres, '') || ' ' ||
           coalesce(composer, '') || ' ' || coalesce(lyricist, '') || ' ' ||
           coalesce(producer, '') || ' ' || coalesce(engineer, '') || ' ' ||
           coalesce(publisher, ''), ' ')
         FROM files WHERE item_id = i.id), '')
FROM items AS i;

CREATE VIEW files_fts_rows (file_id, name, title, item_id) AS
SELECT id, name, coalesce(title, ''), item_id FROM files;

-- A row here, written and deleted inside the bulk loader's own transaction (no other
-- connection ever sees it; a crash rolls it back), tells the insert triggers to stand
-- aside: the loader then inserts the batch's index rows from the views above.
CREATE TABLE bulk_load (id INTEGER PRIMARY KEY);

DROP TRIGGER items_fts_insert;
DROP TRIGGER items_fts_update;
DROP TRIGGER items_fts_file_ids;
DROP TRIGGER items_fts_file_insert;
DROP TRIGGER files_fts_insert;
DROP TRIGGER files_fts_update;

CREATE TRIGGER items_fts_insert AFTER INSERT ON items
WHEN NOT EXISTS (SELECT 1 FROM bulk_load)
BEGIN
    INSERT INTO items_fts (rowid, title, creator, album, identifiers, recording)
    SELECT * FROM items_fts_rows WHERE item_id = new.id;
END;

CREATE TRIGGER items_fts_update AFTER UPDATE OF title, creator, album, source, source_id
ON items BEGIN
    DELETE FROM items_fts WHERE rowid = new.id;
    INSERT INTO items_fts (rowid, title, creator, album, identifiers, recording)
    SELECT * FROM items_fts_rows WHERE item_id = new.id;
END;

CREATE TRIGGER items_fts_file_ids AFTER UPDATE OF isrc, mbid, artists, genres, composer,
    lyricist, producer, engineer, publisher ON files
WHEN coalesce(new.isrc, '') != coalesce(old.isrc, '')
  OR coalesce(new.mbid, '') != coalesce(old.mbid, '')
  OR coalesce(new.artists, '') != coalesce(old.artists, '')
  OR coalesce(new.genres, '') != coalesce(old.genres, '')
  OR coalesce(new.composer, '') != coalesce(old.composer, '')
  OR coalesce(new.lyricist, '') != coalesce(old.lyricist, '')
  OR coalesce(new.producer, '') != coalesce(old.producer, '')
  OR coalesce(new.engineer, '') != coalesce(old.engineer, '')
  OR coalesce(new.publisher, '') != coalesce(old.publisher, '')
BEGIN
    DELETE FROM items_fts WHERE rowid = new.item_id;
    INSERT INTO items_fts (rowid, title, creator, album, identifiers, recording)
    SELECT * FROM items_fts_rows WHERE item_id = new.item_id;
END;

CREATE TRIGGER items_fts_file_insert AFTER INSERT ON files
WHEN (new.isrc IS NOT NULL OR new.mbid IS NOT NULL OR new.artists IS NOT NULL
  OR new.genres IS NOT NULL OR new.composer IS NOT NULL OR new.publisher IS NOT NULL)
  AND NOT EXISTS (SELECT 1 FROM bulk_load)
BEGIN
    DELETE FROM items_fts WHERE rowid = new.item_id;
    INSERT INTO items_fts (rowid, title, creator, album, identifiers, recording)
    SELECT * FROM items_fts_rows WHERE item_id = new.item_id;
END;

CREATE TRIGGER files_fts_insert AFTER INSERT ON files
WHEN NOT EXISTS (SELECT 1 FROM bulk_load)
BEGIN
    INSERT INTO files_fts (rowid, name, title, item_id)
    SELECT * FROM files_fts_rows WHERE file_id = new.id;
END;

CREATE TRIGGER files_fts_update AFTER UPDATE OF name, title ON files
WHEN new.name IS NOT old.name OR new.title IS NOT old.title
BEGIN
    DELETE FROM files_fts WHERE rowid = old.id;
    INSERT INTO files_fts (rowid, name, title, item_id)
    SELECT * FROM files_fts_rows WHERE file_id = new.id;
END;
