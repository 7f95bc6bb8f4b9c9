"""Sources (DESIGN §1 harvest): one module per `kind`, each exposing `harvest_source`.

    harvest_source(mirror, source, *, workers, reporter) -> dict

adds or updates the source's items and files in the catalogue and returns counts
(see ccmirror.harvest for the shape). Files record in `files.url` where their bytes
come from (http(s)://, file://, or zip://<abs path of a zip>#<member>) for ccmirror.fetch.
"""
