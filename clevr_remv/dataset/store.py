"""The CLEVR-REMV on-disk format: paths, reading, and atomic writing.

Every consumer reads a dataset through :class:`DatasetStore`; nothing else builds paths.
A scene folder ``scenes/NNNNNN`` exists only once the scene is complete: scenes are written
into ``scenes/.tmp-NNNNNN-<host>-<pid>`` and renamed into place. Several runs, on several hosts
sharing the folder, may write one dataset at once.
"""
import contextlib
import errno
import json
import os
import re
import shutil
import socket
import time
from pathlib import Path

import numpy as np

from clevr_remv.dataset.atomic import TMP_PREFIX, create_text_atomic, write_text_atomic
from clevr_remv.dataset.depth import decode_depth
from clevr_remv.dataset.images import open_image
from clevr_remv.dataset.packed import is_packed
from clevr_remv.errors import ClevrRemvError
from clevr_remv.geometry import grid_center, view_name
from clevr_remv.schemas import read_json, validate

__all__ = ["DatasetStore", "write_json_atomic", "create_json_atomic", "scene_folder_name", "atomic_scene_dir",
           "remove_stale_temporaries", "host_name"]

HOST_ENV = "CLEVR_REMV_HOSTNAME"  # overrides the host name (tests simulate several hosts with it)
COUNT_TRIES = 20


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


def create_json_atomic(path, document, schema_name=None) -> bool:
    """Like :func:`write_json_atomic`, but only when ``path`` does not exist yet; returns whether
    this call created it (of several writers racing, exactly one does)."""
    return create_text_atomic(path, _checked_json(path, document, schema_name))


def host_name() -> str:
    """This machine's name as written into temporary scene folders (``CLEVR_REMV_HOSTNAME``
    overrides it)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", os.environ.get(HOST_ENV) or socket.gethostname())


def _temporary_owner(name: str):
    """(host, pid) of a ``.tmp-NNNNNN-<host>-<pid>`` scene folder; None for other names."""
    match = re.fullmatch(re.escape(TMP_PREFIX) + r"\d+-(.+)-(\d+)", name)
    return (match.group(1), int(match.group(2))) if match else None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _last_change(path: Path) -> float:
    """The newest modification time of a folder and its direct entries (the views are written
    into its rgb/ and index/ subfolders)."""
    times = [path.stat().st_mtime]
    with contextlib.suppress(OSError):
        times += [entry.stat().st_mtime for entry in path.iterdir()]
    return max(times)


def remove_stale_temporaries(scenes_dir, stale_after: float) -> list:
    """Delete leftover temporary scene folders; return their paths.

    A folder goes when it is this host's and its process is gone (or is this process, i.e. a
    leftover of an earlier process with the same pid), or when nothing in it changed for
    ``stale_after`` seconds. Other hosts' recent folders may be scenes in progress and stay.
    """
    scenes_dir, host, now = Path(scenes_dir), host_name(), time.time()
    removed = []
    for path in sorted(scenes_dir.glob(TMP_PREFIX + "*")) if scenes_dir.is_dir() else []:
        owner = _temporary_owner(path.name)
        try:
            gone = owner is not None and owner[0] == host and (owner[1] == os.getpid() or not _process_alive(owner[1]))
            if gone or now - _last_change(path) > stale_after:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        except FileNotFoundError:
            continue  # renamed into place or removed by its owner meanwhile
    return removed


@contextlib.contextmanager
def atomic_scene_dir(scenes_dir, index: int):
    """Yield a fresh temporary folder for scene ``index``; rename it into place on success,
    delete it on any error, so a scene folder is never seen half-written. When another run
    completed the scene first, its copy stays and this one is discarded."""
    scenes_dir = Path(scenes_dir)
    scenes_dir.mkdir(parents=True, exist_ok=True)
    final = scenes_dir / scene_folder_name(index)
    tmp = scenes_dir / f"{TMP_PREFIX}{scene_folder_name(index)}-{host_name()}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        try:
            os.rename(tmp, final)
        except OSError as error:
            if error.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not (final / "scene.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class DatasetStore:
    """A CLEVR-REMV dataset root: paths and loaders for every file in it."""

    def __init__(self, root):
        self.root = Path(root)
        self.dataset_json_path = self.root / "dataset.json"
        self.scenes_dir = self.root / "scenes"
        self.splits_path = self.root / "splits.json"
        if not self.dataset_json_path.is_file():
            if is_packed(self.root):
                raise ClevrRemvError(f"{self.root}: a packed dataset (the tar shards of `clevr-remv pack`), but this "
                                     f"command reads the dataset folder: rebuild it with `clevr-remv unpack --data "
                                     f"{self.root} --out DIR` and pass DIR (ClevrRemvDataset and `clevr-remv validate` "
                                     "read the packed folder itself)")
            raise ClevrRemvError(f"{self.root}: not a CLEVR-REMV dataset (no dataset.json); "
                                 "pass the --out folder of `clevr-remv generate`")
        self._info = None

    def info(self) -> dict:
        """dataset.json: format version, generator version, full config, counts."""
        if self._info is None:
            self._info = read_json(self.dataset_json_path, "dataset",
                                   fix="regenerate the dataset description")
        return self._info

    def write_info(self, info: dict) -> None:
        """Replace dataset.json (validated, atomic)."""
        write_json_atomic(self.dataset_json_path, info, "dataset")
        self._info = info

    def refresh_counts(self) -> dict:
        """Recount the complete scenes and their expressions into dataset.json; return the counts.

        Runs that finish together (on several hosts) may overwrite each other's count, so each one
        writes and then checks again until dataset.json agrees with the scene folders.
        """
        for _ in range(COUNT_TRIES):
            scene_ids = self.scene_ids()
            expressions = sum(len(json.loads(self.refexps_path(index).read_text())["expressions"])
                              for index in scene_ids if self.refexps_path(index).is_file())
            self._info = None  # another run may have changed the file
            info = self.info()
            counts = dict(info["counts"], scenes=len(scene_ids), expressions=expressions)
            if counts == info["counts"]:
                return counts
            self.write_info(dict(info, counts=counts))
        raise ClevrRemvError(f"{self.dataset_json_path}: the counts kept changing while recounting; "
                             "run `clevr-remv refexps` or generate again once the other runs have finished")

    @property
    def passes(self) -> tuple:
        """The optional passes the dataset holds beside rgb and index, e.g. ("depth",); datasets
        made before passes were configurable hold none."""
        return tuple(self.info()["config"].get("passes", ()))

    def require_depth(self, source: str, fix: str) -> None:
        """Raise ClevrRemvError naming ``source`` (the flag or argument that asked for depth)
        and ``fix`` unless the dataset has depth maps."""
        if "depth" not in self.passes:
            raise ClevrRemvError(f"{source}: the dataset {self.root} has no depth maps (it was generated "
                                 f"without `--passes depth`); {fix}")

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
        return sorted(int(p.name) for p in self.scenes_dir.iterdir()
                      if p.name.isdigit() and (p / "scene.json").is_file())

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
        return read_json(self.scene_json_path(index), "scene" if check else None,
                         fix=f"regenerate scene {index}")

    def load_refexps(self, index: int, check: bool = True) -> dict:
        """refexps.json of scene ``index``; ``check`` as for :meth:`load_scene`."""
        return read_json(self.refexps_path(index), "refexps" if check else None,
                         fix=f"regenerate the referring expressions of scene {index} "
                             "(run `clevr-remv refexps`)")

    def load_splits(self) -> dict:
        if not self.splits_path.is_file():
            raise ClevrRemvError(f"{self.splits_path}: the dataset has no split file; "
                                 f"run `clevr-remv split --data {self.root}` first")
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
        :mod:`clevr_remv.dataset.depth`)."""
        with open_image(self.depth_path(index, u, v), self._image_fix(index)) as image:
            return decode_depth(np.asarray(image), self.info()["depth_scale"])

    def _image_fix(self, index: int) -> str:
        return (f"delete scene folder {self.scene_dir(index)} and rerun `clevr-remv generate` with the same "
                f"flags to render it again (`clevr-remv validate --data {self.root}` lists every broken file)")
