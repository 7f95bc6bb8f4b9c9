-- search (issue 18): genre, artists, composer, lyricist, producer, engineer and label
-- as words. FTS5 tables take no new columns: the index is made again with a `recording`
-- column (the files' per-recording metadata, 0030; JSON list brackets and quotes are not
-- words to the tokenizer), its triggers with it, and refilled from the catalogue.
DROP TRIGGER IF EXISTS items_fts_insert;
DROP TRIGGER IF EXISTS items_fts_update;
DROP TRIGGER IF EXISTS items_fts_delete;
DROP TRIGGER IF EXISTS items_fts_file_ids;
DROP TRIGGER IF EXISTS items_fts_file_insert;
DROP TABLE IF EXISTS items_fts;

CREATE VIRTUAL TABLE items_fts USING fts5 (
    title, creator, album, identifiers, recording,
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER items_fts_insert AFTER INSERT ON items BEGIN
    INSERT INTO items_fts (rowid, title, creator, album, identifiers, recording)
    VALUES (new.id, coalesce(new.title, ''), coalesce(new.creator, ''), coalesce(new.album, ''),
            new.source || ':' || new.source_id || ' ' || new.source_id, '');
END;

CREATE TRIGGER items_fts_update AFTER UPDATE OF title, creator, album, source, source_id
ON items BEGIN
    DELETE FROM items_fts WHERE rowid = new.id;
    INSERT INTO items_fts (rowid, title, creator, album, identifiers, recording)
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
    FROM items AS i WHERE i.id = new.id;
END;

CREATE TRIGGER items_fts_delete AFTER DELETE ON items BEGIN
    DELETE FROM items_fts WHERE rowid = old.id;
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
    FROM items AS i WHERE i.id = new.item_id;
END;

CREATE TRIGGER items_fts_file_insert AFTER INSERT ON files
WHEN new.isrc IS NOT NULL OR new.mbid IS NOT NULL OR new.artists IS NOT NULL
  OR new.genres IS NOT NULL OR new.composer IS NOT NULL OR new.publisher IS NOT NULL
BEGIN
    DELETE FROM items_fts WHERE rowid = new.item_id;
    INSERT INTO items_fts (rowid, title, creator, album, identifiers, recording)
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
    FROM items AS i WHERE i.id = new.item_id;
END;

INSERT INTO items_fts (rowid, title, creator, album, identifiers, recording)
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
