"""Load the golden tensors recorded from OpenAI's consistency_models code.

A golden directory holds `manifest.json` (format `cm-golden/1`) and one
`.safetensors` file per case. Every load checks the file's sha256 against the
manifest and the dtype and shape of each tensor against the manifest's entry,
and refuses a mismatch with a `GoldenFileError` naming the file. Tensors are
read with `safetensors.numpy` (no pickle anywhere).

The default directory is the checkout's `golden/` when running from a source
tree, else the copy shipped inside the installed package (`conformance.truth.golden_data`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file

FORMAT = "cm-golden/1"
KINDS = ("schedule", "scalings", "sampler", "editing")
_ENTRY_KEYS = ("name", "kind", "file", "sha256", "config", "tensors")


class GoldenFileError(ValueError):
    """A golden directory, manifest or file that cannot be trusted."""


@dataclass(frozen=True)
class GoldenCase:
    """One recorded case: its manifest entry and its tensors (read-only numpy arrays)."""

    name: str
    kind: str
    config: dict[str, Any]
    tensors: dict[str, np.ndarray] = field(repr=False)
    path: Path

    def __getitem__(self, key: str) -> np.ndarray:
        return self.tensors[key]


def default_golden_dir() -> Path:
    """The checkout's `golden/` if present, else the package data of the installed distribution."""
    checkout = Path(__file__).resolve().parents[2] / "golden"
    if (checkout / "manifest.json").is_file():
        return checkout
    return Path(__file__).resolve().parent / "golden_data"


def _directory(directory: str | Path | None) -> Path:
    path = default_golden_dir() if directory is None else Path(directory)
    if not (path / "manifest.json").is_file():
        raise GoldenFileError(f"golden directory {str(path)!r} has no manifest.json")
    return path.resolve()


def _stamp(path: Path) -> tuple[int, int]:
    """(mtime_ns, size): part of the cache keys, so a file changed on disk is read and
    verified again instead of served from the cache."""
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


def _manifest(path: Path) -> dict[str, Any]:
    return _load_manifest(path, _stamp(path / "manifest.json"))


@lru_cache(maxsize=8)
def _load_manifest(path: Path, stamp: tuple[int, int]) -> dict[str, Any]:
    manifest_path = path / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as exc:
        raise GoldenFileError(f"{manifest_path}: not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise GoldenFileError(f"{manifest_path}: format must be {FORMAT!r}, got {found!r}")
    if not isinstance(manifest.get("cases"), list):
        raise GoldenFileError(f"{manifest_path}: `cases` must be a list of case entries")
    for index, entry in enumerate(manifest["cases"]):
        missing = [k for k in _ENTRY_KEYS if not isinstance(entry, dict) or k not in entry]
        if missing:
            raise GoldenFileError(f"{manifest_path}: cases[{index}] lacks {missing}")
    return manifest


def load_manifest(directory: str | Path | None = None) -> dict[str, Any]:
    """The parsed `manifest.json` of a golden directory (default: the project's)."""
    return _manifest(_directory(directory))


def case_names(kind: str | None = None, directory: str | Path | None = None) -> list[str]:
    """Names of the cases in the manifest, optionally only those of one `kind`."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"`kind` must be one of {KINDS} or None, got {kind!r}")
    cases = load_manifest(directory)["cases"]
    return [c["name"] for c in cases if kind is None or c["kind"] == kind]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_case(name: str, directory: str | Path | None = None) -> GoldenCase:
    """Load case `name`, verified against the manifest (sha256, tensor names, dtypes, shapes)."""
    path = _directory(directory)
    entries = {c["name"]: c for c in _manifest(path)["cases"]}
    if name not in entries:
        raise GoldenFileError(f"no golden case {name!r} in {path}; known: {sorted(entries)}")
    file = path / entries[name]["file"]
    if not file.is_file():
        raise GoldenFileError(
            f"golden file {entries[name]['file']!r} of case {name!r} is missing from {path}"
        )
    return _load_case(name, path, _stamp(path / "manifest.json"), _stamp(file))


@lru_cache(maxsize=64)
def _load_case(
    name: str, path: Path, manifest_stamp: tuple[int, int], file_stamp: tuple[int, int]
) -> GoldenCase:
    entry = next(c for c in _manifest(path)["cases"] if c["name"] == name)
    file = path / entry["file"]
    actual = sha256_of(file)
    if actual != entry["sha256"]:
        raise GoldenFileError(
            f"golden file {entry['file']!r} fails its checksum: sha256 {actual}, "
            f"manifest says {entry['sha256']}; refusing to use it"
        )
    try:
        tensors = load_file(str(file))
    except Exception as exc:  # safetensors raises its own SafetensorError on a bad header
        raise GoldenFileError(
            f"golden file {entry['file']!r} is not a safetensors file ({exc})"
        ) from exc
    declared = entry["tensors"]
    if set(tensors) != set(declared):
        raise GoldenFileError(
            f"golden file {entry['file']!r} holds tensors {sorted(tensors)}, "
            f"manifest declares {sorted(declared)}"
        )
    for key, spec in declared.items():
        array = tensors[key]
        if str(array.dtype) != spec["dtype"] or list(array.shape) != list(spec["shape"]):
            raise GoldenFileError(
                f"golden file {entry['file']!r}: tensor {key!r} is {array.dtype}{list(array.shape)}, "
                f"manifest declares {spec['dtype']}{spec['shape']}"
            )
        array.flags.writeable = False
    return GoldenCase(name, entry["kind"], entry["config"], tensors, file)
