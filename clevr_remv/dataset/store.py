"""The CLEVR-REMV on-disk format: paths, reading, and atomic writing.

Every consumer reads a dataset through `DatasetStore`; nothing else builds paths.
A scene folder ``scenes/NNNNNN`` exists only once the scene is complete: scenes are written
into ``scenes/.tmp-NNNNNN-<run>`` and renamed into place, where ``<run>`` is the random id of the
run that holds the lease ``scenes/.tmp-run-<run>`` (`clevr_remv.dataset.leases`). Several
runs, on several hosts sharing the folder, may write one dataset at once.
"""

import contextlib
import errno
import json
import math
import os
import re
import shutil
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from clevr_remv.dataset.atomic import TMP_PREFIX, create_text_atomic, fsync_path, write_text_atomic
from clevr_remv.dataset.depth import decode_depth
from clevr_remv.dataset.expressions import PENDING, unfinished_refexps
from clevr_remv.dataset.images import open_image
from clevr_remv.dataset.leases import RECENT_S, Lease, held_here, host_name, lease_alive, new_run_id
from clevr_remv.dataset.packed import is_packed
from clevr_remv.errors import ClevrRemvError
from clevr_remv.geometry import grid_center, view_name
from clevr_remv.schemas import read_json, validate

__all__ = [
    "DatasetStore",
    "write_json_atomic",
    "create_json_atomic",
    "scene_folder_name",
    "atomic_scene_dir",
    "remove_stale_temporaries",
    "host_name",
    "start_run",
    "other_runs_at_work",
]

COUNT_TRIES = 20
RUN_LEASE_PREFIX = TMP_PREFIX + "run-"
_LEASE_NAME = re.compile(re.escape(RUN_LEASE_PREFIX) + r"([0-9a-f]{16})")
_FOLDER_NAME = re.compile(re.escape(TMP_PREFIX) + r"\d{6,}-([0-9a-f]{16})")


def scene_folder_name(index: int) -> str:
    """The folder name of scene ``index``, e.g. ``000042``."""
    return f"{index:06d}"


def _checked_json(path, document, schema_name) -> str:
    """``document`` as the text of ``path``, validated first when a schema is named."""
    if schema_name is not None:
        validate(document, schema_name, path)
    return json.dumps(document, indent=1)


def write_json_atomic(path, document, schema_name=None) -> None:
    """Validate ``document`` (when a schema is named) and write it to ``path`` atomically."""
    write_text_atomic(path, _checked_json(path, document, schema_name))


def json_safe(value):
    """``value`` with every NaN float replaced by None, recursively (JSON has no NaN)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_safe(item) for item in value]
    return value


def create_json_atomic(path, document, schema_name=None) -> bool:
    """Like `write_json_atomic`, but only when ``path`` does not exist yet; returns whether
    this call created it (of several writers racing, exactly one does)."""
    return create_text_atomic(path, _checked_json(path, document, schema_name))


def run_lease_path(scenes_dir, run_id: str) -> Path:
    """Where the lease of run ``run_id`` lies (see `clevr_remv.dataset.leases`)."""
    return Path(scenes_dir) / f"{RUN_LEASE_PREFIX}{run_id}"


def start_run(scenes_dir) -> Lease:
    """A new run's lease in ``scenes_dir``: held (and touched) until it is released."""
    run_id = new_run_id()
    return Lease(run_lease_path(scenes_dir, run_id), run_id)


def other_runs_at_work(scenes_dir) -> bool:
    """Whether a lease in ``scenes_dir`` other than this process's says its run is at work."""
    scenes_dir = Path(scenes_dir)
    return scenes_dir.is_dir() and any(
        lease_alive(path, RECENT_S)
        for path in scenes_dir.glob(RUN_LEASE_PREFIX + "*")
        if _LEASE_NAME.fullmatch(path.name) and not held_here(path)
    )


def _last_change(path: Path) -> float:
    """The newest modification time of a folder and its direct entries (the views are written
    into its rgb/ and index/ subfolders)."""
    times = [path.lstat().st_mtime]
    with contextlib.suppress(OSError):
        times += [entry.lstat().st_mtime for entry in path.iterdir()]
    return max(times)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_stale_temporaries(scenes_dir, stale_after: float) -> list:
    """Delete the leftovers of runs that have ended; return their paths.

    A temporary scene folder ``.tmp-NNNNNN-<run>`` goes with its run's lease once the lease says
    the run is dead (its lock is free on this machine; elsewhere it was not touched for
    ``stale_after`` seconds). Anything else (a folder whose lease is gone, or an older version's
    ``.tmp-NNNNNN-<host>-<pid>``, whose host name and pid may be another container's) goes only
    when nothing in it changed for ``stale_after`` seconds.
    """
    scenes_dir, now = Path(scenes_dir), time.time()
    entries = sorted(scenes_dir.glob(TMP_PREFIX + "*")) if scenes_dir.is_dir() else []
    verdicts = {}

    def alive(run_id):
        if run_id not in verdicts:
            verdicts[run_id] = lease_alive(run_lease_path(scenes_dir, run_id), stale_after)
        return verdicts[run_id]

    removed = []
    for path in entries:
        if _LEASE_NAME.fullmatch(path.name):
            continue  # after its folders
        match = _FOLDER_NAME.fullmatch(path.name)
        verdict = alive(match.group(1)) if match else None
        try:
            if verdict is False or (verdict is None and now - _last_change(path) > stale_after):
                _remove(path)
                removed.append(path)
        except FileNotFoundError:
            continue  # renamed into place or removed by its owner meanwhile
    for path in entries:
        match = _LEASE_NAME.fullmatch(path.name)
        if match and alive(match.group(1)) is False:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def sync_tree(folder: Path) -> None:
    """Flush every file and folder under ``folder`` (and itself) to disk."""
    for path, _, files in os.walk(folder, topdown=False):
        for name in files:
            fsync_path(os.path.join(path, name))
        fsync_path(path)


class atomic_scene_dir:  # a class named like the function it replaced: ``with atomic_scene_dir(...) as tmp``
    """A fresh temporary folder for scene ``index``: renamed into place when the ``with`` block
    succeeds, deleted on any error, so a scene folder is never seen half-written.

    Its files are flushed to disk before the rename and the rename after it, so a scene that
    looks complete is complete after a power loss too. When another run completed the scene
    first, its copy stays and this one is discarded: ``completed`` tells whether this one made
    the scene. The folder carries the id of the run's ``lease`` (a lease of its own when None).
    """

    def __init__(self, scenes_dir, index: int, lease: Lease = None):
        self.scenes_dir, self.index, self.lease = Path(scenes_dir), index, lease
        self.completed = False
        self._own_lease = None

    def __enter__(self) -> Path:
        self.scenes_dir.mkdir(parents=True, exist_ok=True)
        if self.lease is None:
            self.lease = self._own_lease = start_run(self.scenes_dir)
        self.path = self.scenes_dir / f"{TMP_PREFIX}{scene_folder_name(self.index)}-{self.lease.run_id}"
        shutil.rmtree(self.path, ignore_errors=True)  # this run's own earlier try
        try:
            self.path.mkdir()
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self.path

    def __exit__(self, kind, error, traceback):
        try:
            if kind is None:
                self._complete()
        finally:
            shutil.rmtree(self.path, ignore_errors=True)
            if self._own_lease is not None:
                self._own_lease.release()

    def _complete(self) -> None:
        final = self.scenes_dir / scene_folder_name(self.index)
        sync_tree(self.path)
        try:
            os.rename(self.path, final)
        except OSError as error:
            if error.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not (final / "scene.json").is_file():
                raise
            return
        fsync_path(self.scenes_dir)
        self.completed = True


class DatasetStore:
    """A CLEVR-REMV dataset root: paths and loaders for every file in it."""

    def __init__(self, root):
        self.root = Path(root)
        self.dataset_json_path = self.root / "dataset.json"
        self.scenes_dir = self.root / "scenes"
        self.splits_path = self.root / "splits.json"
        if not self.dataset_json_path.is_file():
            if is_packed(self.root):
                raise ClevrRemvError(
                    f"{self.root}: a packed dataset (the tar shards of `clevr-remv pack`), but this "
                    f"command reads the dataset folder: rebuild it with `clevr-remv unpack --data "
                    f"{self.root} --out DIR` and pass DIR (ClevrRemvDataset and `clevr-remv validate` "
                    "read the packed folder itself)"
                )
            raise ClevrRemvError(
                f"{self.root}: not a CLEVR-REMV dataset (no dataset.json); "
                "pass the --out folder of `clevr-remv generate`"
            )
        self._info = None

    def info(self) -> dict:
        """dataset.json: format version, generator version, full config, counts."""
        if self._info is None:
            self._info = read_json(self.dataset_json_path, "dataset", fix="regenerate the dataset description")
        return self._info

    def write_info(self, info: dict) -> None:
        """Replace dataset.json (validated, atomic)."""
        write_json_atomic(self.dataset_json_path, info, "dataset")
        self._info = info

    def count(self) -> dict:
        """The counts of the scene folders as they are now: complete scenes, views per scene and
        their expressions."""
        scene_ids = self.scene_ids()
        expressions = sum(
            len(json.loads(self.refexps_path(index).read_text())["expressions"])
            for index in scene_ids
            if self.refexps_path(index).is_file()
        )
        self._info = None  # another run may have changed the file
        return dict(self.info()["counts"], scenes=len(scene_ids), expressions=expressions)

    def refresh_counts(self, others_at_work=lambda: False) -> dict:
        """Recount the complete scenes and their expressions into dataset.json; return the counts.

        Runs that finish together (on several hosts) may overwrite each other's count with an older
        one, so each writes and then counts again until dataset.json agrees with the folders. While
        ``others_at_work()`` says another run is still going, a disagreement is left to that run,
        which recounts when it ends: a run never waits for others, and once all runs have ended the
        file agrees with the folders.
        """
        for _ in range(COUNT_TRIES):
            counts = self.count()
            if counts == self.info()["counts"] or others_at_work():
                return counts
            self.write_info(dict(self.info(), counts=counts))
        warnings.warn(
            f"{self.dataset_json_path}: the scene folders kept changing while recounting, but no other "
            "run says it is at work; its counts may be behind (`clevr-remv validate` checks them, and "
            "the next `generate` into the folder recounts)",
            stacklevel=2,
        )
        return counts

    @property
    def passes(self) -> tuple:
        """The optional passes the dataset holds beside rgb and index, e.g. ("depth",); datasets
        made before passes were configurable hold none."""
        return tuple(self.info()["config"].get("passes", ()))

    def require_depth(self, source: str, fix: str) -> None:
        """Raise ClevrRemvError naming ``source`` (the flag or argument that asked for depth)
        and ``fix`` unless the dataset has depth maps."""
        if "depth" not in self.passes:
            raise ClevrRemvError(
                f"{source}: the dataset {self.root} has no depth maps (it was generated "
                f"without `--passes depth`); {fix}"
            )

    @property
    def grid(self) -> int:
        return self.info()["config"]["grid"]

    @property
    def center(self) -> tuple:
        return grid_center(self.grid)

    def views(self) -> list:
        """All (u, v) of the rig, v-major (the order of scene.json's views)."""
        return [(u, v) for v in range(1, self.grid + 1) for u in range(1, self.grid + 1)]

    def scene_ids(self) -> list:
        """Sorted indices of the complete scenes."""
        if not self.scenes_dir.is_dir():
            return []
        return sorted(
            int(p.name) for p in self.scenes_dir.iterdir() if p.name.isdigit() and (p / "scene.json").is_file()
        )

    def scene_dir(self, index: int) -> Path:
        return self.scenes_dir / scene_folder_name(index)

    def scene_json_path(self, index: int) -> Path:
        return self.scene_dir(index) / "scene.json"

    def refexps_path(self, index: int) -> Path:
        return self.scene_dir(index) / "refexps.json"

    def rgb_path(self, index: int, u: int, v: int) -> Path:
        return self.scene_dir(index) / "rgb" / f"{view_name(u, v)}.png"

    def index_path(self, index: int, u: int, v: int) -> Path:
        return self.scene_dir(index) / "index" / f"{view_name(u, v)}.png"

    def depth_path(self, index: int, u: int, v: int) -> Path:
        return self.scene_dir(index) / "depth" / f"{view_name(u, v)}.png"

    def load_scene(self, index: int, check: bool = True) -> dict:
        """scene.json of scene ``index``; ``check=False`` skips the schema check (for bulk
        readers of trusted data: `validate` is the command that checks every file)."""
        return read_json(self.scene_json_path(index), "scene" if check else None, fix=f"regenerate scene {index}")

    def load_refexps(self, index: int, check: bool = True, unfinished_ok: bool = False) -> dict:
        """refexps.json of scene ``index``; ``check`` as for `load_scene`. A dataset whose
        `clevr-remv refexps` run has not finished (its scenes mix two settings) is refused unless
        ``unfinished_ok``."""
        if not unfinished_ok:
            self.require_finished_refexps()
        return read_json(
            self.refexps_path(index),
            "refexps" if check else None,
            fix=f"regenerate the referring expressions of scene {index} (run `clevr-remv refexps`)",
        )

    def require_finished_refexps(self) -> None:
        """Raise ClevrRemvError while a `clevr-remv refexps` run has not rewritten every scene (its
        scenes mix two settings), with the command that finishes it."""
        pending = self.info().get(PENDING)
        if pending is not None:
            raise ClevrRemvError(f"{self.dataset_json_path}: {unfinished_refexps(self.root, pending)}")

    def load_splits(self) -> dict:
        if not self.splits_path.is_file():
            raise ClevrRemvError(
                f"{self.splits_path}: the dataset has no split file; run `clevr-remv split --data {self.root}` first"
            )
        return read_json(self.splits_path, "splits", fix="regenerate the split file")

    def read_rgb(self, index: int, u: int, v: int) -> np.ndarray:
        """View (u, v) of scene ``index`` as uint8 (H, W, 3)."""
        with open_image(self.rgb_path(index, u, v), self._image_fix(index)) as image:
            return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))

    def read_index(self, index: int, u: int, v: int) -> np.ndarray:
        """The object-index mask of view (u, v): uint8 (H, W), 0 = background, k = object k."""
        with open_image(self.index_path(index, u, v), self._image_fix(index)) as image:
            return np.asarray(image)

    def read_depth(self, index: int, u: int, v: int) -> np.ndarray:
        """The z-depth of view (u, v): float32 (H, W) in world units, 0 = no value (see
        `clevr_remv.dataset.depth`)."""
        with open_image(self.depth_path(index, u, v), self._image_fix(index)) as image:
            return decode_depth(np.asarray(image), self.info()["depth_scale"])

    def _image_fix(self, index: int) -> str:
        return (
            f"delete scene folder {self.scene_dir(index)} and rerun `clevr-remv generate` with the same "
            f"flags to render it again (`clevr-remv validate --data {self.root}` lists every broken file)"
        )
