"""Sources (DESIGN §1 harvest): one module per `kind`, named in `sources.registry`, each
exposing a `Harvester`:

    harvest_source(mirror, source, *, workers, reporter) -> dict

adds or updates the source's items and files in the catalogue and returns counts
(`registry.harvest_counts()` filled in; see ccmirror.harvest for the sum). Files record in
`files.url` where their bytes come from (http(s)://, file://, or zip://<abs path of a
zip>#<member>) for ccmirror.fetch. This module imports nothing: the manifest and the
catalogue read the registry without loading a harvester.
"""
