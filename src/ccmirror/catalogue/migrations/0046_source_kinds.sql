-- ccmirror: schema-edit
-- The source kinds the catalogue holds come from the registry (sources/registry.py):
-- connect() adds each registered kind to source_kinds, and two triggers refuse items of
-- any other kind. 0001's CHECK naming the kinds is dropped by editing the table's text
-- in sqlite_master (SQLite's documented way to remove a CHECK: the on-disk format does not
-- change, so no row is rewritten); db.migrate turns writable_schema on around this file,
-- then bumps schema_version, so other connections re-read the schema, and runs
-- quick_check before committing.
CREATE TABLE source_kinds (kind TEXT PRIMARY KEY) WITHOUT ROWID;
INSERT INTO source_kinds (kind) VALUES ('ia'), ('fma');  -- all 0001's CHECK allowed

UPDATE sqlite_master SET sql = replace(sql, ' CHECK (source IN (''ia'', ''fma''))', '')
WHERE type = 'table' AND name = 'items';

CREATE TRIGGER items_source_kind_insert BEFORE INSERT ON items
WHEN NEW.source NOT IN (SELECT kind FROM source_kinds)
BEGIN
    SELECT RAISE(ABORT, 'items.source: not a registered source kind');
END;
CREATE TRIGGER items_source_kind_update BEFORE UPDATE OF source ON items
WHEN NEW.source NOT IN (SELECT kind FROM source_kinds)
BEGIN
    SELECT RAISE(ABORT, 'items.source: not a registered source kind');
END;
