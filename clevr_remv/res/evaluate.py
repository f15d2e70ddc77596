"""Score referring-expression segmentation predictions on a CLEVR-REMV split.

Any model can be evaluated: predictions are read from a JSON Lines file (one record per sample:
``scene``, ``expression_id``, ``view`` [u, v], ``mask`` as COCO RLE) or from a folder of PNG masks
``{scene:06d}/{expression_id}/u{u}_v{v}.png`` (non-zero = referent), or made by a trivial
predictor (`clevr_remv.res.trivial`, the floor a model must beat). The samples are the
(expression, view) pairs of the split where the referent is visible, for the chosen views;
a missing prediction counts as an empty mask and is reported. IoU is computed at the dataset's
native resolution. Reports: ``results.json``, ``results.md`` (the paper's table layout) and
``iou_heatmap.png`` (IoU over the u, v grid).

On a generalized dataset (expressions naming no object or several) the target is the union of
the referents' pixels, an empty predicted mask is the answer "no target", and every summary adds
gIoU, cIoU, N-acc and T-acc (`clevr_remv.metrics.generalized_summary`), broken down by target
count (0, 1, 2+), template family and the camera's distance from the centre, with MVR and MRD on
gIoU and cIoU.
"""

import json
import math
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from clevr_remv.dataset.atomic import atomic_path, write_text_atomic
from clevr_remv.dataset.expressions import family_name, is_generalized, target_count_label, target_mask
from clevr_remv.dataset.images import open_image
from clevr_remv.dataset.outdir import check_output_dir, only_names, write_manifest
from clevr_remv.dataset.rle import mask_to_rle, rle_to_mask
from clevr_remv.dataset.splits import split_scene_ids
from clevr_remv.dataset.store import DatasetStore, json_safe, write_json_atomic
from clevr_remv.errors import ClevrRemvError
from clevr_remv.geometry import select_views, view_name
from clevr_remv.metrics import (
    GENERALIZED_IOUS,
    GENERALIZED_KEYS,
    PRECISION_KEYS,
    ROBUSTNESS_IOUS,
    ScoreAccumulator,
    intersection_and_union,
    manhattan_distance,
    robustness,
)
from clevr_remv.res.trivial import ORACLES, PREDICTORS, TrivialPredictions
from clevr_remv.schemas import validate
from clevr_remv.wording import plural

RESULTS_FORMAT_VERSION = 1
MISSING_EXAMPLES = 20
UNUSED_EXAMPLES = 5
REPORT_NAMES = {"json": "results.json", "markdown": "results.md", "heatmap": "iou_heatmap.png"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_PREDICTION = re.compile(r"(\d+)/(\d+)/u(\d+)_v(\d+)\.png")
# Generalized datasets: results.json's breakdowns (by how many objects an expression names, by
# template family, by the view's grid distance from the centre camera).
BREAKDOWNS = ("by_target_count", "by_family", "by_distance")


# --------------------------------------------------------------------------- predictions


def prediction_record(scene: int, expression_id: int, view, mask) -> dict:
    """One line of a predictions JSON Lines file."""
    return {
        "scene": int(scene),
        "expression_id": int(expression_id),
        "view": [int(view[0]), int(view[1])],
        "mask": mask_to_rle(mask),
    }


class JsonlPredictions:
    """Predictions of a JSON Lines file, decoded on demand."""

    def __init__(self, path):
        self.path = Path(path)
        self._rles = {}
        with open(self.path, "rb") as stream:
            if stream.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE:
                raise ClevrRemvError(
                    f"--predictions {self.path}: is a PNG image, not a JSON Lines file; pass "
                    "the folder of {scene:06d}/{expression_id}/u{u}_v{v}.png masks instead"
                )
            stream.seek(0)
            for number, line in enumerate(stream, 1):
                if line.strip():
                    self._add(self._parse(line, number), number)
        self._used = set()

    def _parse(self, line: bytes, number: int) -> dict:
        try:
            record = json.loads(line.decode("utf-8-sig"))
        except UnicodeDecodeError as error:
            raise ClevrRemvError(
                f"{self.path}:{number}: not UTF-8 text ({error.reason} at byte {error.start}); "
                "write predictions as a UTF-8 JSON Lines file"
            ) from error
        except json.JSONDecodeError as error:
            raise ClevrRemvError(
                f"{self.path}:{number}: not valid JSON ({error.msg}); write one JSON object per line"
            ) from error
        validate(
            record,
            "predictions",
            f"{self.path}:{number}",
            fix="write each record as {scene, expression_id, view: [u, v], mask: COCO RLE}",
        )
        return record

    def _add(self, record: dict, number: int) -> None:
        key = (record["scene"], record["expression_id"], *record["view"])
        if key in self._rles:
            raise ClevrRemvError(
                f"{self.path}:{number}: a second prediction for scene {key[0]}, "
                f"expression {key[1]}, view {view_name(*key[2:])}; keep one per sample"
            )
        self._rles[key] = (number, record["mask"])

    def mask(self, key, shape):
        """The boolean mask of sample ``key`` = (scene, expression_id, u, v), or None."""
        if key not in self._rles:
            return None
        self._used.add(key)
        number, rle = self._rles[key]
        where = f"{self.path}:{number}: {_describe(key)}"
        _check_size(rle, shape, where)  # before decoding allocates H x W
        try:
            mask = rle_to_mask(rle)
        except Exception as error:  # counts that do not cover H x W; pycocotools' plain Exceptions
            raise ClevrRemvError(
                f"{where}: the RLE cannot be decoded ({error}); write it with pycocotools.mask.encode"
            ) from error
        return _checked(mask, shape, where)

    def unused_keys(self) -> list:
        """The sample keys of the records that matched no evaluated sample (other splits, views,
        or unknown ids), in file order."""
        return [key for key in self._rles if key not in self._used]


class PngPredictions:
    """Predictions stored as ``{scene:06d}/{expression_id}/u{u}_v{v}.png``."""

    def __init__(self, path):
        self.path = Path(path)
        self._used = set()

    def mask(self, key, shape):
        scene, expression_id, u, v = key
        path = self.path / f"{scene:06d}" / str(expression_id) / f"{view_name(u, v)}.png"
        if not path.is_file():
            return None
        self._used.add(key)
        with open_image(path, "write masks as 8-bit PNG (non-zero = referent)") as image:
            if image.mode in ("RGB", "RGBA"):
                mask = np.asarray(image)[..., :3].any(-1)
            else:
                mask = np.asarray(image.convert("L")) > 0
        return _checked(mask, shape, str(path))

    def unused_keys(self) -> list:
        """The sample keys of the mask files that matched no evaluated sample, in path order
        (files not named like a prediction are ignored)."""
        keys = []
        for path in sorted(self.path.glob("*/*/*.png")):
            match = PNG_PREDICTION.fullmatch(path.relative_to(self.path).as_posix())
            key = tuple(int(part) for part in match.groups()) if match else None
            if key is not None and key not in self._used:
                keys.append(key)
        return keys


def _describe(key) -> str:
    return f"scene {key[0]}, expression {key[1]}, view {view_name(*key[2:])}"


def _check_size(rle: dict, shape, where: str) -> None:
    """Refuse an RLE whose size is not the views' (before anything of that size is allocated)."""
    height, width = rle["size"]
    if (height, width) != tuple(shape):
        raise ClevrRemvError(
            f"{where}: mask size is {width}x{height} (WxH) but the dataset's views are "
            f"{shape[1]}x{shape[0]}; predict at the native resolution"
        )


def _checked(mask, shape, where: str):
    if mask.shape != tuple(shape):
        raise ClevrRemvError(
            f"{where}: mask is {mask.shape[1]}x{mask.shape[0]} (WxH) but the dataset's "
            f"views are {shape[1]}x{shape[0]}; predict at the native resolution"
        )
    return mask


def open_predictions(path):
    """A prediction source for a JSON Lines file or a PNG folder."""
    path = Path(path)
    if path.is_dir():
        return PngPredictions(path)
    if path.is_file():
        return JsonlPredictions(path)
    raise ClevrRemvError(
        f"--predictions {path}: no such file or folder; pass a JSON Lines file "
        "or a folder of {scene:06d}/{expression_id}/u{u}_v{v}.png masks"
    )


# --------------------------------------------------------------------------- scoring


def evaluation_views(store: DatasetStore, views: str) -> list:
    """The (u, v) scored for a view set: "center", "corners" (the centre and the four corners,
    the paper's protocol) or "all"."""
    return select_views(select_views(views, store.grid) + [store.center], store.grid)


def score_predictions(store: DatasetStore, split: str, views, predictions, progress: bool = True):
    """Score every (expression, view) sample of ``split`` at ``views`` (on a generalized dataset
    with the target's pixel count and the BREAKDOWNS labels of each sample).

    Returns (ScoreAccumulator, missing sample keys, (height, width) of the views).
    """
    selected = set(views)
    generalized = is_generalized(store.info())
    scores, missing, shape = ScoreAccumulator(BREAKDOWNS if generalized else ()), [], None
    scene_ids = split_scene_ids(store, split)
    for scene in tqdm(scene_ids, desc=f"evaluate {split}", unit="scene", disable=not progress):
        by_view = defaultdict(list)
        for expression in store.load_refexps(scene, check=False)["expressions"]:
            for view in map(tuple, expression["views"]):
                if view in selected:
                    by_view[view].append(expression)
        for view, expressions in by_view.items():
            index = store.read_index(scene, *view)
            shape = index.shape
            for expression in expressions:
                key = (scene, expression["id"], *view)
                prediction = predictions.mask(key, shape)
                if prediction is None:
                    missing.append(key)
                    prediction = np.zeros(shape, bool)
                target = target_mask(index, expression)
                intersection, union = intersection_and_union(prediction, target)
                if generalized:
                    labels = {
                        "by_target_count": target_count_label(expression),
                        "by_family": family_name(expression),
                        "by_distance": manhattan_distance(view, store.center),
                    }
                    scores.add(view, intersection, union, int(np.count_nonzero(target)), labels)
                else:
                    scores.add(view, intersection, union)
    return scores, missing, shape


def build_results(store, split, views, scores, missing, shape, predictions, robustness_iou) -> dict:
    """The results.json document."""
    center = store.center
    per_view = scores.per_view()
    if not per_view:
        raise ClevrRemvError(
            f"--split {split}: no sample to score in the chosen views; check the split file and the expressions' views"
        )
    figures = robustness(per_view, center, robustness_iou)
    unused = predictions.unused_keys()
    height, width = shape
    return {
        "format_version": RESULTS_FORMAT_VERSION,
        "dataset": str(store.root),
        "split": split,
        "views": views,
        "predictions": str(predictions.path),
        "resolution": [width, height],
        "samples": sum(summary["samples"] for summary in per_view.values()),
        "missing_predictions": len(missing),
        "missing_examples": [_key_record(key) for key in missing[:MISSING_EXAMPLES]],
        "unused_predictions": len(unused),
        "unused_examples": [_key_record(key) for key in unused[:UNUSED_EXAMPLES]],
        "overall": scores.overall(),
        "center": per_view.get(center),
        "per_view": {
            view_name(*view): {"u": view[0], "v": view[1], "distance": manhattan_distance(view, center), **summary}
            for view, summary in per_view.items()
        },
        "MVR": figures["MVR"],
        "mvr_valid": figures["mvr_valid"],
        "MRD": figures["MRD"],
        "robustness_iou": figures["robustness_iou"],
        **generalized_results(scores, per_view, center),
    }


def generalized_results(scores: ScoreAccumulator, per_view: dict, center) -> dict:
    """results.json's generalized part: the breakdowns and MVR / MRD on gIoU and cIoU (empty for
    a single-referent dataset)."""
    breakdowns = scores.breakdowns()
    if not breakdowns:
        return {}
    results = {"expressions": "generalized"}
    results.update(
        {name: {str(label): summary for label, summary in summaries.items()} for name, summaries in breakdowns.items()}
    )
    results["robustness_generalized"] = {key: robustness(per_view, center, key) for key in GENERALIZED_IOUS}
    return results


def _key_record(key) -> dict:
    return {"scene": key[0], "expression_id": key[1], "view": [key[2], key[3]]}


def describe_keys(records) -> str:
    """Sample records (as in results.json's example lists) as "scene S, expression E, view uU_vV; ..."."""
    return "; ".join(_describe((record["scene"], record["expression_id"], *record["view"])) for record in records)


def require_a_match(results: dict) -> None:
    """Refuse predictions of which none matches a scored sample (an empty file or folder, or
    records for other scenes, views or splits): their all-zero scores would mean nothing."""
    if results["missing_predictions"] < results["samples"]:
        return
    if results["unused_predictions"]:
        found = (
            f"it holds {plural(results['unused_predictions'], 'prediction')} for other samples, e.g. "
            f"{describe_keys(results['unused_examples'][:1])}"
        )
    else:
        found = "it holds no prediction"
    raise ClevrRemvError(
        f"--predictions {results['predictions']}: no prediction matches any of the "
        f"{plural(results['samples'], 'sample')} of split {results['split']!r} at the {results['views']} "
        f"views ({found}); predict those samples, or pass the --split and --views they are for"
    )


# --------------------------------------------------------------------------- reports


NOT_COMPARABLE = "not comparable"
NOT_COMPARABLE_NOTE = (
    f"MVR marked {NOT_COMPARABLE}: some shifted view keeps less than 1/e (36.8 %) of the centre IoU, "
    "where -Q ln Q falls as the drop grows (a view that fails completely adds 0), so a larger drop can "
    "give a smaller MVR; compare such a model by MRD."
)


def format_cell(value) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2f}"


def format_mvr(value, valid) -> str:
    """An MVR figure as format_cell writes it, marked "not comparable" when ``valid`` (the MVR's
    ``mvr_valid``) is False."""
    return f"{format_cell(value)} ({NOT_COMPARABLE})" if valid is False else format_cell(value)


def paper_view_label(name: str, summary: dict) -> str:
    """A view's name with the paper's I_uv notation (Table 7.3: I_{u,v}, u the camera column, v
    the row; I11 = u1_v1 top-left, I19 = u1_v9 bottom-left, I91 = u9_v1, I99 = u9_v9)."""
    u, v = summary["u"], summary["v"]
    return f"{name} (I{u}{v})" if u < 10 and v < 10 else name


def markdown_report(results: dict, center) -> str:
    """The results as Markdown: centre table (paper table 7.1), per-view table, shifted views
    (table 7.3 layout), robustness (table 7.4)."""
    iou_key = results["robustness_iou"]
    columns = list(PRECISION_KEYS) + ["mIoU", "oIoU"]
    width, height = results["resolution"]
    lines = [
        f"# RES evaluation: {results['split']} split, {results['views']} views",
        "",
        f"{plural(results['samples'], 'sample')}; IoU at the native {width}x{height}; "
        f"{plural(results['missing_predictions'], 'missing prediction')} (scored as empty masks).",
        "",
    ]
    if results["center"] is not None:
        lines += [
            f"## Centre view {view_name(*center)}",
            "",
            "| " + " | ".join(columns) + " |",
            "|" + "---|" * len(columns),
            "| " + " | ".join(format_cell(results["center"][key]) for key in columns) + " |",
            "",
        ]
    lines += [
        "## Per view",
        "",
        "| view | distance | samples | " + " | ".join(columns) + " |",
        "|" + "---|" * (len(columns) + 3),
    ]
    for name, summary in results["per_view"].items():
        label = f"{name} (centre)" if summary["distance"] == 0 else name
        lines.append(
            f"| {label} | {summary['distance']} | {summary['samples']} | "
            + " | ".join(format_cell(summary[key]) for key in columns)
            + " |"
        )
    overall = results["overall"]
    lines += [f"| all | | {overall['samples']} | " + " | ".join(format_cell(overall[k]) for k in columns) + " |", ""]
    shifted = {name: s[iou_key] for name, s in results["per_view"].items() if s["distance"] > 0}
    if shifted:
        values = list(shifted.values())
        spread = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        lines += [f"## Shifted views ({iou_key}, %)", ""]
        if len(shifted) <= 8:
            lines += [
                "| "
                + " | ".join(paper_view_label(name, results["per_view"][name]) for name in shifted)
                + " | Average | SD |",
                "|" + "---|" * (len(shifted) + 2),
                "| "
                + " | ".join(format_cell(v) for v in values)
                + f" | {format_cell(float(np.mean(values)))} | {format_cell(spread)} |",
                "",
            ]
        else:
            lines += [
                f"{plural(len(values), 'view')}: average {format_cell(float(np.mean(values)))}, "
                f"SD {format_cell(spread)}.",
                "",
            ]
        lines += [
            "## Robustness (lower is better)",
            "",
            "| MVR (%) | MRD (%) | IoU used |",
            "|---|---|---|",
            f"| {format_mvr(results['MVR'], results['mvr_valid'])} | {format_cell(results['MRD'])} | {iou_key} |",
            "",
            "MVR: paper eq. 7.3, -sum Q ln Q / distance with Q = IoU(u, v) / IoU(centre). "
            "MRD: 1/distance-weighted mean of 1 - Q (0 = no drop, 100 = total failure).",
            "",
        ]
        if results["mvr_valid"] is False:
            lines += [NOT_COMPARABLE_NOTE, ""]
    if "expressions" in results:
        lines += generalized_lines(results)
    if "trivial_predictors" in results:
        lines += trivial_predictor_lines(results)
    return "\n".join(lines)


def generalized_lines(results: dict) -> list:
    """The generalized figures as Markdown: overall and centre, by target count, by family, by
    distance from the centre, and MVR / MRD on gIoU and cIoU."""

    def table(title, rows) -> list:
        lines = [
            f"| {title} | samples | " + " | ".join(GENERALIZED_KEYS) + " |",
            "|" + "---|" * (len(GENERALIZED_KEYS) + 2),
        ]
        for label, summary in rows:
            cells = [format_cell(summary[key]) for key in GENERALIZED_KEYS]
            lines.append(f"| {label} | {summary['samples']} | " + " | ".join(cells) + " |")
        return lines

    rows = [("all", results["overall"])] + ([("centre", results["center"])] if results["center"] is not None else [])
    lines = [
        "## Generalized RES (%)",
        "",
        'An empty predicted mask answers "no target". gIoU: mean per-sample IoU, a no-target sample '
        "scoring 100 when predicted empty, else 0; cIoU: cumulative I / cumulative U (= oIoU); N-acc: "
        "no-target samples predicted empty; T-acc: target samples predicted non-empty.",
        "",
    ] + table("views", rows)
    titles = {"by_target_count": "targets", "by_family": "family", "by_distance": "distance from the centre"}
    for name, title in titles.items():
        lines += ["", f"### By {title}", ""] + table(title, results[name].items())
    lines += [
        "",
        "### Robustness on gIoU and cIoU (lower is better)",
        "",
        "| IoU | MVR (%) | MRD (%) |",
        "|---|---|---|",
    ]
    for key, figures in results["robustness_generalized"].items():
        lines.append(f"| {key} | {format_mvr(figures['MVR'], figures['mvr_valid'])} | {format_cell(figures['MRD'])} |")
    if any(figures["mvr_valid"] is False for figures in results["robustness_generalized"].values()):
        lines += ["", NOT_COMPARABLE_NOTE]
    return lines + [""]


def predictor_label(name: str) -> str:
    """How reports name a reference predictor: the oracle is labelled as one."""
    return f"{name} (oracle)" if name in ORACLES else name


def trained_label(benchmark: dict) -> str:
    """How reports name a trained model: with the parts that use attention (the paper's A-Num)."""
    attention = benchmark.get("attention")
    blind = ", blind: a constant image" if benchmark.get("blind") else ""
    if attention is None:  # results written before models declared it
        return f"{benchmark['model']} (trained{blind})"
    parts = "/".join(part for part, used in zip("VLC", attention.values(), strict=True) if used) or "none"
    return f"{benchmark['model']} (trained{blind}; attention: {parts}, A-Num {benchmark['a_num']})"


def trivial_predictor_lines(results: dict) -> list:
    """A table of the trained model (``results["benchmark"]``) beside the trivial predictors
    (``results["trivial_predictors"]``: name -> {"center", "overall"} summaries) on the same samples."""
    rows = [(trained_label(results["benchmark"]), results["center"], results["overall"])]
    rows += [(predictor_label(name), s["center"], s["overall"]) for name, s in results["trivial_predictors"].items()]
    extra = [key for key in GENERALIZED_KEYS if key in results["overall"]]
    lines = [
        "## Against trivial predictors",
        "",
        "| predictions | centre P@0.5 | centre mIoU | centre oIoU | all mIoU | all oIoU |"
        + "".join(f" all {key} |" for key in extra),
        "|---|---|---|---|---|---|" + "---|" * len(extra),
    ]
    for name, center, overall in rows:
        center = center or {}
        lines.append(
            f"| {name} | "
            + " | ".join(format_cell(center.get(k)) for k in ("P@0.5", "mIoU", "oIoU"))
            + f" | {format_cell(overall['mIoU'])} | {format_cell(overall['oIoU'])} |"
            + "".join(f" {format_cell(overall.get(key))} |" for key in extra)
        )
    return lines + [
        "",
        "Floors: empty, no mask; largest / random, the largest / a random visible object. "
        "attributes is a perception oracle, not a floor: it reads the true instance masks and parses "
        "the referent's attribute words perfectly (`evaluate --predictor`).",
        "",
    ]


def _draw_grid(figure, axes, values: np.ndarray, center, title: str, **colours) -> None:
    """One heat map of ``values`` (v rows, u columns; NaN = not scored), each cell labelled, the
    centre view framed in red; ``colours``: imshow's cmap, vmin and vmax."""
    from matplotlib.patches import Rectangle

    image = axes.imshow(np.ma.masked_invalid(values), **colours)
    for (row, column), value in np.ndenumerate(values):
        if not np.isnan(value):
            red, green, blue, _ = image.cmap(image.norm(value))
            colour = "white" if 0.299 * red + 0.587 * green + 0.114 * blue < 0.5 else "black"
            axes.text(column, row, f"{value:.1f}", ha="center", va="center", fontsize=7, color=colour)
    axes.add_patch(Rectangle((center[0] - 1.5, center[1] - 1.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
    grid = values.shape[0]
    axes.set_xticks(range(grid), [str(u) for u in range(1, grid + 1)])
    axes.set_yticks(range(grid), [str(v) for v in range(1, grid + 1)])
    axes.set(xlabel="u (camera column)", ylabel="v (camera row)", title=title)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)


def draw_heatmap(results: dict, grid: int, center, path) -> None:
    """A grid x grid picture of the robustness IoU per view (u across, v down; blank = not scored)
    on a 0-100 scale, and beside it each view's IoU minus the centre view's (points), on a scale
    that fits the differences, where a drop of a fraction of a point shows."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    iou_key = results["robustness_iou"]
    values = np.full((grid, grid), np.nan)
    for summary in results["per_view"].values():
        values[summary["v"] - 1, summary["u"] - 1] = summary[iou_key] if summary[iou_key] is not None else np.nan
    centre = values[center[1] - 1, center[0] - 1]
    panels = 2 if np.isfinite(centre) and np.isfinite(values).sum() > 1 else 1
    figure = Figure(figsize=(panels * (1.6 + 0.6 * grid), 0.8 + 0.6 * grid), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, panels, squeeze=False)[0]
    title = f"{iou_key} (%) per view, {results['split']} split"
    _draw_grid(figure, axes[0], values, center, title, cmap="viridis", vmin=0, vmax=100)
    if panels == 2:
        change = values - centre
        limit = max(float(np.nanmax(np.abs(change))), 0.5)
        title = f"{iou_key} minus the centre view's (points)"
        _draw_grid(figure, axes[1], change, center, title, cmap="RdBu", vmin=-limit, vmax=limit)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")


def write_reports(results: dict, store: DatasetStore, out) -> dict:
    """Write results.json, results.md and iou_heatmap.png to ``out``; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {key: out / name for key, name in REPORT_NAMES.items()}
    write_json_atomic(paths["json"], json_safe(results))
    markdown = markdown_report(results, store.center)
    write_text_atomic(paths["markdown"], markdown)
    draw_heatmap(results, store.grid, store.center, paths["heatmap"])
    return paths


def open_source(store: DatasetStore, predictions, predictor, seed: int):
    """The prediction source: a file or folder (``predictions``) or a trivial ``predictor``."""
    if (predictions is None) == (predictor is None):
        raise ClevrRemvError(
            "--predictions / --predictor: pass exactly one of them; --predictions for a "
            f"model's masks, --predictor {'|'.join(PREDICTORS)} for a floor or the attributes oracle"
        )
    if predictor is None:
        return open_predictions(predictions)
    if predictor not in PREDICTORS:
        raise ClevrRemvError(f"--predictor: unknown predictor {predictor!r}; choose one of {', '.join(PREDICTORS)}")
    return TrivialPredictions(store, predictor, seed)


def evaluate(
    data,
    predictions=None,
    split: str = "test",
    views: str = "corners",
    out="evaluation",
    robustness_iou: str = "oIoU",
    progress: bool = True,
    predictor=None,
    seed: int = 0,
) -> dict:
    """Score ``predictions`` (JSON Lines file or PNG folder) or the trivial ``predictor`` (one of
    ``PREDICTORS``, seeded by ``seed``) on ``split`` of the dataset ``data`` at ``views``
    ("center", "corners" = centre + 4 corners, "all"), write the reports to ``out`` and return
    the results dict."""
    if robustness_iou not in ROBUSTNESS_IOUS:
        raise ClevrRemvError(f"--mvr-iou: {robustness_iou!r} is not one of {', '.join(ROBUSTNESS_IOUS)}")
    store = DatasetStore(data)
    out = check_output_dir(
        out, "evaluate", {"--data": data, "--predictions": predictions}, ours=only_names(*REPORT_NAMES.values())
    )
    chosen = evaluation_views(store, views)
    source = open_source(store, predictions, predictor, seed)
    scores, missing, shape = score_predictions(store, split, chosen, source, progress)
    results = build_results(store, split, views, scores, missing, shape, source, robustness_iou)
    require_a_match(results)
    if predictor is not None:
        results["predictor"] = {"name": predictor, "seed": seed}
    write_manifest(out, "evaluate")
    write_reports(results, store, out)
    return results
