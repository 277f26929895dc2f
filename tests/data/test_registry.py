"""Search path, dataset lookup and the dataset listing."""

import os

import pytest

from pixelforge.data import (DATASETS, FileHashes, IDXSpec, cache_dir, find_dataset, list_datasets,
                             register_dataset, search_path)
from pixelforge.errors import DataError


def test_search_path_order(tmp_path, monkeypatch):
    monkeypatch.setenv("PIXELFORGE_DATA", os.pathsep.join([str(tmp_path / "first"), "", str(tmp_path / "second")]))
    assert search_path() == [tmp_path / "first", tmp_path / "second", tmp_path / "cache", tmp_path / "system"]


def test_cache_dir_falls_back_to_xdg_then_home(tmp_path, monkeypatch):
    monkeypatch.delenv("PIXELFORGE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "pixelforge"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "pixelforge"


def test_find_dataset_returns_none_when_nothing_found(tiny, tmp_path, monkeypatch):
    tiny.register()
    monkeypatch.setenv("PIXELFORGE_DATA", str(tmp_path / "empty"))
    assert find_dataset("tiny") is None


def test_find_dataset_takes_the_first_root_holding_every_file(tiny, tmp_path, monkeypatch):
    tiny.register()
    incomplete = tiny.write(tmp_path / "a" / "tiny")
    (incomplete / "t10k-labels-idx1-ubyte.gz").unlink()
    tiny.write(tmp_path / "b" / "tiny", compressed=False)
    tiny.write(tmp_path / "c" / "tiny")
    monkeypatch.setenv("PIXELFORGE_DATA", os.pathsep.join(str(tmp_path / r) for r in "abc"))
    assert find_dataset("tiny") == tmp_path / "b" / "tiny"


def test_env_roots_come_before_cache_and_system_folders(tiny, tmp_path, monkeypatch):
    tiny.register()
    tiny.write(tmp_path / "system" / "tiny")
    assert find_dataset("tiny") == tmp_path / "system" / "tiny"
    tiny.write(tmp_path / "cache" / "tiny")
    assert find_dataset("tiny") == tmp_path / "cache" / "tiny"
    tiny.write(tmp_path / "mine" / "tiny")
    monkeypatch.setenv("PIXELFORGE_DATA", str(tmp_path / "mine"))
    assert find_dataset("tiny") == tmp_path / "mine" / "tiny"


def test_find_dataset_rejects_unknown_names():
    with pytest.raises(DataError, match="unknown dataset 'nope'; known: .*fashion-mnist"):
        find_dataset("nope")


def test_list_datasets_reports_locations(tiny, tmp_path, monkeypatch):
    tiny.register(urls=["http://example.invalid/tiny/"])
    entries = {entry["name"]: entry for entry in list_datasets()}
    assert {"fashion-mnist", "mnist", "digits", "tiny"} <= set(entries)
    assert entries["digits"]["location"] == "scikit-learn (bundled)"
    assert entries["tiny"]["location"] is None
    assert entries["tiny"]["url"] == "http://example.invalid/tiny/"
    assert entries["fashion-mnist"]["description"]

    tiny.write(tmp_path / "mine" / "tiny")
    monkeypatch.setenv("PIXELFORGE_DATA", str(tmp_path / "mine"))
    entries = {entry["name"]: entry for entry in list_datasets()}
    assert entries["tiny"]["location"] == str(tmp_path / "mine" / "tiny")


def test_registry_holds_the_builtin_specs():
    fashion = DATASETS["fashion-mnist"]
    assert fashion.classes[0] == "T-shirt/top" and fashion.classes[9] == "Ankle boot"
    assert fashion.hashes["train-images-idx3-ubyte"].content_hash.startswith("sha256:c59f468a")
    assert DATASETS["mnist"].hashes["t10k-labels-idx1-ubyte"].gz_hash == "md5:ec29112dd5afa0611ce80d1b7f02629c"
    assert DATASETS["mnist"].classes == [str(d) for d in range(10)]


def test_register_dataset_validates_specs(tiny):
    files = {"train": ("img", "lab")}
    with pytest.raises(ValueError, match="no hash"):
        register_dataset(IDXSpec("x", "", files, [], {"img": FileHashes(content_hash="sha256:" + "0" * 64)}, ["a"]))
    with pytest.raises(ValueError, match="hash spec"):
        register_dataset(IDXSpec("x", "", files, [], {f: FileHashes(gz_hash="crc:12") for f in files["train"]}, ["a"]))
    tiny.register()
    with pytest.raises(ValueError, match="already registered"):
        tiny.register()
