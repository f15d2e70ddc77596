"""Reading and checking a folder of disparity maps to score: one PFM per scene, named as the hci-lf
export names the scene (``clevr_remv_NNNNNN.pfm``), either directly in the folder or in the 4D
Light Field Benchmark's submission layout (``disp_maps/<scene>.pfm``, and optionally
``runtimes/<scene>.txt`` holding the seconds the method took)."""

import math
from pathlib import Path

import numpy as np

from clevr_remv.dataset.pfm import read_pfm
from clevr_remv.errors import ClevrRemvError
from clevr_remv.wording import plural

MAPS_FOLDER = "disp_maps"
RUNTIMES_FOLDER = "runtimes"
ANTI_CORRELATION = -0.5  # a Pearson r below this against the truth means a flipped convention


def _listing(names, limit: int = 5) -> str:
    names = sorted(names)
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


class Submission:
    """The disparity maps (and runtimes, when given) of the scenes ``names`` (the benchmark's scene
    names) in folder ``path``; ``split`` names the split in messages. Every scene needs a map,
    and a map of any other scene is refused."""

    def __init__(self, path, names, split: str):
        self.path = Path(path)
        if not self.path.is_dir():
            raise ClevrRemvError(
                f"--predictions {self.path}: not a folder; pass a folder of <scene>.pfm "
                f"files or a benchmark submission folder with {MAPS_FOLDER}/"
            )
        folder = self.path / MAPS_FOLDER if (self.path / MAPS_FOLDER).is_dir() else self.path
        self.maps = {file.stem: file for file in folder.glob("*.pfm")}
        not_files = [path.name for path in self.maps.values() if not path.is_file()]
        if not_files:
            one = len(not_files) == 1
            raise ClevrRemvError(
                f"--predictions {folder}: {_listing(not_files)} {'is not a file' if one else 'are not files'} (a "
                "folder or a broken link), but each scene's disparity map is one PFM file; move "
                f"{'it' if one else 'them'} out of the folder or put the map there"
            )
        example = sorted(names)[0] if names else "clevr_remv_000000"
        if not self.maps:
            raise ClevrRemvError(
                f"--predictions {folder}: no .pfm files; write one disparity map per scene "
                f"of split {split!r}, named as the hci-lf export names the scene "
                f"(e.g. {example}.pfm), directly or in {MAPS_FOLDER}/"
            )
        missing, extra = set(names) - set(self.maps), set(self.maps) - set(names)
        if missing:
            raise ClevrRemvError(
                f"--predictions {folder}: no disparity map for {plural(len(missing), 'scene')} of split "
                f"{split!r}: {_listing(n + '.pfm' for n in missing)}; write one per scene"
            )
        if extra:
            raise ClevrRemvError(
                f"--predictions {folder}: {_listing(self.maps[n].name for n in extra)} "
                f"{'is' if len(extra) == 1 else 'are'} not a scene of split {split!r}; remove "
                f"{'it' if len(extra) == 1 else 'them'} or pass the --split "
                f"{'it belongs' if len(extra) == 1 else 'they belong'} to"
            )
        runtimes = self.path / RUNTIMES_FOLDER
        self.runtimes = runtimes if runtimes.is_dir() else None

    def disparity(self, name: str, shape) -> np.ndarray:
        """Scene ``name``'s map, checked to be ``shape`` (height, width) and finite everywhere."""
        path = self.maps[name]
        estimate = read_pfm(path)
        if estimate.shape != tuple(shape):
            raise ClevrRemvError(
                f"{path}: {estimate.shape[1]}x{estimate.shape[0]} pixels, but scene {name} is "
                f"{shape[1]}x{shape[0]}; write the centre view's disparity at the dataset's "
                "resolution"
            )
        bad = ~np.isfinite(estimate)
        if bad.any():
            row, column = np.argwhere(bad)[0]
            raise ClevrRemvError(
                f"{path}: {plural(int(bad.sum()), 'pixel')} with NaN or infinity (the first at row {row}, "
                f"column {column}); write a finite disparity for every pixel (the benchmark's "
                "toolkit would leave them out of MSE and Q25, and count a NaN as correct in BadPix)"
            )
        return estimate

    def runtime(self, name: str):
        """Seconds from ``runtimes/<name>.txt``, or None when the submission has no runtimes folder."""
        if self.runtimes is None:
            return None
        path = self.runtimes / f"{name}.txt"
        if not path.is_file():
            raise ClevrRemvError(
                f"{path}: missing; with a {RUNTIMES_FOLDER}/ folder every scene needs its "
                "runtime in seconds (or remove the folder)"
            )
        try:
            seconds = float(path.read_text().strip())
        except ValueError:
            seconds = math.nan
        if not math.isfinite(seconds) or seconds < 0:
            raise ClevrRemvError(
                f"{path}: {path.read_text().strip()[:40]!r} is not a runtime; write the seconds "
                "the method took on this scene as one number, e.g. 12.5"
            )
        return seconds


def check_convention(estimate: np.ndarray, truth: np.ndarray, depth: np.ndarray, mask: np.ndarray, path) -> None:
    """Refuse a map that cannot be disparity in the benchmark's convention: its median far outside
    the scene's true disparity range (z-depth, or another scale), or a clear anti-correlation with
    the truth (the opposite sign, or depth)."""
    values, true_values = estimate[mask], truth[mask]
    low, high = float(true_values.min()), float(true_values.max())
    span = max(high - low, 0.5)
    level = float(np.median(values))
    convention = (
        "disparity in pixels per camera step at the dataset's resolution, positive in front of the "
        "focus plane: d = baseline * f_px * (1/Z - 1/Z_focus) (parameters.cfg of the hci-lf export)"
    )
    if not low - span <= level <= high + span:
        depths = depth[mask & np.isfinite(depth)]
        looks = (
            f"looks like z-depth (this scene's depth is {depths.min():.3g} to {depths.max():.3g} m)"
            if depths.size and 0.5 * depths.min() <= level <= 2 * depths.max()
            else "is not in that range"
        )
        raise ClevrRemvError(
            f"{path}: median value {level:.4g}, but the scene's disparity is {low:.3g} to "
            f"{high:.3g} px; the map {looks}. Write {convention}"
        )
    if values.std() > 0 and true_values.std() > 0:
        correlation = float(np.corrcoef(values.astype(np.float64), true_values.astype(np.float64))[0, 1])
        if correlation < ANTI_CORRELATION:
            raise ClevrRemvError(
                f"{path}: the map falls where the true disparity rises (correlation "
                f"{correlation:.2f}): the opposite sign, or depth instead of disparity. Write "
                f"{convention}; nearer is larger"
            )
