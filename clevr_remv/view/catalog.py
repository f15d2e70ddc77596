"""The dataset as the viewer shows it: a scene list to filter, each scene's detail, and the
files of the dataset root (never a file outside it)."""

from pathlib import Path

import numpy as np
from tqdm import tqdm

from clevr_remv.dataset.images import open_image
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.errors import ClevrRemvError
from clevr_remv.geometry import view_name


class NotInDataset(LookupError):
    """A scene, view, expression or object that the dataset does not have (HTTP 404)."""


class Catalog:
    """Scene summaries of a dataset (read once) and per-scene detail, files and images."""

    def __init__(self, root, progress: bool = False):
        self.store = DatasetStore(root)
        self.store.info()  # a clear error now for a broken dataset.json
        self.root = self.store.root.resolve()
        ids = self.store.scene_ids()
        self.summaries = {
            index: self._summary(index) for index in tqdm(ids, desc="index scenes", unit="scene", disable=not progress)
        }

    def _summary(self, index: int) -> dict:
        """Index, object count and expression texts of a scene; a broken scene keeps its error."""
        try:
            objects = len(self.store.load_scene(index)["objects"])
            texts = [(e["id"], e["text"]) for e in self.store.load_refexps(index)["expressions"]]
        except ClevrRemvError as error:
            return {"index": index, "objects": None, "expressions": 0, "texts": [], "error": str(error)}
        return {"index": index, "objects": objects, "expressions": len(texts), "texts": texts, "error": None}

    def scene_list(self, query: str = "") -> list:
        """Summaries of the scenes with an expression containing ``query`` (case-insensitive;
        all scenes when empty); ``matches`` lists the ids of the matching expressions."""
        query = query.strip().lower()
        listed = []
        for summary in self.summaries.values():
            matches = [id_ for id_, text in summary["texts"] if query in text.lower()]
            if query and not matches:
                continue
            listed.append(
                {key: summary[key] for key in ("index", "objects", "expressions", "error")}
                | {"matches": matches if query else []}
            )
        return listed

    def check_scene(self, index: int) -> None:
        """Raise NotInDataset unless ``index`` is a complete scene of the dataset."""
        if index not in self.summaries:
            raise NotInDataset(f"scene {index} is not a scene of {self.store.root}")

    def check_view(self, index: int, u: int, v: int) -> None:
        """Raise NotInDataset unless (u, v) is a view of scene ``index``."""
        self.check_scene(index)
        if not (1 <= u <= self.store.grid and 1 <= v <= self.store.grid):
            raise NotInDataset(f"view {view_name(u, v)} is not in this {self.store.grid}x{self.store.grid} grid")

    def object_count(self, index: int) -> int:
        """The number of objects of scene ``index`` (ClevrRemvError when its scene.json is broken)."""
        self.check_scene(index)
        if self.summaries[index]["error"]:
            raise ClevrRemvError(self.summaries[index]["error"])
        return self.summaries[index]["objects"]

    def expression(self, index: int, expression_id: int) -> dict:
        """Expression ``expression_id`` of scene ``index``; NotInDataset when there is none."""
        self.check_scene(index)
        for expression in self.store.load_refexps(index)["expressions"]:
            if expression["id"] == expression_id:
                return expression
        raise NotInDataset(f"scene {index} has no expression {expression_id}")

    def has_depth(self, index: int) -> bool:
        """Whether scene ``index`` has a depth folder (``generate --passes depth``)."""
        return self.store.depth_path(index, *self.store.center).parent.is_dir()

    def url(self, path: Path) -> str:
        """The /data/ address of a file of the dataset."""
        return "/data/" + path.relative_to(self.store.root).as_posix()

    def scene_detail(self, index: int) -> dict:
        """Everything the page needs about one scene (objects, expressions, views, image URLs)."""
        self.check_scene(index)
        scene, refexps = self.store.load_scene(index), self.store.load_refexps(index)
        depth = self.has_depth(index)
        return {
            "index": index,
            "width": scene["width"],
            "height": scene["height"],
            "grid": self.store.grid,
            "center": list(self.store.center),
            "depth": depth,
            "objects": [
                {"id": number, **{key: obj[key] for key in ("shape", "size", "material", "color")}}
                for number, obj in enumerate(scene["objects"], 1)
            ],
            "expressions": refexps["expressions"],
            "views": [
                {
                    "u": u,
                    "v": v,
                    "name": view_name(u, v),
                    "rgb": self.url(self.store.rgb_path(index, u, v)),
                    "depth": self.url(self.store.depth_path(index, u, v)) if depth else None,
                }
                for u, v in self.store.views()
            ],
        }

    def dataset_file(self, relative: str):
        """The path of ``relative`` inside the dataset root (which may not exist), or None when
        the path leaves the root: ``..``, an absolute path, a symlink pointing out."""
        if "\x00" in relative:
            return None
        path = (self.root / relative).resolve()
        return path if path.is_relative_to(self.root) else None

    def read_index(self, index: int, u: int, v: int) -> np.ndarray:
        """The object-index mask of a view (uint8, 0 = background); ClevrRemvError when the
        file is missing or corrupt."""
        return read_image(self.store.index_path(index, u, v))

    def read_depth(self, index: int, u: int, v: int) -> np.ndarray:
        """The stored depth counts of a view; ClevrRemvError when missing or corrupt."""
        return read_image(self.store.depth_path(index, u, v))


def read_image(path: Path, load=np.asarray):
    """``load(image)`` of the image file ``path``; a missing file raises NotInDataset and an
    undecodable one ClevrRemvError (the server answers both with a message and keeps running)."""
    fix = "regenerate its scene (delete the scene folder and run `clevr-remv generate` again with the same arguments)"
    if not path.is_file():
        raise NotInDataset(f"{path}: missing; {fix}")
    with open_image(path, fix) as image:
        return load(image)


def check_image(path: Path) -> None:
    """Decode an image file fully; ClevrRemvError when it is missing, corrupt or truncated."""
    read_image(path, lambda image: image.load())
