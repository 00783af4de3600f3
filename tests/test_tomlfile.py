"""Tests for the shared TOML reader (ivr.tomlfile) that every loader uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.tomlfile import read_toml


class Bad(ValueError):
    pass


def test_reads_the_file(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text('name = "상담"\n[t]\nn = 1\n', encoding="utf-8")
    assert read_toml(path, Bad, unreadable="cannot read x") == {"name": "상담", "t": {"n": 1}}


def test_bad_toml_names_the_file_and_the_line(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text('a = 1\nb = "open\n', encoding="utf-8")
    with pytest.raises(Bad) as info:
        read_toml(path, Bad, unreadable="cannot read x", invalid="bad x")
    assert str(info.value).startswith(f"{path}: bad x: ")
    assert "line 2" in str(info.value)


def test_a_missing_file_has_its_own_message_when_given(tmp_path: Path) -> None:
    path = tmp_path / "none.toml"
    with pytest.raises(Bad, match="^.*none.toml: x not found$"):
        read_toml(path, Bad, missing="x not found", unreadable="cannot read x")
    with pytest.raises(Bad) as info:
        read_toml(path, Bad, unreadable="cannot read x")
    assert str(info.value) == f"{path}: cannot read x: No such file or directory"


def test_an_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(Bad) as info:
        read_toml(tmp_path, Bad, missing="x not found", unreadable="cannot read x")
    assert str(info.value) == f"{tmp_path}: cannot read x: Is a directory"
