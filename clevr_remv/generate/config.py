"""Generation settings: defaults (the paper's specification), validation, and the stored form."""

import dataclasses

from clevr_remv.dataset.depth import OPTIONAL_PASSES
from clevr_remv.errors import ClevrRemvError
from clevr_remv.generate.rig import RIG_TYPES

# Default samples and baseline are justified by benchmarks/bench_render.py and
# benchmarks/bench_baseline.py (figures in the README).
DEFAULT_SAMPLES = 4
DEFAULT_BASELINE = 0.1
# CLEVR's lens (on a 32 mm sensor); the paper's "focal points at 2.5cm" is discussed in docs/multiview.md.
DEFAULT_LENS_MM = 35.0
# --min-pixels follows the view's pixel count: 200 at 480x320 (a quarter of what the smallest
# object shows at the scene centre), 50 at 240x160, 8 at 96x64.
MIN_PIXELS_AT_480X320 = 200
# The smallest views: CLEVR's smallest object covers about 4 pixels at the scene centre at 32x24
# (refused below), 32 at 96x64 (warned below: referents of a pixel or two in the outer views).
MIN_VIEW, SMALL_VIEW = (32, 24), (96, 64)


def default_min_pixels(width: int, height: int) -> int:
    """The default --min-pixels for views of ``width`` x ``height``: 200 at 480x320, scaled with
    the pixel count (objects cover a fixed share of the view), at least 1."""
    return max(1, round(MIN_PIXELS_AT_480X320 * width * height / (480 * 320)))


def smallest_object_pixels(width: int, height: int) -> float:
    """About how many pixels CLEVR's smallest object covers at the scene centre in a view of
    ``width`` x ``height``: four times the default --min-pixels before rounding (800 at 480x320)."""
    return 4 * MIN_PIXELS_AT_480X320 * width * height / (480 * 320)


def small_view_warning(width: int, height: int):
    """A warning for views smaller than `SMALL_VIEW` (in pixels), or None."""
    if width * height >= SMALL_VIEW[0] * SMALL_VIEW[1]:
        return None
    return (
        f"views of {width}x{height} are small: CLEVR's smallest object covers about "
        f"{smallest_object_pixels(width, height):.0f} pixels at the scene centre and fewer in the outer views, "
        f"so some referents show a pixel or two; use {SMALL_VIEW[0]}x{SMALL_VIEW[1]} or more for data to "
        "train or test on"
    )


@dataclasses.dataclass(frozen=True)
class GenerateConfig:
    """Everything that decides what `generate` writes (the dataset's identity).

    Run-time settings that do not change the images' content (workers, device, Blender
    binary) are not part of it.
    """

    seed: int = 0
    grid: int = 9
    width: int = 480
    height: int = 320
    samples: int = DEFAULT_SAMPLES
    denoise: bool = True
    baseline: float = DEFAULT_BASELINE
    lens: float = DEFAULT_LENS_MM
    rig: str = "parallel"
    min_objects: int = 3
    max_objects: int = 10
    min_pixels: int = None  # None: default_min_pixels of the view size
    properties: dict = dataclasses.field(default_factory=dict)
    passes: tuple = ()  # optional passes beside rgb and index, e.g. ("depth",)

    def __post_init__(self):
        object.__setattr__(self, "passes", tuple(sorted(set(self.passes))))
        if self.min_pixels is None and self.width > 0 and self.height > 0:
            object.__setattr__(self, "min_pixels", default_min_pixels(self.width, self.height))
        unknown = [name for name in self.passes if name not in OPTIONAL_PASSES]
        if unknown:
            raise ClevrRemvError(
                f"--passes: {', '.join(map(repr, unknown))} is not a pass; choose from "
                f"{', '.join(OPTIONAL_PASSES)} (rgb and index are always written)"
            )
        checks = [
            (self.grid >= 1 and self.grid % 2 == 1, "--grid", f"{self.grid} must be a positive odd number (e.g. 9)"),
            (self.width > 0, "--width", f"{self.width} must be > 0"),
            (self.height > 0, "--height", f"{self.height} must be > 0"),
            (
                self.width * self.height >= MIN_VIEW[0] * MIN_VIEW[1],
                "--width/--height",
                f"{self.width}x{self.height} is too small a view: CLEVR's smallest object would cover "
                f"about {smallest_object_pixels(self.width, self.height):.1f} pixels at the scene centre; use at "
                f"least {MIN_VIEW[0]}x{MIN_VIEW[1]} ({SMALL_VIEW[0]}x{SMALL_VIEW[1]} or more for data to train or "
                "test on)",
            ),
            (self.samples >= 1, "--samples", f"{self.samples} must be >= 1"),
            (self.baseline >= 0, "--baseline", f"{self.baseline} must be >= 0"),
            (self.lens > 0, "--lens", f"{self.lens} must be > 0 (millimetres on a 32 mm sensor, e.g. 35)"),
            (self.rig in RIG_TYPES, "--rig", f"{self.rig!r} must be one of {', '.join(RIG_TYPES)}"),
            (1 <= self.min_objects <= 255, "--min-objects", f"{self.min_objects} must be between 1 and 255"),
            (1 <= self.max_objects <= 255, "--max-objects", f"{self.max_objects} must be between 1 and 255"),
            (
                self.min_objects <= self.max_objects,
                "--min-objects",
                f"{self.min_objects} is greater than --max-objects {self.max_objects}",
            ),
            (self.min_pixels is None or self.min_pixels >= 0, "--min-pixels", f"{self.min_pixels} must be >= 0"),
        ]
        for ok, flag, message in checks:
            if not ok:
                raise ClevrRemvError(f"{flag}: {message}")

    def to_dict(self) -> dict:
        return dict(dataclasses.asdict(self), passes=list(self.passes))

    @classmethod
    def from_dict(cls, stored: dict) -> "GenerateConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in stored.items() if key in fields})
