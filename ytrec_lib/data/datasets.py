"""Named datasets as :class:`Dataset` objects, generated once and cached under ``data/``.

``datasets.load("ci", seed=0)`` simulates the ``ci`` preset (or reads it from the cache
``data/ci-seed0-v<GENERATOR_VERSION>/``). The cache folder is written to a temporary folder and
renamed into place, with a manifest holding each file's size and SHA-256; a missing, partial or
corrupt cache is detected on load and rebuilt. ``$YTREC_DATA_DIR`` moves the cache root. Temporary
files and folders that killed writers left in it (and in its ``models/`` and ``system/`` folders)
are removed by the next cached :func:`load` once they are an hour old.

Tables are stored as ``.npz`` column files (no pyarrow needed); ragged columns (token lists) are
stored as a flat value array plus offsets, and nothing is pickled.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import interactions, presets, real
from .cache import file_sha256, load_json, load_npz, sweep_stale_temps, temp_sibling
from .presets import SimConfig, preset_config
from .simulator import GENERATOR_VERSION, SimOutput, Truth, World, simulate, split_ragged, world_key

REPO_ROOT = Path(__file__).resolve().parents[2]
TABLES = ("users", "videos", "impressions", "searches")
_MANIFEST = "manifest.json"

__all__ = ["Dataset", "load", "dataset_before", "known_presets", "data_dir", "cache_path", "from_simulation",
           "from_interactions"]


@dataclass
class Dataset:
    """The four tables of a platform's log, its metadata and (for the simulator) the ground truth.

    See ``docs/data_contract.md`` for the schema of every table.
    """

    users: pd.DataFrame
    videos: pd.DataFrame
    impressions: pd.DataFrame
    searches: pd.DataFrame
    meta: dict[str, Any]
    truth: Truth | None = None
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_users(self) -> int:
        return int(self.meta["n_users"])

    @property
    def n_videos(self) -> int:
        return int(self.meta["n_videos"])

    def watches(self) -> pd.DataFrame:
        """The clicked impressions (a watch is a clicked impression), sorted by time."""
        if "watches" not in self._cache:
            w = self.impressions[self.impressions["clicked"].to_numpy()]
            self._cache["watches"] = w.sort_values(["time", "session_id", "position"], kind="stable")
        return self._cache["watches"]

    def watch_sequences(self) -> list[np.ndarray]:
        """Per user (index = user id), the watched video ids in time order: list of (n_u,) int64."""
        w = self.watches()
        order = np.lexsort((w["time"].to_numpy(), w["user_id"].to_numpy()))
        vids = w["video_id"].to_numpy()[order].astype(np.int64)
        counts = np.bincount(w["user_id"].to_numpy(), minlength=self.n_users)
        return np.split(vids, np.cumsum(counts)[:-1])

    def search_token_sequences(self) -> list[np.ndarray]:
        """One int32 array of token ids per search session (time order)."""
        return [np.asarray(t, dtype=np.int32) for t in self.searches["tokens"]]

    def __repr__(self) -> str:
        m = self.meta
        return (f"Dataset({m.get('name')!r}, seed={m.get('seed')}, users={len(self.users):,}, "
                f"videos={len(self.videos):,}, impressions={len(self.impressions):,}, "
                f"watches={int(self.impressions['clicked'].sum()):,}, searches={len(self.searches):,})")


def known_presets() -> list[str]:
    """Every name :func:`load` accepts."""
    return presets.known_presets() + real.known_real()


def data_dir() -> Path:
    """The cache root: ``$YTREC_DATA_DIR`` or ``<repo>/data``."""
    env = os.environ.get("YTREC_DATA_DIR")
    return Path(env).expanduser().resolve() if env else REPO_ROOT / "data"


def cache_path(name: str, seed: int = 0, style: str = "ugc") -> Path:
    """Folder of one cached dataset: ``<data_dir>/<name>[-studio]-seed<seed>-v<version>``."""
    tag = name if style == "ugc" else f"{name}-{style}"
    return data_dir() / f"{tag}-seed{seed}-v{GENERATOR_VERSION}"


def from_simulation(out: SimOutput) -> Dataset:
    """Wrap a :func:`simulator.simulate` output as a :class:`Dataset` (with its :class:`Truth`)."""
    imp = out.impressions
    clicked = imp["clicked"].to_numpy()
    truth = Truth(out.world, imp["user_id"].to_numpy()[clicked], imp["video_id"].to_numpy()[clicked],
                  imp["time"].to_numpy()[clicked])
    return Dataset(users=out.users, videos=out.videos, impressions=out.impressions,
                   searches=out.searches, meta=dict(out.meta), truth=truth)


def from_interactions(frame: pd.DataFrame, user: str = "user_id", item: str = "item_id",
                      time: str = "timestamp", rating: str | None = None, threshold: float | None = None, *,
                      name: str = "interactions") -> Dataset:
    """A real-source :class:`Dataset` from one's own interaction table (a pandas DataFrame, one row per
    interaction): columns ``user``, ``item`` and ``time`` (Unix seconds or datetimes), optionally
    ``rating`` (with ``threshold``: only rows rated ``>= threshold`` are watches; default every row).

    Users and videos keep the caller's ids as ``source_id``; the standard split is leave-last-out, and
    ``pipeline.candidate_model(ds)`` trains on it. The mapping and the errors (missing column, no rows,
    missing values, times that are not times, ...): :mod:`ytrec_lib.data.interactions`.
    """
    return Dataset(**interactions.interaction_fields(frame, user=user, item=item, time=time, rating=rating,
                                                     threshold=threshold, name=name))


def _check_args(name: str, seed: int, style: str) -> None:
    if name not in known_presets():
        raise ValueError(f"unknown preset {name!r}; known presets: {', '.join(known_presets())}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if style not in presets.STYLES:
        raise ValueError(f"unknown style {style!r}; use one of {', '.join(presets.STYLES)}")


def load(name: str, seed: int = 0, *, cache: bool = True, progress: bool = True, style: str = "ugc",
         config: SimConfig | None = None) -> Dataset:
    """The dataset ``name`` (a preset of :func:`known_presets`) for ``seed``.

    ``style="studio"`` gives the studio-style catalogue of the same size. With ``cache=True`` the
    dataset is read from ``data/`` when a valid copy is there, else generated and stored; a damaged
    copy is rebuilt. ``config`` replaces the preset's settings (never cached).
    """
    if real.is_real(name):          # MovieLens / KuaiRand files in data/<name>/ (docs/real_datasets.md)
        return real.load_real(name, style=style, progress=progress)
    _check_args(name, seed, style)
    if config is not None:
        return from_simulation(simulate(config, int(seed), name=name, progress=progress))
    cfg = preset_config(name, style)
    path = cache_path(name, int(seed), style)
    if cache:
        sweep_debris()
    if cache and path.exists():
        try:
            return _read(path, expect_config=cfg.to_dict())
        except _StaleCache as err:
            warnings.warn(f"cached dataset {path} is out of date ({err}); rebuilding it", stacklevel=2)
        except (OSError, ValueError, KeyError) as err:
            warnings.warn(f"cached dataset {path} is damaged ({err}); rebuilding it", stacklevel=2)
    ds = from_simulation(simulate(cfg, int(seed), name=name, progress=progress))
    if cache:
        _write(ds, path, cfg)
    return ds


def dataset_before(ds: Dataset, cutoff: float) -> Dataset:
    """A view of dataset ``ds`` holding only the impressions and searches before ``cutoff`` (days).

    Pretraining (item2vec) on it cannot see the test period; its ``meta['name']`` carries the cutoff,
    so caches keyed by the name keep it apart from the full dataset.
    """
    imp, searches = ds.impressions, ds.searches
    meta = {**ds.meta, "name": f"{ds.meta.get('name')}-before{cutoff:g}"}
    return Dataset(users=ds.users, videos=ds.videos, impressions=imp[imp["time"].to_numpy() < cutoff],
                   searches=searches[searches["time"].to_numpy() < cutoff], meta=meta, truth=None)


# --------------------------------------------------------------------------------------------
# cache I/O
# --------------------------------------------------------------------------------------------
DEBRIS_FOLDERS = ("", "models", "system")
"""Folders of the data dir (``""``: itself) whose stale temporary files :func:`sweep_debris` removes."""


def sweep_debris(older_than: float = 3600.0) -> list[Path]:
    """Remove the temporary files and folders that killed writers left in the data dir and its
    ``models/`` and ``system/`` folders, once untouched for ``older_than`` seconds (a writer that is
    still running keeps its own). Returns what was removed."""
    return [p for sub in DEBRIS_FOLDERS for p in sweep_stale_temps(data_dir() / sub, older_than)]


def _encode(df: pd.DataFrame) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Columns of ``df`` as plain arrays (no objects), and how to decode each one."""
    arrays, kinds = {}, {}
    for col in df.columns:
        s = df[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            arrays[f"{col}__codes"] = s.cat.codes.to_numpy()
            arrays[f"{col}__categories"] = np.array([str(c) for c in s.cat.categories], dtype="U")
            kinds[col] = "category"
        elif s.dtype == object:
            vals = [np.asarray(x, dtype=np.int32) for x in s.to_numpy()]
            arrays[f"{col}__offsets"] = np.r_[0, np.cumsum([len(x) for x in vals])].astype(np.int64)
            arrays[f"{col}__values"] = np.concatenate(vals) if vals else np.zeros(0, np.int32)
            kinds[col] = "ragged"
        else:
            arrays[col] = s.to_numpy()
            kinds[col] = "plain"
    return arrays, kinds


def _decode(z: Mapping[str, np.ndarray], kinds: dict[str, str]) -> pd.DataFrame:
    """The table :func:`_encode` stored as the arrays ``z``, column ``col`` decoded as ``kinds[col]``."""
    cols = {}
    for col, kind in kinds.items():
        if kind == "category":
            cats = list(z[f"{col}__categories"])
            cols[col] = pd.Categorical.from_codes(z[f"{col}__codes"], categories=cats)
        elif kind == "ragged":
            cols[col] = split_ragged(z[f"{col}__offsets"], z[f"{col}__values"])
        else:
            cols[col] = z[col]
    return pd.DataFrame(cols)


def _write(ds: Dataset, path: Path, cfg: SimConfig) -> None:
    """Write ``ds`` to ``path`` atomically: a temporary sibling folder renamed into place.

    When another process puts a complete copy at ``path`` first, that copy is kept and this one dropped.
    """
    tmp = temp_sibling(path, directory=True)
    try:
        schema = {}
        for table in TABLES:
            arrays, kinds = _encode(getattr(ds, table))
            np.savez(tmp / f"{table}.npz", **arrays)
            schema[table] = [[col, kind] for col, kind in kinds.items()]   # keeps the column order
        if ds.truth is not None:
            np.savez(tmp / "world.npz", **ds.truth.world.arrays())
        files = {p.name: {"bytes": p.stat().st_size, "sha256": file_sha256(p)} for p in sorted(tmp.glob("*.npz"))}
        manifest = dict(generator_version=GENERATOR_VERSION, meta=ds.meta, config=cfg.to_dict(),
                        schema=schema, files=files,
                        n_tokens=int(ds.truth.world.n_tokens) if ds.truth is not None else None)
        (tmp / _MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        os.chmod(tmp, 0o755)
        if path.exists():                 # a damaged copy: move it aside, then swap in the new one
            trash = temp_sibling(path, directory=True)
            try:
                os.replace(path, trash / "old")
            except FileNotFoundError:     # another process moved it already
                pass
            shutil.rmtree(trash, ignore_errors=True)
        try:
            os.replace(tmp, path)
        except OSError:
            if not (path / _MANIFEST).exists():
                raise
            # another process renamed its complete copy into place between our check and our rename
    finally:
        shutil.rmtree(tmp, ignore_errors=True)     # gone already after a successful rename


def _config_defaults() -> dict:
    """Default value of every :class:`SimConfig` setting that has one, JSON-style (tuples as lists)."""
    out = {}
    for f in dataclasses.fields(SimConfig):
        if f.default is not dataclasses.MISSING:
            out[f.name] = list(f.default) if isinstance(f.default, tuple) else f.default
    return out


def _is_column(c: Any) -> bool:
    """Whether ``c`` is a ``[column name, kind]`` pair of the manifest's schema."""
    return isinstance(c, list) and len(c) == 2 and all(isinstance(x, str) for x in c)


def _check_manifest(manifest: dict[str, Any]) -> None:
    """``ValueError`` unless ``manifest`` has every part :func:`_read` uses, of the right JSON types."""
    files, schema = manifest.get("files"), manifest.get("schema")
    if not isinstance(files, dict) or not all(
            isinstance(name, str) and Path(name).name == name and isinstance(info, dict)
            and isinstance(info.get("bytes"), int) and isinstance(info.get("sha256"), str)
            for name, info in files.items()):
        raise ValueError(f"{_MANIFEST}: 'files' is not a table of file names, sizes and checksums")
    unlisted = [f"{t}.npz" for t in TABLES if f"{t}.npz" not in files]
    if unlisted:
        raise ValueError(f"{_MANIFEST} does not list {', '.join(unlisted)}")
    if not isinstance(schema, dict) or not all(
            isinstance(schema.get(t), list) and all(_is_column(c) for c in schema[t]) for t in TABLES):
        raise ValueError(f"{_MANIFEST}: 'schema' does not give the columns of every table")
    for key in ("meta", "config"):
        if not isinstance(manifest.get(key), dict):
            raise ValueError(f"{_MANIFEST}: '{key}' is not a JSON object")


class _StaleCache(ValueError):
    """The cache was written by other generator settings (the code changed since)."""


def _read(path: Path, expect_config: dict | None = None) -> Dataset:
    """Read and verify a cached dataset; ``ValueError`` when anything is missing, altered or stale."""
    mpath = path / _MANIFEST
    if not mpath.exists():
        raise ValueError("no manifest (partial write)")
    manifest = load_json(mpath, "dataset manifest")   # DamagedArtifact (a ValueError) unless a JSON object
    if manifest.get("generator_version") != GENERATOR_VERSION:
        raise _StaleCache(f"generator version {manifest.get('generator_version')} != {GENERATOR_VERSION}")
    _check_manifest(manifest)
    if expect_config is not None:
        # a setting added since the cache was written counts at its default (defaults never change the world)
        stored = {**_config_defaults(), **manifest["config"]}
        changed = sorted(k for k in expect_config if stored.get(k) != expect_config[k])
        if changed:
            raise _StaleCache(f"generated with other settings: {', '.join(changed[:5])}")
    for fname, info in manifest["files"].items():
        f = path / fname
        if not f.exists():
            raise ValueError(f"{fname} is missing")
        if f.stat().st_size != info["bytes"] or file_sha256(f) != info["sha256"]:
            raise ValueError(f"{fname} does not match its checksum")
    tables = {}
    for table in TABLES:                  # arrays only: an object array (a pickle) is refused, never loaded
        z = load_npz(path / f"{table}.npz", f"{table} table")
        tables[table] = _decode(z, dict(manifest["schema"][table]))
    truth = None
    if "world.npz" in manifest["files"]:
        arrays = load_npz(path / "world.npz", "simulator world")
        try:
            stored = {k: v for k, v in manifest["config"].items() if k in _config_defaults()}
            cfg = SimConfig(**{**stored, "policy_mix": tuple(manifest["config"]["policy_mix"])})
            world = World(cfg=cfg, n_tokens=int(manifest["n_tokens"]), **arrays)
        except TypeError as err:
            raise ValueError(f"world.npz and the manifest do not describe a simulator world ({err})") from err
        manifest["meta"].setdefault("world_key", world_key(cfg))  # caches written before meta had it
        imp = tables["impressions"]
        c = imp["clicked"].to_numpy()
        truth = Truth(world, imp["user_id"].to_numpy()[c], imp["video_id"].to_numpy()[c],
                      imp["time"].to_numpy()[c])
    return Dataset(meta=manifest["meta"], truth=truth, **tables)
