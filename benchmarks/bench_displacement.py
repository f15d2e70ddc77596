"""Where the multi-view drop lives: camera displacement, rig type and scale (issue 33).

Builds on the multi-view experiment (``bench_multiview.py``): its rig folder ``--experiment`` (default
``~/.cache/clevr-remv/multiview/35mm-b0.1``) holds ``train/`` (centre views), ``test/`` (the 135 test
scenes on the 9x9 grid, step 0.1), ``pretrain/encoder.pt`` and the trained runs
``runs/{model}-seed{seed}-{protocol}``. Stages (``--stages``), each resumable (run the same command again:
finished renders and runs are skipped), everything new in ``--cache``:

render
    The experiment's test scenes (same seed and ``--start``: the same layouts and centre camera) as 3x3
    grids whose step is the corner offset, ``--offsets`` in world units (a 3x3 grid of step 4b holds the
    centre and the corners of a 9x9 grid of step b: 0.4 is the experiment's rig; 3.0 stands beside the
    issue's 0.4, 1.0, 2.0 and 4.0 because at 4.0 the corners push nearly every object out of the frame, so
    the referent filter keeps a handful of expressions), and as a convergent rig at the widest offset
    (0.1 steps) whose corners let no more objects cross the frame edge than the default rig's (geometry
    over ``--layouts`` layouts, ``bench_baseline.measure``: 1.7 at 160x112; ``--convergent-offset`` sets it).
score
    Every finished run of the experiment on each set, without retraining: its checkpoints are copied into
    a new run folder and ``benchmark`` runs with the run's own options (its config.json) plus ``--resume
    --test-data SET --views all``. Its history is complete, so no training step runs, and
    ``finetune-test`` reuses ``finetuned.pt`` (fine-tuned on the 9x9 set's centre views: the same images).
    The trivial predictors beside them (``attributes`` reads the masks: a perception oracle, not a floor).
scale
    ``--scale-models`` (the baseline from scratch and one family) with ``--scale-seeds``, under both
    protocols, trained as ``bench_multiview.run_models`` trains them: at ``--scale-size`` 320x224 (765
    training scenes of centre views split 630 / 135 as the experiment's, ``--min-pixels`` scaled with the
    pixel count; tested on the test scenes as a 3x3 grid of step 0.4; the pretrained families after
    ``clevr-remv pretrain`` on that set) and at 160x112 on 1,890 training scenes (the ablation's larger set,
    ``bench_recipes.large_training_set``: the same 135 val scenes; the families load the experiment's
    pretrained encoder, so that only the RES training data grows; tested on the render stage's 0.4 set).
report
    Per set, model and protocol (each seed and the seeds' mean): centre oIoU, the four corners, the corner
    drop and MRD with 95 % intervals from resampling the test scenes (also over the expressions the 9x9
    set shares, the ones ``finetune-test`` fine-tuned on), MVR and its validity, and the share of samples
    whose referent touches the frame edge or changes visibility state against the centre; what each set
    keeps and how its centre views compare with the 9x9 set's; the scale runs' drops and wall times (the
    experiment's runs on the 0.4 set are the scale study's reference). Writes every run's results.json
    (with ``rig``, ``view_size`` and ``train_scenes`` added), a summary.json and a report.md into
    ``--results``/displacement and ``--results``/scale, and the plot of the corner drop against the offset
    into ``--figures``.

    nice -n 5 python benchmarks/bench_displacement.py --scale-models baseline,FAMILY

Wall time on this 2-core machine when nothing else runs (estimated): render 35-45 min (7,290 views at
3-4 views/s); score 1.5-2.5 h (a minute or two per run and set: 9 views, no training; 18 runs on 6 sets);
scale 9-16 h (renders 35-45 min: 1,980 views at 320x224; per seed the baseline about 1 h at 320x224 and
35-40 min on 1,890 scenes, a family 1.2-3 h and 0.8-2.2 h; the family's pretraining at 320x224 1.3-2 h);
report about 1 h. Without the scale stage about 3.5-4.5 h. ``commands.log`` in ``--cache`` records every
command with its wall time.
"""

import argparse
import json
import re
import shutil
from collections import namedtuple
from pathlib import Path

import numpy as np
from bench_baseline import measure
from bench_multiview import (
    FAMILY_EPOCHS,
    MODEL_RUNS,
    PROTOCOLS,
    command,
    corner_contrasts,
    explain,
    mean_name,
    run_floors,
    run_models,
    run_name,
    summarise,
    with_seed_means,
)
from bench_recipes import large_training_set

from clevr_remv.dataset.splits import write_splits
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.generate.properties import load_properties
from clevr_remv.res.evaluate import format_cell, format_mvr, open_predictions
from clevr_remv.res.trivial import PREDICTORS, TrivialPredictions

EXPERIMENT = Path.home() / ".cache" / "clevr-remv" / "multiview" / "35mm-b0.1"
GRID = 3
CORNERS3 = ((1, 1), (1, 3), (3, 1), (3, 3))  # CORNERS' order (top-left, bottom-left, top-right, bottom-right)
DEFAULT_OFFSET = 0.4  # the experiment's rig: 9x9, step 0.1
RUN_FOLDER = re.compile(r"(?P<model>.+)-seed(?P<seed>\d+)-(?P<protocol>heldout|finetune-test)")
FLAGS = {  # config.json settings -> benchmark options
    "model": "--model",
    "size": "--size",
    "epochs": "--epochs",
    "batch_size": "--batch-size",
    "lr": "--lr",
    "device": "--device",
    "seed": "--seed",
    "workers": "--workers",
    "recipe": "--recipe",
    "protocol": "--protocol",
    "vision_weights": "--vision-weights",
    "text_encoder": "--text-encoder",
    "iterations": "--iterations",
    "val_every": "--val-every",
    "feature_cache": "--feature-cache",
}
SWITCHES = {"densecrf": "--densecrf", "blind": "--blind"}
# A scale condition: its test set, training set, the folder of its scored runs, and where they were trained.
Condition = namedtuple("Condition", "test train runs trained_in")
LAYOUT_KEYS = ("index", "seed", "layout_attempt", "camera", "lights", "directions", "relationships")
CAMERA_KEYS = ("position", "world_to_camera", "intrinsics", "shift")


def set_label(rig: str, offset: float) -> str:
    return f"{rig}-{offset:g}"


def render_flags(args, size, min_pixels: int) -> list:
    """The experiment's generate options at views of ``size`` (width, height)."""
    return ["--width", size[0], "--height", size[1], "--samples", args.samples, "--min-pixels", min_pixels]


def render_test_set(out: Path, offset: float, rig: str, size, min_pixels: int, args, log: Path) -> Path:
    """The experiment's test scenes as a 3x3 ``rig`` whose step is ``offset``, all in test."""
    grid = ["--grid", GRID, "--baseline", offset, "--rig", rig, "--lens", args.lens, "--seed", args.seed]
    scenes = ["--scenes", args.test_scenes, "--start", args.start]
    command(["generate", "--out", out, *scenes, *grid, *render_flags(args, size, min_pixels)], log)
    if not (out / "splits.json").is_file():
        write_splits(out, "0,0,1", seed=0)
    return out


def render_train_set(out: Path, size, min_pixels: int, args, log: Path) -> Path:
    """The experiment's training scenes (centre views) at ``size``, split as bench_multiview splits them."""
    scenes = args.start
    centre = ["--grid", 1, "--baseline", args.baseline, "--lens", args.lens, "--seed", args.seed]
    command(["generate", "--out", out, "--scenes", scenes, *centre, *render_flags(args, size, min_pixels)], log)
    if not (out / "splits.json").is_file():
        write_splits(out, f"{args.train_scenes}/{scenes},{scenes - args.train_scenes}/{scenes},0", seed=0)
    return out


def widest_convergent(measured, limit: float, widest: float) -> tuple:
    """(offset, {offset: % of objects crossing the frame edge}): the widest convergent offset, in 0.1
    steps from 0.4 up to ``widest``, before the share first exceeds ``limit``."""
    offset, tried = DEFAULT_OFFSET, {}
    for wider in np.round(np.arange(DEFAULT_OFFSET + 0.1, widest + 0.05, 0.1), 1):
        tried[float(wider)] = measured("convergent", float(wider))["leaving_frame_pct"]
        if tried[float(wider)] > limit:
            break
        offset = float(wider)
    return offset, tried


def geometry(args) -> dict:
    """Per set the corners' mean shift and share of objects crossing the frame edge
    (`bench_baseline.measure`), and the convergent offset: ``--convergent-offset``, or the widest whose
    share stays at most the default rig's (`widest_convergent`; kept in ``--cache``)."""
    requested = {key: vars(args)[key] for key in ("offsets", "convergent_offset", "layouts", "width", "height", "lens")}
    path = args.cache / "geometry.json"
    if path.is_file() and json.loads(path.read_text())["requested"] == requested:
        return json.loads(path.read_text())
    properties, size = load_properties(), (args.width, args.height)

    def measured(rig: str, offset: float) -> dict:
        return measure(offset / 4, args.layouts, properties, args.lens, rig, size)  # a 9x9 grid's corners

    figures = {set_label("parallel", offset): measured("parallel", offset) for offset in args.offsets}
    limit = measured("parallel", DEFAULT_OFFSET)["leaving_frame_pct"]
    offset, tried = (
        widest_convergent(measured, limit, max(args.offsets))
        if args.convergent_offset == "auto"
        else (float(args.convergent_offset), {})
    )
    figures[set_label("convergent", offset)] = measured("convergent", offset)
    document = {"requested": requested, "convergent_offset": offset, "limit_pct": limit, "searched": tried}
    document["rigs"] = figures
    path.write_text(json.dumps(document, indent=1))
    return document


def displacement_sets(args, convergent_offset: float) -> dict:
    """Set label -> (rig, offset, dataset folder) of the displacement study."""
    rigs = [("parallel", offset) for offset in args.offsets] + [("convergent", convergent_offset)]
    return {set_label(*rig): (*rig, args.cache / "sets" / set_label(*rig)) for rig in rigs}


def experiment_runs(experiment: Path) -> dict:
    """(model, seed, protocol) -> folder of each finished run of the experiment that kept its model
    (its config.json and checkpoints: a run copied in as results alone cannot be scored again)."""
    runs = {}
    for folder in sorted((experiment / "runs").glob("*-seed*-*")):
        match = RUN_FOLDER.fullmatch(folder.name)
        kept = (folder / "config.json").is_file() and any((folder / "checkpoints").glob("*.pt"))
        if match and kept and (folder / "results.json").is_file():
            runs[match["model"], int(match["seed"]), match["protocol"]] = folder
    return runs


def benchmark_options(settings: dict) -> list:
    """The benchmark options that rebuild a run from its config.json ``settings`` (data, test data and
    views aside)."""
    options = []
    for key, flag in FLAGS.items():
        if settings.get(key) is not None:
            options += [flag, settings[key]]
    options += [flag for key, flag in SWITCHES.items() if settings.get(key)]
    if settings.get("input_size"):
        options += ["--input-size", "x".join(map(str, settings["input_size"]))]
    if settings.get("protocol") == "finetune-test":
        options += ["--finetune-epochs", settings["finetune_epochs"]]
    return options


def score_run(original: Path, data: Path, test: Path, out: Path, log: Path) -> Path:
    """``original``'s trained model (and fine-tuned copy) tested on ``test`` in ``out``: its checkpoints
    copied there, then benchmark resumed with its own options, which finds its history complete."""
    if not (out / "results.json").is_file():
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
        for checkpoint in sorted((original / "checkpoints").glob("*.pt")):
            if not (out / "checkpoints" / checkpoint.name).is_file():
                shutil.copy2(checkpoint, out / "checkpoints" / checkpoint.name)
        settings = json.loads((original / "config.json").read_text())["settings"]
        options = ["--data", data, "--test-data", test, "--views", "all", "--resume", "--out", out]
        command(["benchmark", *benchmark_options(settings), *options], log)
    return out


def expressions(test: Path) -> int:
    """The number of expressions of a dataset (0 when it is not rendered yet)."""
    if not (test / "dataset.json").is_file():
        return 0
    return DatasetStore(test).info()["counts"]["expressions"]


def score_sets(sets: dict, args, log: Path) -> None:
    """Every finished run of the experiment and the trivial predictors on every set that has samples."""
    runs = experiment_runs(args.experiment)
    for label, (_, _, test) in sets.items():
        if not expressions(test):
            print(f"{label}: no expression to score (not rendered, or no referent visible in every view)")
            continue
        folder = args.cache / "runs" / label
        run_floors(test, folder, log)
        for original in runs.values():
            score_run(original, args.experiment / "train", test, folder / original.name, log)


def scale_conditions(args) -> dict:
    """Condition label -> `Condition`: the experiment's runs on the 0.4 set (the reference), then
    ``--scale-size`` views, then ``--large-scenes`` training scenes."""
    base = args.cache / "sets" / set_label("parallel", DEFAULT_OFFSET)
    size, wide = f"{args.width}x{args.height}", "x".join(map(str, args.scale_size))
    large = f"{size}-{args.large_scenes}"
    wide_dir, large_dir = args.cache / "scale" / wide, args.cache / "scale" / large
    return {
        size: Condition(base, args.experiment / "train", args.cache / "runs" / base.name, args.experiment / "runs"),
        wide: Condition(wide_dir / "test", wide_dir / "train", wide_dir / "runs", wide_dir / "runs"),
        large: Condition(base, args.families / f"train-{args.large_scenes}", large_dir / "runs", large_dir / "runs"),
    }


def train_scale(args, log: Path) -> None:
    """Render the larger views' sets and the larger training set, then train each condition's runs
    (bench_multiview.run_models); on the larger training set the families load the experiment's encoder."""
    _, wide, large = scale_conditions(args).values()
    min_pixels = args.min_pixels * args.scale_size[0] * args.scale_size[1] // (args.width * args.height)
    render_train_set(wide.train, args.scale_size, min_pixels, args, log)
    render_test_set(wide.test, DEFAULT_OFFSET, "parallel", args.scale_size, min_pixels, args, log)
    small = len(DatasetStore(args.experiment / "train").load_splits()["splits"]["train"])
    large_training_set(args.experiment / "train", args.families, args.large_scenes - small, log)
    encoder = large.runs.parent / "pretrain" / "encoder.pt"
    if any(MODEL_RUNS[model][2] for model in args.scale_models) and not encoder.is_file():
        encoder.parent.mkdir(parents=True, exist_ok=True)
        for name in ("pretrain.json", "encoder.pt"):
            shutil.copy2(args.experiment / "pretrain" / name, encoder.parent / name)
    options = argparse.Namespace(
        **{**vars(args), "models": args.scale_models, "seeds": args.scale_seeds, "protocols": PROTOCOLS}
    )
    for condition in (wide, large):
        run_models(condition.train, condition.test, condition.runs, condition.runs.parent, options, log)


def setting(test: Path, train) -> dict:
    """What a run ran on: its test set's rig (``corner_offset``: the corner cameras' displacement
    along each image-plane axis, world units) and view size, and its training scenes (None: untrained)."""
    config = DatasetStore(test).info()["config"]
    grid, baseline = config["grid"], config["baseline"]
    rig = {"grid": grid, "baseline": baseline, "lens": config.get("lens", 35.0), "type": config.get("rig", "parallel")}
    return {
        "rig": rig | {"corner_offset": round(baseline * (grid - 1) / 2, 6)},
        "view_size": [config["width"], config["height"]],
        "train_scenes": len(DatasetStore(train).load_splits()["splits"]["train"]) if train else None,
    }


def commit_results(folder: Path, out: Path, run_setting: dict) -> None:
    """Copy ``folder``'s results.json to ``out``, with ``run_setting``'s keys where it lacks them."""
    out.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads((folder / "results.json").read_text())
    out.write_text(json.dumps(run_setting | results, indent=1))


def layout_of(document: dict) -> dict:
    """A scene.json's layout: what ``generate`` drew before any camera of the grid."""
    objects = [{key: value for key, value in obj.items() if key != "views"} for obj in document["objects"]]
    return {key: document[key] for key in LAYOUT_KEYS} | {"objects": objects}


def centre_view_of(document: dict) -> dict:
    """A scene.json's centre camera and what it saw of each object."""
    position = [(view["u"], view["v"]) for view in document["views"]].index(tuple(document["rig"]["center"]))
    view = document["views"][position]
    return {key: view[key] for key in CAMERA_KEYS} | {
        "objects": [obj["views"][position] for obj in document["objects"]]
    }


def centre_identity(test: Path, reference: Path) -> dict:
    """How ``test``'s scenes compare with the same scenes of ``reference``: layouts, and where the views
    are of one size, the centre camera and visibility, the index mask's PNG bytes and the RGB difference."""
    store, other = DatasetStore(test), DatasetStore(reference)
    scenes = sorted(set(store.scene_ids()) & set(other.scene_ids()))
    same_size = store.info()["config"]["width"] == other.info()["config"]["width"]
    counts = dict.fromkeys(("same_layout", "same_centre_view", "same_index_png"), 0)
    differences = []
    for scene in scenes:
        ours, theirs = store.load_scene(scene, check=False), other.load_scene(scene, check=False)
        counts["same_layout"] += layout_of(ours) == layout_of(theirs)
        if same_size:
            counts["same_centre_view"] += centre_view_of(ours) == centre_view_of(theirs)
            index = store.index_path(scene, *store.center), other.index_path(scene, *other.center)
            counts["same_index_png"] += index[0].read_bytes() == index[1].read_bytes()
            rgb = store.read_rgb(scene, *store.center).astype(int), other.read_rgb(scene, *other.center)
            differences.append(np.abs(rgb[0] - rgb[1]).max(axis=-1))
    identity = {"reference": str(reference), "scenes": len(scenes), "same_layout": counts["same_layout"]}
    if same_size and differences:
        identity |= counts | {
            "rgb_max_difference": int(max(difference.max() for difference in differences)),
            "rgb_pixels_differing_max": float(max((difference > 0).mean() for difference in differences)),
        }
    return identity


def expression_keys(store: DatasetStore, scene: int) -> dict:
    """(referent, text) -> expression id of a scene's expressions."""
    return {(e["referent"], e["text"]): e["id"] for e in store.load_refexps(scene, check=False)["expressions"]}


def shared_expressions(test: Path, reference: Path) -> set:
    """(scene, expression id) of ``test``'s expressions that ``reference`` has too (same referent, same
    text): on the 9x9 set, those that ``finetune-test`` fine-tuned on."""
    store, other = DatasetStore(test), DatasetStore(reference)
    shared, rendered = set(), set(other.scene_ids())
    for scene in store.load_splits()["splits"]["test"]:
        theirs = expression_keys(other, scene) if scene in rendered else {}
        shared |= {(scene, number) for key, number in expression_keys(store, scene).items() if key in theirs}
    return shared


def set_counts(test: Path, shared: set) -> dict:
    """What a set keeps: scenes with expressions, expressions, samples, objects visible in every view."""
    store = DatasetStore(test)
    counts = dict.fromkeys(("scenes", "scenes_with_expressions", "expressions", "samples", "objects"), 0)
    counts["objects_visible_in_every_view"] = 0
    for scene in store.load_splits()["splits"]["test"]:
        found = store.load_refexps(scene, check=False)["expressions"]
        objects = store.load_scene(scene, check=False)["objects"]
        counts["scenes"] += 1
        counts["scenes_with_expressions"] += bool(found)
        counts["expressions"] += len(found)
        counts["samples"] += sum(len(expression["views"]) for expression in found)
        counts["objects"] += len(objects)
        counts["objects_visible_in_every_view"] += sum(all(view["pixels"] for view in obj["views"]) for obj in objects)
    return counts | {"expressions_shared_with_9x9": len(shared)}


def edge_and_change_shares(test: Path) -> dict:
    """Shares (%) of the samples, over all views, whose referent touches the frame edge or whose
    visibility state differs from the centre view's (`bench_multiview.explain`'s groups)."""
    table = explain(test, TrivialPredictions(DatasetStore(test), "empty"))
    total = sum(row["all"]["samples"] for group, row in table.items() if group.startswith("edge="))
    return {
        name: 100.0 * table.get(group, {}).get("all", {}).get("samples", 0) / total
        for name, group in (("edge", "edge=True"), ("visibility_changed", "occlusion_changed=True"))
    }


def seed_key(model: str, seeds: list, protocol: str) -> str:
    """The summary name standing for a model under a protocol: its seeds' mean, or its one seed."""
    return mean_name(model, len(seeds), protocol) if len(seeds) > 1 else run_name(model, seeds[0], protocol)


def run_contrasts(test: Path, folders: dict, models: dict, resamples: int, keep=None) -> dict:
    """Corner drop, left-right and MRD contrasts (`bench_multiview.corner_contrasts`) of every trained run
    in ``folders`` (summary name -> folder) and of each model's seeds together (``models``: (model,
    protocol) -> seeds), over the expressions in ``keep`` (default: all)."""
    sources = {name: open_predictions(folder / "predictions.jsonl") for name, folder in folders.items()}
    for (model, protocol), seeds in models.items():
        if len(seeds) > 1:
            sources[seed_key(model, seeds, protocol)] = [sources[run_name(model, seed, protocol)] for seed in seeds]
    return {
        name: corner_contrasts(test, source if isinstance(source, list) else [source], resamples, CORNERS3, keep)
        for name, source in sources.items()
    }


def scored_models(runs) -> dict:
    """(model, protocol) -> sorted seeds of the (model, seed, protocol) ``runs``: models in MODEL_RUNS'
    order, then the others by name; protocols in PROTOCOLS' order."""
    order = list(MODEL_RUNS)

    def rank(key):
        model, seed, protocol = key
        return order.index(model) if model in order else len(order), model, PROTOCOLS.index(protocol), seed

    models = {}
    for model, seed, protocol in sorted(runs, key=rank):
        models.setdefault((model, protocol), []).append(seed)
    return models


def summarise_runs(test: Path, folders: dict, models: dict) -> dict:
    """Summary name -> `bench_multiview.summarise` of each run (3x3 corners), the seeds' means after
    each model's runs, the trivial predictors last."""
    center = DatasetStore(test).center
    summaries = {name: summarise(folder, center, CORNERS3) for name, folder in folders.items()}
    names = list(dict.fromkeys(model for model, _ in models))
    seeds = sorted({seed for values in models.values() for seed in values})
    return with_seed_means(summaries, names, seeds)


def study_set(label: str, test: Path, args) -> dict:
    """One set's summary: counts, centre identity, each run's figures, contrasts and edge / visibility
    groups; its runs' results.json committed under ``--results``/displacement/``label``."""
    runs_dir, train = args.cache / "runs" / label, args.experiment / "train"
    runs = {key: runs_dir / folder.name for key, folder in experiment_runs(args.experiment).items()}
    runs = {key: folder for key, folder in runs.items() if (folder / "results.json").is_file()}
    models = scored_models(runs)
    trained = {run_name(*key): folder for key, folder in runs.items()}
    floors = {f"`{name}`": runs_dir / f"floor-{name}" for name in PREDICTORS}
    floors = {name: folder for name, folder in floors.items() if (folder / "results.json").is_file()}
    for folders, trained_on in ((trained, train), (floors, None)):
        for folder in folders.values():
            commit_results(
                folder, args.results / "displacement" / label / f"{folder.name}.json", setting(test, trained_on)
            )
    shared = shared_expressions(test, args.experiment / "test")
    store = DatasetStore(test)
    contrasts = run_contrasts(test, trained, models, args.resamples)
    for name in PREDICTORS:
        if f"`{name}`" in floors and name != "empty":  # the empty mask overlaps nothing: no difference
            contrasts[f"`{name}`"] = corner_contrasts(test, [TrivialPredictions(store, name)], args.resamples, CORNERS3)
    return {
        "setting": setting(test, train),
        "counts": set_counts(test, shared),
        "centre_identity": centre_identity(test, args.experiment / "test"),
        "shares": edge_and_change_shares(test),
        "runs": summarise_runs(test, trained | floors, models),
        "contrasts": contrasts,
        "contrasts_shared": run_contrasts(test, trained, models, args.resamples, keep=shared) if shared else {},
        "edge_and_occlusion": {
            name: explain(test, open_predictions(folder / "predictions.jsonl")) for name, folder in trained.items()
        },
        "models": {f"{model}, {protocol}": seeds for (model, protocol), seeds in models.items()},
    }


def displacement_summary(sets: dict, document: dict, args) -> dict:
    """The displacement study: geometry, and per rendered set its summary (`study_set`)."""
    summary = {"geometry": document, "sets": {}}
    for label, (_, _, test) in sets.items():
        if expressions(test) and (args.cache / "runs" / label).is_dir():
            summary["sets"][label] = study_set(label, test, args)
    return summary


def wall_seconds(logs: list, folder: Path):
    """Seconds that the logged commands writing ``folder`` took (summed over resumptions), or None."""
    seconds = [
        int(line.rsplit("# ", 1)[1].split()[0])
        for log in logs
        if log.is_file()
        for line in log.read_text().splitlines()
        if f" --out {folder} " in f"{line} "
    ]
    return sum(seconds) if seconds else None


def scale_condition(condition: Condition, args, logs: list) -> dict:
    """One scale condition: each run's summary, its wall time (of its training, logged in ``logs``) and the
    contrasts of each model's seeds."""
    runs = {
        (model, seed, protocol): condition.runs / f"{model}-seed{seed}-{protocol}"
        for model in args.scale_models
        for seed in args.scale_seeds
        for protocol in PROTOCOLS
    }
    runs = {key: folder for key, folder in runs.items() if (folder / "results.json").is_file()}
    grouped = scored_models(runs)
    folders = {run_name(*key): folder for key, folder in runs.items()}
    return {
        "setting": setting(condition.test, condition.train),
        "runs": summarise_runs(condition.test, folders, grouped),
        "contrasts": run_contrasts(condition.test, folders, grouped, args.resamples),
        "wall_seconds": {
            name: wall_seconds(logs, condition.trained_in / folder.name) for name, folder in folders.items()
        },
        "pretrain_wall_seconds": wall_seconds(logs, condition.trained_in.parent / "pretrain"),
        "folders": {name: str(folder) for name, folder in folders.items()},
        "models": {f"{model}, {protocol}": seeds for (model, protocol), seeds in grouped.items()},
    }


def scale_summary(args) -> dict:
    """The scale study (`scale_conditions`): each condition's runs, with the pretraining's wall time and
    for the larger views the layouts they share with the experiment's; each run's results.json committed
    under ``--results``/scale."""
    logs = [args.cache / "commands.log", args.experiment.parent / "commands.log"]
    conditions = scale_conditions(args)
    reference, summary = next(iter(conditions.values())), {}
    for label, condition in conditions.items():
        if not (condition.runs.is_dir() and (condition.train / "splits.json").is_file()):
            continue
        summary[label] = figures = scale_condition(condition, args, logs)
        for folder in map(Path, figures["folders"].values()):
            commit_results(folder, args.results / "scale" / label / f"{folder.name}.json", figures["setting"])
        if figures["setting"]["view_size"] != [args.width, args.height]:
            figures["layouts"] = {
                "train": centre_identity(condition.train, reference.train),
                "test": centre_identity(condition.test, reference.test),
            }
    return summary


def interval(figure: dict) -> str:
    return f"{figure['value']:+.2f} ({figure['low']:+.2f} to {figure['high']:+.2f})"


def run_row(name: str, summary: dict, contrasts: dict, shared=None) -> str:
    """One Markdown row: centre, corners, corner drop and MRD with intervals, MVR, and with ``shared`` the
    corner drop over the expressions the 9x9 set shares."""
    figures = contrasts.get(name)
    cells = [format_cell(summary["center"]["oIoU"]), *map(format_cell, summary["corners"].values())]
    cells += [interval(figures[key]) if figures else "n/a" for key in ("corners - centre", "MRD corners")]
    cells.append(format_mvr(summary["MVR_corners"], summary["MVR_corners_valid"]))
    if shared is not None:
        cells.append(interval(shared[name]["corners - centre"]) if name in shared else "")
    return f"| {name} | " + " | ".join(cells) + " |"


def run_table(runs: dict, contrasts: dict, shared=None) -> list:
    """Markdown lines: every run's `run_row` under its header."""
    columns = ["predictions", "centre", "I11", "I13", "I31", "I33", "corners - centre (95 % interval)"]
    columns += ["MRD corners, % (95 % interval)", "MVR corners (%)"]
    columns += [] if shared is None else ["corners - centre, shared expressions"]
    header = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    return header + [run_row(name, run, contrasts, shared) for name, run in runs.items()]


def drop_table(sets: dict, key: str) -> list:
    """Markdown lines: ``key`` ("corners - centre" or "MRD corners") of each model's seeds (mean) per
    protocol and set (or scale condition), with its 95 % interval."""
    lines = ["| model, protocol | " + " | ".join(sets) + " |", "|---" * (len(sets) + 1) + "|"]
    for name in dict.fromkeys(name for figures in sets.values() for name in figures["models"]):
        model, protocol = name.split(", ")
        cells = [
            interval(figures["contrasts"][seed_key(model, figures["models"][name], protocol)][key])
            if name in figures["models"]
            else ""
            for figures in sets.values()
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def geometry_lines(document: dict) -> list:
    """Markdown lines: the geometry of each set's corners and how the convergent offset was chosen."""
    searched = ", ".join(f"{float(offset):g}: {share:.2f} %" for offset, share in document["searched"].items())
    chosen = (
        f"the widest whose corners let no more objects cross the frame edge than the default rig's "
        f"({document['limit_pct']:.2f} %; searched: {searched})"
        if searched
        else "set by --convergent-offset"
    )
    return [
        f"Geometry over {document['requested']['layouts']} layouts (pure geometry, `bench_baseline.measure`): the "
        f"convergent rig's corner offset is {document['convergent_offset']:g}, {chosen}.",
        "",
        "| rig-offset | mean corner shift (px) | objects crossing the frame edge in a corner (%) |",
        "|---|---|---|",
        *(
            f"| {label} | {row['mean_corner_shift_px']:.1f} | {row['leaving_frame_pct']:.2f} |"
            for label, row in document["rigs"].items()
        ),
    ]


def set_row(label: str, figures: dict) -> str:
    """One Markdown row: what a set keeps and how its centre views compare with the 9x9 set's."""
    counts, identity, shares = figures["counts"], figures["centre_identity"], figures["shares"]
    return (
        f"| {label} | {counts['scenes_with_expressions']} / {counts['scenes']} | {counts['expressions']} | "
        f"{counts['expressions_shared_with_9x9']} | {counts['samples']} | "
        f"{counts['objects_visible_in_every_view']} / {counts['objects']} | {shares['edge']:.2f} | "
        f"{shares['visibility_changed']:.2f} | {identity['same_layout']} / {identity.get('same_centre_view')} / "
        f"{identity.get('same_index_png')} of {identity['scenes']} | {identity.get('rgb_max_difference')}, "
        f"{100 * identity.get('rgb_pixels_differing_max', 0):.2f} % |"
    )


def displacement_report(summary: dict) -> str:
    """Markdown: geometry, what each set keeps, and per set every run's figures."""
    lines = [
        "# Displacement",
        "",
        *geometry_lines(summary["geometry"]),
        "",
        "What each set keeps (the referent must be visible in every view), and its centre views against the 9x9 "
        "set's (scenes with the same layout, centre camera and visibility, index PNG bytes; RGB: the largest "
        "difference in grey levels and the largest share of differing pixels of a view); samples over all views:",
        "",
        "| set | scenes with expressions | expressions | shared with 9x9 | samples | objects visible in every view "
        "| samples touching the edge (%) | visibility changed (%) | same layout / centre view / index | RGB |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *(set_row(label, figures) for label, figures in summary["sets"].items()),
        "",
        "Corner drop (oIoU, corners minus centre, points; seeds' mean) with 95 % intervals from resampling the test "
        "scenes:",
        "",
        *drop_table(summary["sets"], "corners - centre"),
        "",
        "MRD over the corners (%):",
        "",
        *drop_table(summary["sets"], "MRD corners"),
        "",
        "Per set, every run: views of the 3x3 grid (I13 = u1_v3, the bottom left; at offset 0.4 these are the 9x9 "
        "grid's I11, I19, I91, I99). MVR weighs a view by 1 / its distance in grid steps, here sqrt(2) for every "
        "offset (on the 9x9 grid 4 sqrt(2): the same IoUs give a quarter of this MVR there); MRD does not depend on "
        "it. The last column is the corner drop over the expressions that the 9x9 set has too (same referent and "
        "text): those `finetune-test` fine-tuned on. `attributes` reads the masks: a perception oracle, not a floor.",
    ]
    for label, figures in summary["sets"].items():
        lines += ["", f"## {label}", "", *run_table(figures["runs"], figures["contrasts"], figures["contrasts_shared"])]
    return "\n".join(lines) + "\n"


def scale_report(summary: dict) -> str:
    """Markdown: per condition every run's figures and wall time."""
    lines = [
        "# Scale",
        "",
        "Corner drop (oIoU, corners minus centre, points; seeds' mean) per condition (view size, then training "
        "scenes where not the experiment's), on the test scenes as a 3x3 grid of step 0.4, with 95 % intervals:",
        "",
        *drop_table(summary, "corners - centre"),
        "",
        "MRD over the corners (%):",
        "",
        *drop_table(summary, "MRD corners"),
        "",
    ]
    for condition, figures in summary.items():
        size, scenes = figures["setting"]["view_size"], figures["setting"]["train_scenes"]
        times = [f"{name} {seconds / 60:.1f} min" for name, seconds in figures["wall_seconds"].items() if seconds]
        if figures.get("pretrain_wall_seconds"):
            times.append(f"pretraining {figures['pretrain_wall_seconds'] / 60:.1f} min")
        lines += [f"## {size[0]}x{size[1]}, {scenes} training scenes (`{condition}`)", ""]
        lines += run_table(figures["runs"], figures["contrasts"])
        lines += ["", "Wall time: " + ("; ".join(times) or "not logged") + ".", ""]
        if "layouts" in figures:
            lines.append(
                "Layouts the same as the experiment's: "
                + "; ".join(
                    f"{part} {ids['same_layout']} of {ids['scenes']}" for part, ids in figures["layouts"].items()
                )
                + ".\n"
            )
    return "\n".join(lines) + "\n"


def drop_points(sets: dict, model: str, protocol: str) -> dict:
    """Rig type -> sorted (corner offset, corner drop figures) of a model's seeds under a protocol."""
    points = {"parallel": [], "convergent": []}
    for figures in sets.values():
        seeds = figures["models"].get(f"{model}, {protocol}")
        if seeds:
            rig = figures["setting"]["rig"]
            drop = figures["contrasts"][seed_key(model, seeds, protocol)]["corners - centre"]
            points[rig["type"]].append((rig["corner_offset"], drop))
    return {rig: sorted(found, key=lambda point: point[0]) for rig, found in points.items() if found}


def draw_drop(summary: dict, path: Path) -> None:
    """The corner drop (seeds' mean, 95 % interval) against the corner offset, one line per model, a panel
    per protocol; the convergent rig as separate markers."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4), dpi=100)
    FigureCanvasAgg(figure)
    panels = dict(zip(PROTOCOLS, figure.subplots(1, 2, sharey=True), strict=True))
    models = list(
        dict.fromkeys(key.split(", ")[0] for figures in summary["sets"].values() for key in figures["models"])
    )
    offsets = sorted({figures["setting"]["rig"]["corner_offset"] for figures in summary["sets"].values()})
    for number, model in enumerate(models):
        spread = 1 + 0.03 * (number - (len(models) - 1) / 2)  # side by side, on a log axis
        for protocol, axes in panels.items():
            for rig, points in drop_points(summary["sets"], model, protocol).items():
                values = np.array([[d["value"], d["value"] - d["low"], d["high"] - d["value"]] for _, d in points])
                axes.errorbar(
                    np.array([offset for offset, _ in points]) * spread,
                    values[:, 0],
                    yerr=values[:, 1:].T,
                    fmt="-o" if rig == "parallel" else "D",
                    color=f"C{number}",
                    capsize=3,
                    label=model if rig == "parallel" else f"{model}, convergent rig",
                )
    for protocol, axes in panels.items():
        axes.axhline(0, color="grey", linewidth=0.8)
        axes.set_xscale("log")
        axes.set_xticks(offsets, labels=[f"{offset:g}" for offset in offsets])
        axes.minorticks_off()
        axes.set(xlabel="corner offset (world units)", title=protocol)
        axes.legend(fontsize=7)
    panels[PROTOCOLS[0]].set_ylabel("oIoU, corners minus centre (points)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)


def report(sets: dict, document: dict, args) -> None:
    """Both studies' summary.json and report.md under ``--results``, and the plot under ``--figures``."""
    studies = {
        "displacement": (displacement_summary(sets, document, args), displacement_report),
        "scale": (scale_summary(args), scale_report),
    }
    for study, (summary, write) in studies.items():
        markdown = write(summary)
        (args.results / study).mkdir(parents=True, exist_ok=True)
        (args.results / study / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
        (args.results / study / "report.md").write_text(markdown)
        print(markdown)
    displacement = studies["displacement"][0]
    if displacement["sets"]:
        draw_drop(displacement, args.figures / "corner-drop.png")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", type=Path, default=EXPERIMENT, help="the multi-view experiment's rig folder")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "clevr-remv" / "displacement")
    parser.add_argument("--families", type=Path, default=Path.home() / ".cache" / "clevr-remv" / "families")
    parser.add_argument("--offsets", default="0.4,1.0,2.0,3.0,4.0", help="corner offsets (world units)")
    parser.add_argument("--convergent-offset", default="auto", help="auto: the widest that keeps objects in frame")
    parser.add_argument("--layouts", type=int, default=500, help="layouts of the geometry check")
    parser.add_argument("--start", type=int, default=765, help="the first test scene (train and val come before)")
    parser.add_argument("--test-scenes", type=int, default=135)
    parser.add_argument("--train-scenes", type=int, default=630)
    parser.add_argument("--large-scenes", type=int, default=1890, help="scale: training scenes of the larger set")
    parser.add_argument("--scale-size", default="320x224", help="scale: the larger views, WxH")
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--height", type=int, default=112)
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--min-pixels", type=int, default=25)
    parser.add_argument("--lens", type=float, default=35.0)
    parser.add_argument("--baseline", type=float, default=0.1, help="the experiment's step (its training set's)")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed")
    parser.add_argument("--scale-models", default="baseline", help=f"of {', '.join(MODEL_RUNS)}")
    parser.add_argument("--scale-seeds", default="0,1")
    parser.add_argument("--epochs", type=int, default=15, help="scale: epochs of the baseline from scratch")
    parser.add_argument("--family-epochs", type=int, default=FAMILY_EPOCHS, help="scale: epochs of the families")
    parser.add_argument("--pretrain-epochs", type=int, default=40)
    parser.add_argument("--finetune-epochs", type=int, default=5)
    parser.add_argument("--resamples", type=int, default=2000, help="resamples of the test scenes per interval")
    parser.add_argument("--stages", default="render,score,scale,report")
    parser.add_argument("--results", type=Path, default=Path("docs/results"))
    parser.add_argument("--figures", type=Path, default=Path("docs/displacement"))
    args = parser.parse_args()
    args.offsets = [float(offset) for offset in args.offsets.split(",")]
    args.scale_models = args.scale_models.split(",")
    args.scale_seeds = [int(seed) for seed in args.scale_seeds.split(",")]
    args.scale_size = tuple(int(side) for side in args.scale_size.split("x"))
    unknown = sorted(set(args.scale_models) - set(MODEL_RUNS))
    if unknown:
        parser.error(f"--scale-models: unknown {', '.join(unknown)}; choose from {', '.join(MODEL_RUNS)}")
    return args


def main():
    args = parse_args()
    stages = set(args.stages.split(","))
    args.cache.mkdir(parents=True, exist_ok=True)
    log = args.cache / "commands.log"
    document = geometry(args)
    sets = displacement_sets(args, document["convergent_offset"])
    if "render" in stages:
        for rig, offset, test in sets.values():
            render_test_set(test, offset, rig, (args.width, args.height), args.min_pixels, args, log)
    if "score" in stages:
        score_sets(sets, args, log)
    if "scale" in stages:
        train_scale(args, log)
    if "report" in stages:
        report(sets, document, args)


if __name__ == "__main__":
    main()
