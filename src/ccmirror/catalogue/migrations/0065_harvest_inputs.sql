-- The whole-input skip of a re-harvest (catalogue/harvest_inputs.py): per source kind,
-- the key of the inputs of its last harvest that COMPLETED with the catalogue then in a
-- steady state, and the counts that harvest reported. A harvest whose inputs have the
-- same key reports those counts without reading a row. Recorded only at the end of a
-- complete harvest; deleted when a harvest starts its row pass (a killed one leaves none).
CREATE TABLE harvest_inputs (
    source TEXT PRIMARY KEY,          -- items.source
    input_key TEXT NOT NULL,          -- digest of metadata, audio, policy, code, schema
    result TEXT NOT NULL,             -- the harvest's counts (JSON)
    harvested_at TEXT NOT NULL
);

-- Any write that could make the same inputs give another catalogue or other counts
-- forgets the source's record: its items (a takedown, a hand edit: the harvest-owned
-- columns, the fingerprint, status and reason), an item's first file (its size is in
-- the counts) appearing, moving or going. Each trigger does nothing while no record
-- exists (a harvest's own row pass: the first harvest's inserts pay one probe of an
-- empty table).
CREATE TRIGGER harvest_inputs_item_new AFTER INSERT ON items
WHEN EXISTS (SELECT 1 FROM harvest_inputs)
BEGIN
    DELETE FROM harvest_inputs WHERE source = NEW.source;
END;

CREATE TRIGGER harvest_inputs_item_edit
AFTER UPDATE OF source, source_id, title, creator, album, date, source_url, licence_url,
    licence_title, declared_licence_id, popularity, extra, status, reason, fingerprint
ON items
WHEN EXISTS (SELECT 1 FROM harvest_inputs)
BEGIN
    DELETE FROM harvest_inputs WHERE source IN (OLD.source, NEW.source);
END;

CREATE TRIGGER harvest_inputs_item_gone AFTER DELETE ON items
WHEN EXISTS (SELECT 1 FROM harvest_inputs)
BEGIN
    DELETE FROM harvest_inputs WHERE source = OLD.source;
END;

CREATE TRIGGER harvest_inputs_file_new AFTER INSERT ON files
WHEN EXISTS (SELECT 1 FROM harvest_inputs)
    AND NOT EXISTS (SELECT 1 FROM files WHERE item_id = NEW.item_id AND id < NEW.id)
BEGIN
    DELETE FROM harvest_inputs WHERE source = (SELECT source FROM items WHERE id = NEW.item_id);
END;

CREATE TRIGGER harvest_inputs_file_edit AFTER UPDATE OF item_id, size ON files
WHEN EXISTS (SELECT 1 FROM harvest_inputs)
    AND (NEW.item_id IS NOT OLD.item_id OR NEW.size IS NOT OLD.size)
BEGIN
    DELETE FROM harvest_inputs
    WHERE source IN (SELECT source FROM items WHERE id IN (OLD.item_id, NEW.item_id));
END;

CREATE TRIGGER harvest_inputs_file_gone AFTER DELETE ON files
WHEN EXISTS (SELECT 1 FROM harvest_inputs)
BEGIN
    DELETE FROM harvest_inputs WHERE source = (SELECT source FROM items WHERE id = OLD.item_id);
END;
