"""`clevr-remv show`: a contact sheet of one scene's view grid with a referent's mask outlined.

Thumbnails are laid out as the cameras are: u = 1 (leftmost camera) to the left, v = 1 (top
row) at the top. The expression is the title; views where the expression is not valid (its
referent too hidden) are dimmed and marked "not valid". A generalized expression has every
referent outlined, or none and the words "no target".
"""

from pathlib import Path

from matplotlib import patheffects
from matplotlib.backend_bases import FigureCanvasBase
from matplotlib.figure import Figure

from clevr_remv.dataset.atomic import atomic_path
from clevr_remv.dataset.expressions import referents_of, target_mask
from clevr_remv.dataset.outdir import check_output_file
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.errors import ClevrRemvError

OUTLINE_COLOR = "#ffe600"
CENTER_COLOR = "#ff3b30"
SHEET_WIDTH_INCHES = 13.0


def _find_expression(store: DatasetStore, scene: int, expression_id: int) -> dict:
    expressions = store.load_refexps(scene)["expressions"]
    for expression in expressions:
        if expression["id"] == expression_id:
            return expression
    available = ", ".join(str(e["id"]) for e in expressions) or "none"
    raise ClevrRemvError(
        f"--expression: scene {scene} has no expression {expression_id}; its expression ids are {available}"
    )


def _describe(obj: dict) -> str:
    return " ".join(obj[key] for key in ("size", "color", "material", "shape"))


def contact_sheet(root, scene: int, expression_id: int = 0):
    """Return a matplotlib Figure: every view of ``scene`` as a thumbnail with the referent of
    expression ``expression_id`` outlined, u/v labels, and the expression as the title."""
    store = DatasetStore(root)
    if scene not in store.scene_ids():
        raise ClevrRemvError(
            f"--scene: scene {scene} is not a complete scene of {store.root}; "
            f"pick one of {_id_range(store.scene_ids())}"
        )
    scene_json = store.load_scene(scene)
    expression = _find_expression(store, scene, expression_id)
    referents = referents_of(expression)
    valid = {tuple(view) for view in expression["views"]}
    grid = store.grid
    center = store.center

    cell = SHEET_WIDTH_INCHES / grid
    aspect = scene_json["height"] / scene_json["width"]
    figure = Figure(figsize=(SHEET_WIDTH_INCHES + 0.6, grid * cell * aspect + 1.4))
    axes = figure.subplots(
        grid,
        grid,
        squeeze=False,
        gridspec_kw={"wspace": 0.04, "hspace": 0.04, "left": 0.6 / (SHEET_WIDTH_INCHES + 0.6), "right": 0.995},
    )
    outline_style = [patheffects.withStroke(linewidth=2.2, foreground="black")]
    for view in scene_json["views"]:
        u, v = view["u"], view["v"]
        axis = axes[v - 1][u - 1]
        mask = target_mask(store.read_index(scene, u, v), expression)
        axis.imshow(store.read_rgb(scene, u, v), interpolation="antialiased")
        if mask.any():
            contour = axis.contour(mask.astype(float), levels=[0.5], colors=OUTLINE_COLOR, linewidths=1.0)
            contour.set_path_effects(outline_style)
        if (u, v) not in valid:
            axis.imshow([[[0, 0, 0, 0.55]]], extent=axis.get_xlim() + axis.get_ylim())
            axis.text(
                0.96,
                0.05,
                "not valid",
                color="white",
                ha="right",
                va="bottom",
                fontsize=7,
                transform=axis.transAxes,
                bbox={"facecolor": "black", "alpha": 0.6, "linewidth": 0},
            )
        axis.set_xticks([])
        axis.set_yticks([])
        if (u, v) == center:
            for spine in axis.spines.values():
                spine.set(color=CENTER_COLOR, linewidth=2.5)
        if v == 1:
            axis.set_title(f"u={u}", fontsize=9)
        if u == 1:
            axis.set_ylabel(f"v={v}", fontsize=9, rotation=0, ha="right", va="center")
    objects = scene_json["objects"]
    height = figure.get_figheight()
    figure.suptitle(f"\u201c{expression['text']}\u201d", fontsize=15, fontweight="bold", y=1 - 0.12 / height)
    figure.text(
        0.5,
        1 - 0.5 / height,
        f"scene {scene} \u00b7 expression {expression_id} \u00b7 {_describe_referents(referents, objects)} "
        f"\u00b7 valid in {len(valid)} of {len(scene_json['views'])} "
        "views\nyellow outline = referent mask \u00b7 dimmed = expression not valid in that view \u00b7 "
        "red frame = centre view \u00b7 "
        "u: cameras left \u2192 right \u00b7 v: cameras top \u2192 bottom",
        ha="center",
        va="top",
        fontsize=9,
        linespacing=1.5,
    )
    figure.subplots_adjust(top=1 - 1.25 / height, bottom=0.1 / height)
    return figure


def _describe_referents(referents: list, objects: list) -> str:
    """ "referent: object 3 (large red rubber cube)", "referents: objects 2 (...), 5 (...)" or "no target"."""
    if not referents:
        return "no target (no object fits the expression)"
    named = ", ".join(f"{k} ({_describe(objects[k - 1])})" for k in referents)
    return f"referent: object {named}" if len(referents) == 1 else f"referents: objects {named}"


def _id_range(ids) -> str:
    return f"{ids[0]}..{ids[-1]}" if ids else "(none: the dataset has no scenes)"


def image_formats() -> set:
    """The file extensions (without the dot) a contact sheet can be saved as."""
    return set(FigureCanvasBase.get_supported_filetypes())


def write_contact_sheet(root, scene: int, expression_id: int, out) -> Path:
    """Draw the contact sheet and save it to ``out`` atomically (format from the suffix; PNG
    without one). ``out`` may not lie inside the dataset."""
    out = check_output_file(out, {"--data": root}, suffixes=image_formats() if Path(out).suffix else None)
    figure = contact_sheet(root, scene, expression_id)
    with atomic_path(out) as tmp:
        figure.savefig(tmp, dpi=150, format=out.suffix.lstrip(".") or "png")
    return out
