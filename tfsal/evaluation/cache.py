"""The per-image cache of ``tfsal evaluate`` (``<out>/cache``): one compressed file per image, and
``settings.json``, what the files were computed with (the settings, the data, the models' content
fingerprints and every row's explainer defaults), so that a cache is only ever reused for the same
computation; a file that cannot be read is computed again.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import zipfile
from pathlib import Path

import numpy as np

from tfsal.errors import TfsalError
from tfsal.explain import registry
from tfsal.util import atomic

log = logging.getLogger(__name__)

CACHE_VERSION = 2
"""Bumped whenever what a cache file holds changes; older caches are refused, not misread."""


def cache_name(index: int, record) -> str:
    """The cache file of the ``index``-th image: its number and a hash of its path (no patient data)."""
    digest = hashlib.sha1(str(record.image).encode()).hexdigest()[:10]  # file names carry no patient data
    return f"{index:06d}_{digest}.npz"


def save_item(path: Path, item: dict) -> None:
    """One image's cached results, written atomically (bool arrays bit-packed)."""
    arrays = {k: np.packbits(v) if v.dtype == bool else v for k, v in item.items() if isinstance(v, np.ndarray)
              and v.ndim}
    shapes = {k: [list(v.shape), str(v.dtype)] for k, v in item.items() if isinstance(v, np.ndarray) and v.ndim}
    scalars = {k: float(v) for k, v in item.items() if not (isinstance(v, np.ndarray) and v.ndim)}
    meta = {"version": CACHE_VERSION, "shapes": shapes, "scalars": scalars}
    with atomic.atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, meta=np.array(json.dumps(meta)), **arrays)


def _today(key: str) -> str:
    """A cache key (``kind:row[:...]``) with an earlier release's row name replaced by today's."""
    kind, sep, rest = key.partition(":")
    row, sep2, tail = rest.partition(":")
    return f"{kind}{sep}{registry.canonical_row(row)}{sep2}{tail}" if sep else key


def load_item(path: Path) -> dict:
    """The results :func:`save_item` wrote (rows under today's names: ``registry.LEGACY_ROWS``)."""
    with np.load(path) as saved:
        meta = json.loads(str(saved["meta"]))
        if meta.get("version") != CACHE_VERSION:
            raise TfsalError(f"{path}: a cache of another tfsal version; use another --out or remove it")
        item = {_today(k): v for k, v in meta["scalars"].items()}
        for key, (shape, dtype) in meta["shapes"].items():
            if dtype == "bool":
                item[_today(key)] = np.unpackbits(saved[key])[:int(np.prod(shape))].reshape(shape).astype(bool)
            else:
                item[_today(key)] = saved[key]
    return item


def readable(path: Path) -> bool:
    """Whether ``path`` is a whole cache file (a run killed while writing one leaves none, but a
    disk can truncate one); an unreadable one is removed, so that it is computed again."""
    if not path.exists():
        return False
    try:
        with np.load(path) as saved:
            meta = json.loads(str(saved["meta"]))
            if set(meta["shapes"]) <= set(saved.files) and meta.get("version") == CACHE_VERSION:
                return True
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        pass
    log.warning("%s: an unreadable cache file; computed again", path.name)
    path.unlink()
    return False


def explainer_defaults(methods) -> dict:
    """Each row's explainer class and its constructor's defaults: a changed default changes what a
    row computes, so it is part of what a cache is reused for."""
    described = {}
    for name in methods:
        method, row = registry.evaluation_rows()[name]
        cls = method.load()
        variant = method.variants.get(row)
        described[name] = {"class": f"{cls.__module__}.{cls.__qualname__}",
                           "options": repr(variant.options) if variant else "",
                           "defaults": {p.name: repr(p.default) for p in
                                        inspect.signature(cls.__init__).parameters.values()
                                        if p.default is not inspect.Parameter.empty}}
    return described


def _today_settings(described: dict) -> dict:
    """A cache's recorded settings with an earlier release's row names replaced by today's."""
    described = dict(described)
    if isinstance(described.get("methods"), list):
        described["methods"] = [registry.canonical_row(m) for m in described["methods"]]
    if isinstance(described.get("explainer_defaults"), dict):
        described["explainer_defaults"] = {registry.canonical_row(k): v
                                           for k, v in described["explainer_defaults"].items()}
    return described


def check_cache(cache: Path, described: dict) -> None:
    """Refuse a cache made for another computation; record ``described`` in a new one."""
    settings_file = cache / "settings.json"
    if settings_file.exists() and _today_settings(json.loads(settings_file.read_text())) != described:
        raise TfsalError(f"{cache}: holds results of other settings; use another --out or remove it")
    atomic.write_text(settings_file, json.dumps(described, indent=1) + "\n")
