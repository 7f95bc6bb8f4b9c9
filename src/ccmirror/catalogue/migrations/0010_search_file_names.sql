-- Search (issue 11): a recording is also found by its file's name ("01 Opening.mp3", no
-- title tag) and by its file's own title. A separate FTS5 table, one row per file
-- (rowid = files.id), so the items' index (0005, 0031) stays as it is.
CREATE VIRTUAL TABLE files_fts USING fts5 (
    name, title, item_id UNINDEXED,
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER files_fts_insert AFTER INSERT ON files BEGIN
    INSERT INTO files_fts (rowid, name, title, item_id)
    VALUES (new.id, new.name, coalesce(new.title, ''), new.item_id);
END;

CREATE TRIGGER files_fts_update AFTER UPDATE OF name, title ON files
WHEN new.name IS NOT old.name OR new.title IS NOT old.title
BEGIN
    DELETE FROM files_fts WHERE rowid = old.id;
    INSERT INTO files_fts (rowid, name, title, item_id)
    VALUES (new.id, new.name, coalesce(new.title, ''), new.item_id);
END;

CREATE TRIGGER files_fts_delete AFTER DELETE ON files BEGIN
    DELETE FROM files_fts WHERE rowid = old.id;
END;

INSERT INTO files_fts (rowid, name, title, item_id)
SELECT id, name, coalesce(title, ''), item_id FROM files;
