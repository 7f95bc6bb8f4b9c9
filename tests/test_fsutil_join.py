"""safe_join's short walk: one lstat per part below the base, the full check on a link."""

from __future__ import annotations

import os

import pytest

from ccmirror import fsutil
from ccmirror.errors import UnsafeName
from ccmirror.fsutil import safe_join


def test_a_link_at_any_depth_leading_outside_is_refused(tmp_path):
    base = tmp_path / "data"
    (base / "store/ia/item").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, base / "store/ia/item/track.flac")  # the last part
    os.symlink(outside, base / "store/ia/linked")  # a middle part
    os.symlink(outside, base / "quarantine")  # the first part
    for rel in ("store/ia/item/track.flac", "store/ia/linked/x.flac", "quarantine/ia/x"):
        with pytest.raises(UnsafeName):
            safe_join(base, rel)


def test_a_link_that_stays_inside_is_followed_and_plain_paths_need_no_realpath(
    tmp_path, monkeypatch
):
    base = tmp_path / "data"
    (base / "store/ia/item").mkdir(parents=True)
    os.symlink(base / "store/ia/item", base / "store/ia/alias")
    assert safe_join(base, "store/ia/alias/x.flac") == base / "store/ia/alias/x.flac"
    calls = []
    monkeypatch.setattr(fsutil.os.path, "realpath", lambda p: calls.append(p) or p)
    assert safe_join(base, "store/ia/item/new/x.flac") == base / "store/ia/item/new/x.flac"
    assert calls == []  # no link below the base: resolving it cannot lead elsewhere
    with pytest.raises(UnsafeName):
        safe_join(base, "store/../../x")  # names are still validated first
