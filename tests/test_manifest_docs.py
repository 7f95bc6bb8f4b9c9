"""docs/manifest.md names exactly the keys the loader reads; its examples load."""

from __future__ import annotations

import re
from pathlib import Path

from ccmirror.manifest import load_manifest, recording_keys

DOCS = Path(__file__).resolve().parent.parent / "docs" / "manifest.md"


def _documented() -> set[str]:
    return set(re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|", DOCS.read_text("utf-8"), re.M))


def _examples() -> list[str]:
    return re.findall(r"^```toml\n(.*?)^```", DOCS.read_text("utf-8"), re.M | re.S)


def test_docs_name_exactly_the_keys_the_loader_reads(tmp_path):
    examples = _examples()
    assert len(examples) >= 3
    with recording_keys() as read:
        for n, text in enumerate(examples):
            path = tmp_path / f"example-{n}.toml"
            path.write_text(text, encoding="utf-8")
            load_manifest(path)  # every example is a valid manifest
    documented = _documented()
    assert len(documented) > 20
    assert read - documented == set(), "keys the loader reads that docs/manifest.md lacks"
    assert documented - read == set(), "keys docs/manifest.md names that the loader never reads"


def test_recording_sees_a_key_it_did_not_know(tmp_path):
    # The recorder is what the test above trusts: it records what is read, nothing else.
    path = tmp_path / "m.toml"
    path.write_text('[mirror]\nname = "x"\ndata_dir = "d"\n[[source]]\nkind = "ia"\nquery = "q"\n')
    with recording_keys() as read:
        load_manifest(path)
    assert {"mirror.name", "source.query", "torrents.pack_size"} <= read
    assert "source.metadata" not in read  # an fma key: never read for an ia source
    with recording_keys() as again:
        pass
    assert again == set()
