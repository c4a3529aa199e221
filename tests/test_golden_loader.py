"""The golden-file loader (conformance/truth/golden.py): it hands out only what the manifest vouches
for, names the file it refuses, and never unpickles anything."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from conformance.truth import golden
from conformance.truth.golden import GoldenFileError

CASE = "cd_imagenet64_ts_0_22_39_f64"
FILE = f"{CASE}.safetensors"


def _edit_manifest(directory: Path, edit) -> None:
    path = directory / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


def _entry(manifest: dict, name: str = CASE) -> dict:
    return next(c for c in manifest["cases"] if c["name"] == name)


def test_every_case_loads_and_matches_its_manifest_entry() -> None:
    manifest = golden.load_manifest()
    assert manifest["format"] == golden.FORMAT
    names = golden.case_names()
    assert len(names) == len(manifest["cases"]) == len(set(names))
    for name in names:
        case = golden.load_case(name)
        entry = _entry(manifest, name)
        assert case.kind == entry["kind"] and case.config == entry["config"]
        assert {k: (str(v.dtype), list(v.shape)) for k, v in case.tensors.items()} == {
            k: (spec["dtype"], spec["shape"]) for k, spec in entry["tensors"].items()
        }


def test_case_names_by_kind() -> None:
    by_kind = {kind: golden.case_names(kind) for kind in golden.KINDS}
    assert sorted(sum(by_kind.values(), [])) == sorted(golden.case_names())
    assert "schedule_default" in by_kind["schedule"]
    with pytest.raises(ValueError, match=r"`kind` must be one of .* got 'trajectory'"):
        golden.case_names("trajectory")


def test_tensors_are_read_only() -> None:
    case = golden.load_case(CASE)
    with pytest.raises(ValueError, match="read-only"):
        case["x_T"][0, 0, 0, 0] = 0.0


def test_corrupted_byte_is_refused_naming_the_file(golden_copy: Path) -> None:
    path = golden_copy / FILE
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # one bit of the last tensor's data
    path.write_bytes(bytes(data))
    with pytest.raises(GoldenFileError, match=rf"golden file '{FILE}' fails its checksum"):
        golden.load_case(CASE, golden_copy)
    # The other cases of the directory are unaffected.
    assert golden.load_case("onestep_f32", golden_copy).name == "onestep_f32"


def test_file_changed_after_a_load_is_verified_again(golden_copy: Path) -> None:
    """A case read once is cached; a change on disk afterwards must not be served from it."""
    golden.load_case(CASE, golden_copy)
    path = golden_copy / FILE
    before = path.stat().st_mtime_ns
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    os.utime(path, ns=(before + 10**9, before + 10**9))  # as on a filesystem with 1 s stamps
    with pytest.raises(GoldenFileError, match="fails its checksum"):
        golden.load_case(CASE, golden_copy)


def test_missing_file_is_refused(golden_copy: Path) -> None:
    (golden_copy / FILE).unlink()
    with pytest.raises(GoldenFileError, match=rf"golden file '{FILE}' of case '{CASE}' is missing"):
        golden.load_case(CASE, golden_copy)


def test_unknown_case_is_refused_listing_the_known_ones() -> None:
    with pytest.raises(GoldenFileError, match=r"no golden case 'cd_imagenet128'.*known: \["):
        golden.load_case("cd_imagenet128")


def test_directory_without_manifest_is_refused(tmp_path: Path) -> None:
    with pytest.raises(GoldenFileError, match="has no manifest.json"):
        golden.load_case(CASE, tmp_path)


def test_manifest_of_another_format_is_refused(golden_copy: Path) -> None:
    _edit_manifest(golden_copy, lambda m: m.update(format="cm-golden/0"))
    with pytest.raises(GoldenFileError, match=r"format must be 'cm-golden/1', got 'cm-golden/0'"):
        golden.load_case(CASE, golden_copy)


def test_manifest_that_is_not_json_is_refused(golden_copy: Path) -> None:
    (golden_copy / "manifest.json").write_text("{not json")
    with pytest.raises(GoldenFileError, match="manifest.json: not valid JSON"):
        golden.load_manifest(golden_copy)


def test_manifest_entry_without_checksum_is_refused(golden_copy: Path) -> None:
    _edit_manifest(golden_copy, lambda m: _entry(m).pop("sha256"))
    with pytest.raises(GoldenFileError, match=r"cases\[\d+\] lacks \['sha256'\]"):
        golden.load_case(CASE, golden_copy)


def test_declared_shape_mismatch_is_refused(golden_copy: Path) -> None:
    _edit_manifest(golden_copy, lambda m: _entry(m)["tensors"]["x_T"].update(shape=[2, 3, 8, 9]))
    with pytest.raises(GoldenFileError, match=rf"'{FILE}': tensor 'x_T' is float64\[2, 3, 8, 8\]"):
        golden.load_case(CASE, golden_copy)


def test_undeclared_tensor_is_refused(golden_copy: Path) -> None:
    _edit_manifest(golden_copy, lambda m: _entry(m)["tensors"].pop("final"))
    with pytest.raises(GoldenFileError, match=rf"'{FILE}' holds tensors .* manifest declares"):
        golden.load_case(CASE, golden_copy)


def _replace_file(directory: Path, content: bytes) -> None:
    """Put `content` in place of the case's file and vouch for it in the manifest, so that
    only the format check stands between it and the caller."""
    (directory / FILE).write_bytes(content)
    digest = golden.sha256_of(directory / FILE)
    _edit_manifest(directory, lambda m: _entry(m).update(sha256=digest))


def test_pickle_in_place_of_safetensors_is_refused_not_unpickled(
    golden_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the loader unpickled something")

    _replace_file(golden_copy, pickle.dumps({"x_T": np.zeros(3)}))
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    with pytest.raises(GoldenFileError, match=rf"'{FILE}' is not a safetensors file"):
        golden.load_case(CASE, golden_copy)


def test_valid_safetensors_with_other_contents_is_refused(golden_copy: Path) -> None:
    """A well-formed file the manifest vouches for, but holding float32 where float64 is declared."""
    original = golden.load_case(CASE)
    tensors = {k: np.asarray(v, dtype=np.float32) for k, v in original.tensors.items()}
    save_file(tensors, str(golden_copy / "tmp.safetensors"))
    _replace_file(golden_copy, (golden_copy / "tmp.safetensors").read_bytes())
    with pytest.raises(
        GoldenFileError, match=r"tensor '\w+' is float32\[.*manifest declares float64"
    ):
        golden.load_case(CASE, golden_copy)


def test_loading_needs_no_pickle(monkeypatch: pytest.MonkeyPatch, golden_copy: Path) -> None:
    """Every case loads with pickle disabled (a fresh directory, so nothing comes from a cache)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the loader unpickled something")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    for name in golden.case_names(directory=golden_copy):
        golden.load_case(name, golden_copy)
