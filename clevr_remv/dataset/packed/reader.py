"""Random access to a packed folder: the manifest, and one split's members read by offset.

`PackedStore` answers what `DatasetStore` answers about the
dataset (info, grid, passes); `PackedStore.split_reader` opens one split for the views a
reader needs, from the smallest packed subset that holds them, and reads refexps.json and the
views' images with one positioned read each (member offsets from the shards' index files). It
pickles without its open files, so DataLoader workers open their own.
"""

import io
import json
import os
import weakref
from pathlib import Path

import numpy as np
from PIL import Image

from clevr_remv.dataset.depth import decode_depth
from clevr_remv.dataset.images import IMAGE_ERRORS
from clevr_remv.dataset.packed.layout import scene_key, view_fields
from clevr_remv.dataset.packed.manifest import choose_subset, read_manifest, shards_of
from clevr_remv.dataset.packed.tarshard import read_member
from clevr_remv.errors import ClevrRemvError
from clevr_remv.geometry import grid_center
from clevr_remv.schemas import read_json, validate


class PackedStore:
    """A packed folder: its manifest and the description of the dataset it holds."""

    def __init__(self, root):
        self.root = Path(root)
        self.manifest = read_manifest(self.root)

    def info(self) -> dict:
        """The packed dataset's dataset.json."""
        return self.manifest["dataset"]

    @property
    def grid(self) -> int:
        return self.info()["config"]["grid"]

    @property
    def center(self) -> tuple:
        return grid_center(self.grid)

    @property
    def passes(self) -> tuple:
        return tuple(self.info()["config"].get("passes", ()))

    def require_depth(self, source: str, fix: str) -> None:
        """As `DatasetStore.require_depth`."""
        if "depth" not in self.passes:
            raise ClevrRemvError(
                f"{source}: the packed dataset {self.root} has no depth maps (it was generated "
                f"without `--passes depth`); {fix}"
            )

    def split_reader(self, split: str, views, passes=()) -> "PackedSplit":
        """A reader of ``split``'s scenes for ``views`` (list of (u, v)) and optional ``passes``."""
        name = choose_subset(self.manifest, self.root, split, views, passes)
        return PackedSplit(self, name, split, views, passes)


class PackedSplit:
    """One split of one packed subset, for given views: scene ids, refexps and images by offset."""

    def __init__(self, store: PackedStore, subset: str, split: str, views, passes=()):
        self.root, self.subset, self.split = store.root, subset, split
        self._depth_scale = store.info().get("depth_scale")
        record = store.manifest["subsets"][subset]
        wanted = ["refexps.json"] + [field for u, v in views for field in view_fields(u, v, passes)]
        columns = [record["fields"].index(field) for field in wanted]
        self._column = {field: i for i, field in enumerate(wanted)}
        self._shards = [shard["name"] for shard in shards_of(record, split)]
        self._row, shard_of, offsets, sizes = {}, [], [], []
        for number, shard in enumerate(shards_of(record, split)):
            index = self._read_index(shard, record["fields"])
            for sample in index["samples"]:
                self._row[int(sample["key"])] = len(shard_of)
                shard_of.append(number)
                members = np.asarray(sample["members"], np.int64).reshape(-1, 2)[columns]
                offsets.append(members[:, 0])
                sizes.append(members[:, 1])
        self._shard_of = np.asarray(shard_of, np.int32)
        self._offsets = np.asarray(offsets, np.int64).reshape(len(shard_of), len(wanted))
        self._sizes = np.asarray(sizes, np.int64).reshape(len(shard_of), len(wanted))
        self._fds, self._pid = _process_files(self), os.getpid()

    def _read_index(self, shard: dict, fields: list) -> dict:
        path = self.root / shard["index"]["name"]
        fix = f"run `clevr-remv validate --data {self.root}`, then rerun the `clevr-remv pack` command that wrote it"
        index = read_json(path, "packed_index", fix=fix)
        keys = [sample["key"] for sample in index["samples"]]
        if (
            index["fields"] != fields
            or keys != [scene_key(scene) for scene in shard["scenes"]]
            or any(len(sample["members"]) != len(fields) for sample in index["samples"])
        ):
            raise ClevrRemvError(
                f"{path}: does not match manifest.json's record of {shard['name']} (other samples or fields); {fix}"
            )
        return index

    def scene_ids(self) -> list:
        """The split's scenes in shard order (ascending)."""
        return list(self._row)

    def shard_of(self, scene: int) -> int:
        """The position of the shard holding ``scene`` among this split's shards."""
        return int(self._shard_of[self._row[scene]])

    def member_name(self, scene: int, field: str) -> str:
        """``<shard path>:<key>.<field>``: where a member lives, for messages."""
        return f"{self.root / self._shards[self.shard_of(scene)]}:{scene_key(scene)}.{field}"

    def refexps_path(self, scene: int) -> str:
        return self.member_name(scene, "refexps.json")

    def _fd(self, number: int) -> int:
        if self._pid != os.getpid():  # a forked DataLoader worker: open its own files
            self._fds, self._pid = _process_files(self), os.getpid()
        if number not in self._fds:
            path = self.root / self._shards[number]
            try:
                self._fds[number] = os.open(path, os.O_RDONLY)
            except OSError as error:
                raise ClevrRemvError(
                    f"{path}: cannot open the shard ({error.strerror}); run `clevr-remv validate "
                    f"--data {self.root}` and rerun the `clevr-remv pack` command that wrote it"
                ) from error
        return self._fds[number]

    def read(self, scene: int, field: str) -> bytes:
        """The bytes of member ``field`` (e.g. ``u5_v5.rgb.png``) of ``scene``."""
        row, column = self._row[scene], self._column[field]
        return read_member(
            self._fd(int(self._shard_of[row])),
            int(self._offsets[row, column]),
            int(self._sizes[row, column]),
            self.member_name(scene, field),
        )

    def load_refexps(self, scene: int, check: bool = True) -> dict:
        """refexps.json of ``scene`` (schema-checked unless ``check`` is False)."""
        name = self.refexps_path(scene)
        try:
            document = json.loads(self.read(scene, "refexps.json"))
        except ValueError as error:
            raise ClevrRemvError(
                f"{name}: not valid JSON ({error}); run `clevr-remv validate --data {self.root}`"
            ) from error
        if check:
            validate(document, "refexps", name)
        return document

    def _image(self, scene: int, u: int, v: int, kind: str) -> Image.Image:
        field = f"u{u}_v{v}.{kind}.png"
        try:
            image = Image.open(io.BytesIO(self.read(scene, field)))
            image.load()
        except IMAGE_ERRORS as error:
            raise ClevrRemvError(
                f"{self.member_name(scene, field)}: cannot be read as an image ({error}); run "
                f"`clevr-remv validate --data {self.root}` and rerun the `clevr-remv pack` command "
                "that wrote the shard"
            ) from error
        return image

    def read_rgb(self, scene: int, u: int, v: int) -> np.ndarray:
        """As `DatasetStore.read_rgb`: uint8 (H, W, 3)."""
        image = self._image(scene, u, v, "rgb")
        return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))

    def read_index(self, scene: int, u: int, v: int) -> np.ndarray:
        """As `DatasetStore.read_index`: uint8 (H, W), 0 = background, k = object k."""
        return np.asarray(self._image(scene, u, v, "index"))

    def read_depth(self, scene: int, u: int, v: int) -> np.ndarray:
        """As `DatasetStore.read_depth`: float32 (H, W) world units, 0 = no value."""
        return decode_depth(np.asarray(self._image(scene, u, v, "depth")), self._depth_scale)

    def close(self) -> None:
        """Close the shard files this process opened (later reads open them again)."""
        _close_files(self._fds, self._pid)

    def __getstate__(self):
        return dict(self.__dict__, _pid=None)  # the unpickled copy opens its own files

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._fds, self._pid = _process_files(self), os.getpid()


def _process_files(owner) -> dict:
    """An empty {shard number: fd} table of this process, closed when ``owner`` is collected."""
    files = {}
    weakref.finalize(owner, _close_files, files, os.getpid())
    return files


def _close_files(files: dict, pid: int) -> None:
    if pid == os.getpid():
        for fd in files.values():
            os.close(fd)
    files.clear()
