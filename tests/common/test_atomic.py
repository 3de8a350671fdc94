"""``_common.atomic``: the file is the old one or the complete new one."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from _common.atomic import atomic_path, write_json, write_text


def test_success_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "figure.png"  # missing parent folder is created
    with atomic_path(target) as tmp:
        assert tmp.endswith(".png") and os.path.dirname(tmp) == str(target.parent)
        with open(tmp, "wb") as f:
            f.write(b"new")
        assert not target.exists()  # nothing visible before the body ends
    assert target.read_bytes() == b"new"
    assert os.listdir(target.parent) == ["figure.png"]


def test_failure_keeps_old_file_and_removes_temp(tmp_path):
    target = tmp_path / "report.md"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="crash"), atomic_path(target) as tmp:
        with open(tmp, "w") as f:
            f.write("half")
        raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["report.md"]


@given(st.text(), st.dictionaries(st.text(max_size=5), st.integers() | st.floats(allow_nan=False)))
def test_text_and_json_round_trip(tmp_path_factory, text, payload):
    folder = tmp_path_factory.mktemp("atomic")
    write_text(folder / "a.txt", text)
    with open(folder / "a.txt", encoding="utf-8", newline="") as f:
        assert f.read() == text
    write_json(folder / "b.json", payload)
    assert json.loads((folder / "b.json").read_text()) == payload
    assert sorted(os.listdir(folder)) == ["a.txt", "b.json"]
