"""Score the centre-view disparity of every scene of a split, the 4D Light Field Benchmark's way,
and write the reports: ``results.json``, ``results.md`` and ``error_maps.png``.

The ground truth is the disparity the hci-lf export writes (``gt_disp_lowres.pfm``), computed from
the dataset's centre-view depth map. Estimates come from a folder of PFM files
(`Submission`) or from a reference estimator, whose maps
and runtimes are written to ``OUT`` in the benchmark's submission layout.
"""

import math
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from clevr_remv.dataset.atomic import atomic_path, write_text_atomic
from clevr_remv.dataset.export.hci_lf import depth_or_infinity, scene_name
from clevr_remv.dataset.outdir import check_output_dir, only_names, write_manifest
from clevr_remv.dataset.pfm import read_pfm, write_pfm
from clevr_remv.dataset.splits import split_scene_ids
from clevr_remv.dataset.store import DatasetStore, json_safe, write_json_atomic
from clevr_remv.depth_bench.estimators import ESTIMATORS, constant_estimate, plane_sweep, sweep_hypotheses
from clevr_remv.depth_bench.metrics import METRICS, border_pixels, evaluation_mask, score
from clevr_remv.depth_bench.predictions import MAPS_FOLDER, RUNTIMES_FOLDER, Submission, check_convention
from clevr_remv.depth_bench.regions import REGIONS, band_radius, region_masks
from clevr_remv.errors import ClevrRemvError
from clevr_remv.geometry import disparity
from clevr_remv.wording import plural

REPORT_NAMES = ("results.json", "results.md", "error_maps.png")
FIGURE_ERROR_RANGE = 0.2  # px: the signed error map's colour limits (the toolkit's)
LABELS = {
    "badpix_0.07": "BadPix 0.07 (%)",
    "badpix_0.03": "BadPix 0.03 (%)",
    "badpix_0.01": "BadPix 0.01 (%)",
    "mse_x100": "MSE x100",
    "q25_x100": "Q25 x100",
    "runtime": "runtime (s)",
}


def split_indices(store: DatasetStore, split: str) -> list:
    """The scene indices of ``split``; ``all`` is every complete scene unless splits.json names a
    split ``all`` (the hci-lf export's split without splits.json)."""
    has_splits = store.splits_path.is_file()
    if split == "all" and not (has_splits and "all" in store.load_splits()["splits"]):
        indices = store.scene_ids()
        if not indices:
            raise ClevrRemvError(
                f"--data {store.root}: the dataset has no complete scenes; run `clevr-remv generate` first"
            )
        return indices
    if not has_splits:
        raise ClevrRemvError(
            f"--split {split}: the dataset {store.root} has no splits.json; run `clevr-remv split "
            f"--data {store.root}` first, or pass --split all to score every scene"
        )
    return sorted(split_scene_ids(store, split))


def ground_truth(store: DatasetStore, index: int, scene: dict) -> tuple:
    """Scene ``index``'s (``scene``: its scene.json) centre view: z-depth (inf = no surface), true
    disparity (float32, the hci-lf export's gt_disp_lowres.pfm) and index mask."""
    centre = store.center
    depth = depth_or_infinity(store.read_depth(index, *centre))
    truth = disparity(depth, scene, centre).astype(np.float32)
    return depth, truth, store.read_index(index, *centre)


def estimate_scene(store: DatasetStore, index: int, estimator: str, truth, mask) -> tuple:
    """A reference estimator's map of scene ``index`` and its runtime in seconds (the estimate
    alone, from decoded images to the map). The sweep searches the centre view's true disparity
    range, which the benchmark's parameters.cfg hands every method (disp_min, disp_max)."""
    if estimator == "constant":
        start = time.perf_counter()
        estimate = constant_estimate(truth, mask)
        return estimate, time.perf_counter() - start
    images = {(u, v): store.read_rgb(index, u, v) for u, v in store.views()}
    hypotheses = sweep_hypotheses(float(truth.min()), float(truth.max()))
    start = time.perf_counter()
    estimate = plane_sweep(images, store.center, hypotheses)
    return estimate, time.perf_counter() - start


def _write_estimate(out: Path, name: str, estimate, seconds: float) -> None:
    """An estimator's map and runtime in the benchmark's submission layout under ``out``."""
    (out / MAPS_FOLDER).mkdir(parents=True, exist_ok=True)
    (out / RUNTIMES_FOLDER).mkdir(exist_ok=True)
    with atomic_path(out / MAPS_FOLDER / f"{name}.pfm") as tmp:
        write_pfm(tmp, estimate)
    write_text_atomic(out / RUNTIMES_FOLDER / f"{name}.txt", f"{seconds:.6f}\n")


def _mean(rows: list, keys) -> dict:
    """Per key the mean over ``rows`` of its defined (non-NaN) values; NaN when there are none."""
    means = {}
    for key in keys:
        values = [row[key] for row in rows if key in row and not math.isnan(row[key])]
        means[key] = float(np.mean(values)) if values else math.nan
    return means


def evaluate_depth(
    data,
    predictions=None,
    estimator=None,
    split: str = "test",
    out="depth-evaluation",
    border=None,
    progress: bool = True,
) -> dict:
    """Score ``predictions`` (a folder of PFM disparity maps) or a reference ``estimator``
    (``constant`` or ``sweep``) on ``split`` of dataset ``data``; ``border`` pixels are ignored on
    each side (default: [`border_pixels`][clevr_remv.depth_bench.metrics.border_pixels]). Writes the reports
    to ``out`` and returns the results dict."""
    if (predictions is None) == (estimator is None):
        raise ClevrRemvError(
            "--predictions / --estimator: pass exactly one of them; --predictions for a folder "
            f"of disparity maps, --estimator {'|'.join(ESTIMATORS)} for a reference"
        )
    if estimator is not None and estimator not in ESTIMATORS:
        raise ClevrRemvError(f"--estimator: unknown estimator {estimator!r}; choose one of {', '.join(ESTIMATORS)}")
    store = DatasetStore(data)
    out = check_output_dir(out, "evaluate-depth", {"--data": data, "--predictions": predictions}, ours=_earlier_output)
    store.require_depth(
        "evaluate-depth", "regenerate it with `clevr-remv generate --passes depth` (the ground truth is the depth pass)"
    )
    names = {scene_name(index): index for index in split_indices(store, split)}
    if not names:
        raise ClevrRemvError(
            f"--split {split}: the split has no scenes; choose another split or rerun "
            f"`clevr-remv split --data {store.root}` with other --ratios"
        )
    source = Submission(predictions, names, split) if predictions is not None else None
    config = store.info()["config"]
    results = _header(split, predictions, estimator, (config["height"], config["width"]), border)
    if estimator is not None:
        write_manifest(out, "evaluate-depth")  # its maps are written scene by scene
    scene_scores, region_scores = {}, {region: {} for region in REGIONS}
    for name, index in tqdm(names.items(), desc=f"evaluate-depth {split}", unit="scene", disable=not progress):
        scene = store.load_scene(index, check=False)
        depth, truth, index_mask = ground_truth(store, index, scene)
        mask = evaluation_mask(truth.shape, results["border_px"])
        if source is not None:
            estimate = source.disparity(name, truth.shape)
            check_convention(estimate, truth, depth, mask, source.maps[name])
            runtime = source.runtime(name)
        else:
            estimate, runtime = estimate_scene(store, index, estimator, truth, mask)
            _write_estimate(out, name, estimate, runtime)
        scene_scores[name] = dict(score(estimate, truth, mask), **({} if runtime is None else {"runtime": runtime}))
        for region, region_mask in region_masks(index_mask, depth, truth, scene).items():
            region_scores[region][name] = dict(
                score(estimate, truth, mask & region_mask), pixels=int((mask & region_mask).sum())
            )
    keys = METRICS + (("runtime",) if all("runtime" in s for s in scene_scores.values()) else ())
    results.update(
        scenes=scene_scores,
        mean=_mean(list(scene_scores.values()), keys),
        regions={
            region: {"mean": _mean(list(rows.values()), METRICS + ("pixels",)), "scenes": rows}
            for region, rows in region_scores.items()
        },
    )
    write_reports(results, store, source, out)
    return results


def _earlier_output(folder: Path) -> bool:
    """Whether ``folder`` is a report of evaluate-depth from before output manifests: its reports,
    with an estimator's maps and runtimes (a method's own submission has no results.json)."""
    return (folder / "results.json").is_file() and only_names(*REPORT_NAMES, MAPS_FOLDER, RUNTIMES_FOLDER)(folder)


def _header(split: str, predictions, estimator, shape, border) -> dict:
    """The settings part of the results, with the border checked against the image size."""
    height, width = shape
    border = border_pixels(width, height) if border is None else border
    if border < 0 or 2 * border >= min(width, height):
        raise ClevrRemvError(
            f"--border {border}: must be at least 0 and leave pixels inside a {width}x{height} "
            f"image; the default for this size is {border_pixels(width, height)}"
        )
    return {
        "split": split,
        "predictions": None if predictions is None else str(predictions),
        "estimator": estimator,
        "resolution": [width, height],
        "border_px": border,
        "occlusion_band_px": band_radius(width, height),
        "metrics": list(METRICS),
    }


def _cell(value, key: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return {"runtime": f"{value:.3g}", "pixels": f"{value:.0f}"}.get(key, f"{value:.2f}")


def markdown_report(results: dict) -> str:
    """results.md: the per-scene table with the mean, then the means per region."""
    source = (
        f"estimator `{results['estimator']}`" if results["estimator"] else f"predictions `{results['predictions']}`"
    )
    keys = list(results["mean"])
    width, height = results["resolution"]
    lines = [
        f"# Depth evaluation: {source}, split {results['split']}",
        "",
        f"{plural(len(results['scenes']), 'scene')}, {width}x{height}, centre-view disparity; "
        f"{results['border_px']} px ignored along each border; the 4D Light Field Benchmark's metrics "
        "(lower is better).",
        "",
        "| scene | " + " | ".join(LABELS[k] for k in keys) + " |",
        "|---" * (len(keys) + 1) + "|",
    ]
    rows = list(results["scenes"].items()) + [("**mean**", results["mean"])]
    lines += [f"| {name} | " + " | ".join(_cell(scores.get(k), k) for k in keys) + " |" for name, scores in rows]
    lines += [
        "",
        f"## By region (mean over scenes; occlusion band {results['occlusion_band_px']} px)",
        "",
        "| region | pixels per scene | " + " | ".join(LABELS[k] for k in METRICS) + " |",
        "|---" * (len(METRICS) + 2) + "|",
    ]
    for region, block in results["regions"].items():
        mean = block["mean"]
        lines.append(
            f"| {region} | {_cell(mean['pixels'], 'pixels')} | " + " | ".join(_cell(mean[k]) for k in METRICS) + " |"
        )
    return "\n".join(lines) + "\n"


def figure_scenes(results: dict) -> dict:
    """Scene name -> rank ("best", "median", "worst" by BadPix 0.07; a scene shows once)."""
    ranked = sorted(results["scenes"], key=lambda name: results["scenes"][name]["badpix_0.07"])
    picks = {}
    for rank, name in (("best", ranked[0]), ("median", ranked[len(ranked) // 2]), ("worst", ranked[-1])):
        picks.setdefault(name, rank)
    return picks


def draw_error_maps(results: dict, store: DatasetStore, estimates: dict, path) -> None:
    """error_maps.png: per scene of `figure_scenes` its centre view, true and estimated
    disparity, the signed error and the BadPix 0.07 pixels (the ignored border greyed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ranks = figure_scenes(results)
    names = list(ranks)
    figure = Figure(figsize=(14, 2.6 * len(names)), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(names), 5, squeeze=False)
    indices = {scene_name(index): index for index in store.scene_ids()}
    for row, name in zip(axes, names, strict=True):
        _, truth, _ = ground_truth(store, indices[name], store.load_scene(indices[name], check=False))
        estimate = estimates[name]
        mask = evaluation_mask(truth.shape, results["border_px"])
        low, high = float(truth.min()), float(truth.max())
        error = np.ma.masked_array(truth - estimate, ~mask)
        bad = np.ma.masked_array((np.abs(estimate - truth) > 0.07).astype(float), ~mask)
        panels = [
            (store.read_rgb(indices[name], *store.center), {}, "centre view"),
            (truth, dict(cmap="viridis", vmin=low, vmax=high), "true disparity (px)"),
            (estimate, dict(cmap="viridis", vmin=low, vmax=high), "estimate (px)"),
            (error, dict(cmap="seismic", vmin=-FIGURE_ERROR_RANGE, vmax=FIGURE_ERROR_RANGE), "truth - estimate (px)"),
            (
                bad,
                dict(cmap="RdYlGn_r", vmin=0, vmax=1),
                f"BadPix 0.07: {results['scenes'][name]['badpix_0.07']:.1f} %",
            ),
        ]
        for axis, (image, style, title) in zip(row, panels, strict=True):
            axis.set_facecolor("0.6")
            shown = axis.imshow(image, interpolation="nearest", **style)
            axis.set_xticks([])
            axis.set_yticks([])
            axis.set_title(title, fontsize=9)
            if style and title != panels[-1][2]:
                figure.colorbar(shown, ax=axis, fraction=0.046, pad=0.03)
        row[0].set_ylabel(f"{name}\n({ranks[name]} BadPix 0.07)", fontsize=9)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")


def write_reports(results: dict, store: DatasetStore, source, out: Path) -> dict:
    """Write results.json, results.md and error_maps.png to ``out``; returns their paths."""
    write_manifest(out, "evaluate-depth")
    paths = {"json": out / "results.json", "markdown": out / "results.md", "figure": out / "error_maps.png"}
    write_json_atomic(paths["json"], json_safe(results))
    write_text_atomic(paths["markdown"], markdown_report(results))
    estimates = {
        name: read_pfm(source.maps[name] if source is not None else out / MAPS_FOLDER / f"{name}.pfm")
        for name in figure_scenes(results)
    }
    draw_error_maps(results, store, estimates, paths["figure"])
    return paths
