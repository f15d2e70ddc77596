"""The paper's multi-view protocol: train on the centre views of train, keep the checkpoint with
the best centre oIoU on val, then test on the centre and shifted views of test.

Two protocols (the paper describes both): ``heldout`` (its definitions, eq. 7.1 on) tests the
selected checkpoint on scenes it never saw; ``finetune-test`` (its results section, 7.3.3) first
fine-tunes that checkpoint on the centre views of the test scenes, then tests on their views.
The test scenes may come from another dataset (``test_data``), so that training scenes can be
rendered with their centre view only.

Everything lands in one output folder: ``config.json``, ``checkpoints/{last,best}.pt`` (one
checkpoint per epoch; ``resume=True`` continues from ``last.pt``), ``training.json`` and
``training_curve.png``, ``predictions.jsonl`` and the reports of `clevr_remv.res.evaluate`.
Each epoch reseeds torch with ``seed + epoch``, so a resumed run matches an uninterrupted one.
On a generalized dataset the tested model answers "no target" with an empty mask below a
predicted-area threshold chosen on val (``no_target.json``, `clevr_remv.res.no_target`).

Launched by torchrun, the run trains on every process (`clevr_remv.res.distributed`): the global
batch split across them, val and test predicted in shards and gathered, and only rank 0 writing;
``config.json`` and ``results.json`` record ``world_size`` and ``backend``.
"""

import contextlib
import json
import shutil
import time
import warnings
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from clevr_remv.dataset.atomic import atomic_path
from clevr_remv.dataset.expressions import is_generalized
from clevr_remv.dataset.outdir import check_output_dir, write_manifest
from clevr_remv.dataset.pytorch import ClevrRemvDataset
from clevr_remv.dataset.splits import split_scene_ids
from clevr_remv.dataset.store import DatasetStore, write_json_atomic
from clevr_remv.dataset.validate import image_header_problems
from clevr_remv.errors import ClevrRemvError
from clevr_remv.metrics import intersection_and_union, summarize
from clevr_remv.res import distributed
from clevr_remv.res.evaluate import (
    build_results,
    evaluation_views,
    open_predictions,
    prediction_record,
    score_predictions,
    write_reports,
)
from clevr_remv.res.feature_cache import CachedSamples, cache_views
from clevr_remv.res.models.augment import ConstantImage, FlipAndShift
from clevr_remv.res.models.cnn import read_encoder_file
from clevr_remv.res.models.cnn_family import requires_pretrained
from clevr_remv.res.models.registry import attention_parts, get_model, recipe_overrides
from clevr_remv.res.models.training import (
    StepBatchSampler,
    collate,
    load_checkpoint,
    make_optimizer,
    make_poly_schedule,
    predict,
    save_checkpoint,
    train_epoch,
    training_rounds,
)
from clevr_remv.res.no_target import choose_area_threshold, empty_below
from clevr_remv.res.trivial import PREDICTORS, TrivialPredictions

# Settings that must not change when a run is resumed.
RESUME_KEYS = (
    "model",
    "size",
    "epochs",
    "batch_size",
    "lr",
    "input_size",
    "seed",
    "text_encoder",
    "recipe",
    "iterations",
    "val_every",
    "blind",
)
RESUME_DEFAULTS = {"recipe": "default", "blind": False}  # what a run written before the key existed used
PROTOCOLS = ("heldout", "finetune-test")
DEFAULT_FINETUNE_EPOCHS = 5


def _settings(
    model_name,
    module,
    size,
    epochs,
    batch_size,
    lr,
    device,
    views,
    input_size,
    seed,
    text_encoder,
    vision_weights,
    workers,
) -> dict:
    if epochs < 1 or batch_size < 1:
        raise ClevrRemvError("--epochs / --batch-size: must be at least 1")
    distributed.local_batch(batch_size)  # refuses a global batch the processes do not divide
    distributed.require_device(device)
    if vision_weights and not hasattr(module, "load_vision_weights"):
        raise ClevrRemvError(f"--vision-weights: model {model_name!r} has no Swin backbone to load into")
    if text_encoder and "text_encoder" not in module.default_config(size):
        raise ClevrRemvError(f"--text-encoder: model {model_name!r} learns its own word vectors; drop the option")
    return {
        "model": model_name,
        "size": size,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr if lr is not None else module.DEFAULT_LR,
        "device": device,
        "views": views,
        "input_size": list(input_size) if input_size else None,
        "seed": seed,
        "text_encoder": str(text_encoder) if text_encoder else None,
        "vision_weights": str(vision_weights) if vision_weights else None,
        "workers": workers,
    }


def check_test_data(store: DatasetStore, test_store: DatasetStore) -> None:
    """Refuse a test dataset whose views differ in size from the training data's, or whose test
    scenes are scenes of train or val (same seed and layout settings, same scene index)."""
    train_config, test_config = store.info()["config"], test_store.info()["config"]
    size, test_size = (train_config["width"], train_config["height"]), (test_config["width"], test_config["height"])
    if size != test_size:
        raise ClevrRemvError(
            f"--test-data {test_store.root}: views are {test_size[0]}x{test_size[1]}, the training "
            f"data's {size[0]}x{size[1]}; render both at one size"
        )
    layout_keys = ("seed", "min_objects", "max_objects", "min_pixels", "properties", "lens")
    if all(train_config.get(key) == test_config.get(key) for key in layout_keys):
        seen = set(split_scene_ids(store, "train")) | set(split_scene_ids(store, "val"))
        shared = sorted(seen & set(split_scene_ids(test_store, "test")))
        if shared:
            raise ClevrRemvError(
                f"--test-data {test_store.root}: its test scenes {shared[:5]} (and "
                f"{max(0, len(shared) - 5)} more) are scenes of train or val in {store.root} "
                "(same seed, same index); generate the test scenes with another --start or --seed"
            )


def _schedule(iterations, val_every) -> dict:
    """The iteration-based schedule's settings (None, None: one round per epoch)."""
    if iterations is not None and iterations < 1:
        raise ClevrRemvError(f"--iterations {iterations}: must be at least 1")
    if val_every is not None and (val_every < 1 or iterations is None):
        raise ClevrRemvError(f"--val-every {val_every}: give a positive number of iterations, with --iterations")
    return {"iterations": iterations, "val_every": val_every}


def _check_resumable(previous: dict, requested: dict, out: Path) -> None:
    for key in RESUME_KEYS:
        if previous.get(key, RESUME_DEFAULTS.get(key)) != requested.get(key):
            raise ClevrRemvError(
                f"--resume: the run in {out} used {key}={previous.get(key)!r}, not "
                f"{requested.get(key)!r}; pass the same options or choose another --out"
            )


def _train_texts(store: DatasetStore) -> list:
    return [
        expression["text"]
        for scene in split_scene_ids(store, "train")
        for expression in store.load_refexps(scene, check=False)["expressions"]
    ]


def _loader(dataset, settings, shuffle: bool, generator=None) -> DataLoader:
    """This process's batches of ``dataset``, shuffled by ``generator`` (under torchrun by a
    `DistributedSampler`, the generator then seeding the workers) or in order."""
    sampler = distributed.sampler(dataset, settings["seed"]) if shuffle else None
    return DataLoader(
        dataset,
        batch_size=distributed.local_batch(settings["batch_size"]),
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        collate_fn=collate,
        num_workers=settings["workers"],
        generator=generator,
        pin_memory=settings["device"] == "cuda",
    )


def _samples(model, store, split: str, views, settings, augment: bool = False):
    """The samples a run reads from ``split``: `ClevrRemvDataset` items (flipped and shifted when
    ``augment``), or, for a model that keeps its stem frozen, `CachedSamples` of its cached stem
    features (`clevr_remv.res.feature_cache`; augmented in feature space)."""
    if not uses_feature_cache(model, settings):
        steps = ([ConstantImage()] if settings.get("blind") else []) + ([FlipAndShift()] if augment else [])
        return ClevrRemvDataset(store.root, split=split, views=views, transform=Compose(steps) if steps else None)
    samples = ClevrRemvDataset(store.root, split=split, views=views)
    keys = [(scene, view) for scene in split_scene_ids(store, split) for view in samples.views]
    arguments = (model, store, keys, settings["input_size"], augment, settings.get("feature_cache"), settings["device"])
    distributed.on_main(cache_views, *arguments)  # rank 0 fills the cache, then every rank opens it
    features = cache_views(*arguments)
    return CachedSamples(samples, features, augment, settings["input_size"])


def uses_feature_cache(model, settings) -> bool:
    """Whether a run reads cached stem features: the model keeps a stem frozen, it sees the images
    (not ``blind``) and no DenseCRF needs them."""
    return getattr(model, "frozen_stages", 0) > 0 and not settings.get("densecrf") and not settings.get("blind")


class Compose:
    """Transforms applied in order."""

    def __init__(self, steps):
        self.steps = steps

    def __call__(self, sample: dict) -> dict:
        for step in self.steps:
            sample = step(sample)
        return sample


def _validate(model, loader, tokenizer, settings) -> dict:
    """Centre-view figures on val, computed in memory (under torchrun: over every process's shard)."""
    pairs = distributed.gather(
        [
            intersection_and_union(prediction, target)
            for *_, prediction, target in predict(
                model, loader, tokenizer, settings["device"], settings["input_size"], description="val"
            )
        ]
    )
    return summarize([intersection for intersection, _ in pairs], [union for _, union in pairs])


def draw_training_curve(history: list, path) -> None:
    """Train loss and val centre oIoU / mIoU per epoch (per iteration for an iteration-based run)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    unit = "iteration" if "iteration" in history[0] else "epoch"
    epochs = [entry[unit] for entry in history]
    figure = Figure(figsize=(8, 3.2), dpi=100)
    FigureCanvasAgg(figure)
    loss_axes, iou_axes = figure.subplots(1, 2)
    loss_axes.plot(epochs, [entry["train_loss"] for entry in history], marker="o")
    loss_axes.set(xlabel=unit, ylabel="loss", title="train loss (centre views)")
    for key in ("val_oIoU", "val_mIoU"):
        iou_axes.plot(epochs, [entry[key] for entry in history], marker="o", label=key[4:])
    iou_axes.set(xlabel=unit, ylabel="%", title="val centre view", ylim=(0, 100))
    iou_axes.legend()
    for axes in (loss_axes, iou_axes):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")


def _start(module, store, settings, out, resume, config_overrides):
    """(config, model, checkpoint state or None): fresh, or restored from ``last.pt``."""
    last = out / "checkpoints" / "last.pt"
    if last.is_file() and not resume:
        raise ClevrRemvError(
            f"--out {out}: holds a previous run (checkpoints/last.pt); pass --resume "
            "to continue it or choose another --out"
        )
    if resume and last.is_file():
        state = load_checkpoint(last)
        _check_resumable(state["settings"], settings, out)
        model = module.build_model(state["config"])
        model.load_state_dict(state["model"])
        return state["config"], model, state
    if resume and distributed.is_main():
        tqdm.write(f"--resume: no checkpoint in {out}; starting a new run")
    config = {**module.default_config(settings["size"]), **(config_overrides or {})}
    if settings["text_encoder"]:
        config["text_encoder"] = settings["text_encoder"]
    config = module.prepare_config(config, _train_texts(store))
    if config.get("attribute_maps"):  # the classes of the pretrained heads the model fuses
        config["attribute_classes"] = read_encoder_file(settings["vision_weights"])["config"]["attributes"]
    torch.manual_seed(settings["seed"])
    model = module.build_model(config)
    distributed.on_main(_report_text_encoder, model, out)
    backbone = module.vision_backbone(config) if hasattr(module, "vision_backbone") else None
    if settings["vision_weights"]:  # load_vision_weights refuses a config without such a backbone
        report = module.load_vision_weights(model, settings["vision_weights"])
        distributed.on_main(_report_vision_weights, report, out)
    elif backbone and backbone != "cnn" and distributed.is_main():
        warnings.warn(
            f"no --vision-weights: the {backbone} backbone trains from scratch, which needs far "
            "more epochs than fine-tuning pretrained weights",
            stacklevel=3,
        )
    return config, model, None


def _report_vision_weights(report: dict, out: Path) -> None:
    """Write and summarise the load report of ``--vision-weights``."""
    write_json_atomic(out / "vision_weights.json", report)
    tqdm.write(
        f"vision weights: {report['loaded']} tensors loaded, {len(report['missing'])} "
        f"missing, {len(report['unexpected'])} unexpected (see {out / 'vision_weights.json'})"
    )


def _report_text_encoder(model, out: Path) -> None:
    """Write and summarise the load report of a pretrained text encoder (models that have one)."""
    report = getattr(model, "text_encoder_report", None)
    if report is None:
        return
    write_json_atomic(out / "text_encoder.json", report)
    tqdm.write(
        f"text encoder: {report['loaded']} tensors loaded, {len(report['missing'])} missing (randomly "
        f"initialised), {len(report['unexpected'])} unexpected (see {out / 'text_encoder.json'})"
    )


def _write_lines(path, lines) -> None:
    with open(path, "w") as stream:
        for line in lines:
            stream.write(line + "\n")


def _test(model, tokenizer, store, settings, out, best_state, tested_state) -> dict:
    """Predict the test split of ``store`` at the chosen views with ``tested_state``'s weights (the
    best checkpoint, or its fine-tuned copy); write predictions and reports. On generalized data
    ``tested_state["no_target"]`` is the area rule that empties small masks
    (`clevr_remv.res.no_target`). Under torchrun each process predicts a shard and rank 0 writes."""
    no_target = tested_state.get("no_target")
    model.load_state_dict(tested_state["model"])
    views = evaluation_views(store, settings["views"])
    dataset = _samples(model, store, "test", views, settings)
    records = distributed.gather(
        json.dumps(prediction_record(scene, expression_id, view, empty_below(prediction, no_target)))
        for scene, expression_id, view, prediction, _ in predict(
            model,
            _loader(distributed.shard(dataset), settings, False),
            tokenizer,
            settings["device"],
            settings["input_size"],
            description="test",
            refine=_refiner(settings),
        )
    )
    results = distributed.on_main(_report, records, store, views, settings, out, best_state, tested_state)
    return distributed.broadcast(results)


def _report(records, store, views, settings, out, best_state, tested_state) -> dict:
    """Write the test predictions (JSON lines), score them and write the reports; the results."""
    predictions_path = out / "predictions.jsonl"
    with atomic_path(predictions_path) as tmp:
        _write_lines(tmp, records)
    source = open_predictions(predictions_path)
    scores, missing, shape = score_predictions(store, "test", views, source)
    results = build_results(store, "test", settings["views"], scores, missing, shape, source, "oIoU")
    results["benchmark"] = {
        "model": settings["model"],
        "size": settings["size"],
        "best_epoch": best_state["epoch"],
        "best_val_oIoU": best_state["val_oIoU"],
        "protocol": settings["protocol"],
        "test_data": str(store.root),
        "finetune_epochs": tested_state.get("finetune_epochs", 0),
        "seed": settings["seed"],
        "world_size": settings["world_size"],
        "backend": settings["backend"],
    }
    results["benchmark"]["densecrf"] = bool(settings.get("densecrf"))
    results["benchmark"]["blind"] = bool(settings.get("blind"))
    attention = attention_parts(settings["model"])
    results["benchmark"].update(attention=attention, a_num=sum(attention.values()))
    if tested_state.get("no_target") is not None:
        results["benchmark"]["no_target"] = tested_state["no_target"]
    results["trivial_predictors"] = trivial_floors(store, "test", views, settings["seed"])
    write_reports(results, store, out)
    return results


def _refiner(settings):
    """DenseCRF's refinement of the test predictions when ``densecrf`` is set, else None (argmax)."""
    if not settings.get("densecrf"):
        return None
    from clevr_remv.res.models.densecrf import refine

    return refine


def _no_target_rule(model, tokenizer, store, settings, tested_state, out):
    """On a generalized dataset: the predicted-area threshold below which a mask answers "no
    target", chosen on the val centre views with ``tested_state``'s weights and written to
    no_target.json; None on single-referent data."""
    if not is_generalized(store.info()):
        return None
    model.load_state_dict(tested_state["model"])
    loader = _loader(distributed.shard(_samples(model, store, "val", "center", settings)), settings, False)
    samples = distributed.gather(
        (int(prediction.sum()), *intersection_and_union(prediction, target), int(target.sum()))
        for *_, prediction, target in predict(
            model,
            loader,
            tokenizer,
            settings["device"],
            settings["input_size"],
            description="val no-target area",
            refine=_refiner(settings),
        )
    )
    rule = choose_area_threshold(samples)
    distributed.on_main(_write_rule, rule, out)
    return rule


def _write_rule(rule: dict, out: Path) -> None:
    write_json_atomic(out / "no_target.json", rule)
    tqdm.write(
        f"no target below {rule['pixels']} predicted pixels: val centre gIoU {rule['val_gIoU_argmax']:.2f} "
        f"-> {rule['val_gIoU']:.2f}"
    )


def trivial_floors(store, split, views, seed) -> dict:
    """Predictor name -> {"center", "overall"} summaries of each trivial predictor on ``split``."""
    floors = {}
    for name in PREDICTORS:
        scores, _, _ = score_predictions(store, split, views, TrivialPredictions(store, name, seed), progress=False)
        floors[name] = {"center": scores.per_view().get(store.center), "overall": scores.overall()}
    return floors


def _train(model, network, tokenizer, config, settings, store, out, state) -> dict:
    """Train the remaining rounds (all, or those after ``state``) through ``network`` (``model``, or
    its `distributed.wrap`); returns the best checkpoint. A round is an epoch, or with ``iterations``
    a block of ``val_every`` iterations (its number is the history's "epoch", its last iteration
    the history's "iteration")."""
    train_set = _samples(model, store, "train", "center", settings, augment=bool(config.get("augment")))
    val_set = _samples(model, store, "val", "center", settings)
    generator = torch.Generator()
    train_loader = _loader(train_set, settings, True, generator)
    val_loader = _loader(distributed.shard(val_set), settings, False)
    seed, iterations = settings["seed"], settings.get("iterations")
    rounds = training_rounds(len(train_loader), settings["epochs"], iterations, settings.get("val_every"))
    epochs = len(rounds)
    optimizer = make_optimizer(model, settings["lr"])
    scheduler = make_poly_schedule(optimizer, rounds[-1][1])
    history, best = [], None
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history = state["history"]
        best = load_checkpoint(out / "checkpoints" / "best.pt")
    for epoch in range(len(history) + 1, epochs + 1):
        _seed_epoch(seed + epoch, generator, train_loader, epoch)
        start, stop = rounds[epoch - 1]
        loader, description = train_loader, f"epoch {epoch}/{epochs}"
        if iterations:
            sampler = StepBatchSampler(len(train_set), settings["batch_size"], seed, start, stop)
            loader = DataLoader(
                train_set,
                batch_sampler=sampler,
                collate_fn=collate,
                num_workers=settings["workers"],
                pin_memory=settings["device"] == "cuda",
            )
            description = f"iterations {start + 1}-{stop}/{iterations}"
        started = time.perf_counter()
        loss = train_epoch(
            network,
            loader,
            tokenizer,
            optimizer,
            scheduler,
            config["class_weights"],
            settings["device"],
            settings["input_size"],
            description=description,
            dice_weight=config.get("dice_weight", 0.0),
        )
        seconds = time.perf_counter() - started
        val = _validate(model, val_loader, tokenizer, settings)
        history.append(
            {
                "epoch": epoch,
                **({"iteration": stop} if iterations else {}),
                "train_loss": loss,
                "val_oIoU": val["oIoU"],
                "val_mIoU": val["mIoU"],
                "train_seconds": seconds,
            }
        )
        # A copy: on the CPU, .cpu() returns the live tensors, which later epochs would change.
        weights = {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}
        improved = best is None or val["oIoU"] > best["val_oIoU"]
        if improved:
            best = {"model": weights, "config": config, "settings": settings, "epoch": epoch, "val_oIoU": val["oIoU"]}
        last = {
            "model": weights,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "history": history,
            "config": config,
            "settings": settings,
            "epoch": epoch,
        }
        distributed.on_main(_write_epoch, out, history, best, last, improved)
    return best


def _seed_epoch(seed: int, generator, loader, epoch: int) -> None:
    """Seed torch and the loader's generator for an epoch (another seed on each torchrun process
    but rank 0), and reshuffle a `DistributedSampler`."""
    seed = distributed.rank_seed(seed)
    torch.manual_seed(seed)
    generator.manual_seed(seed)
    distributed.set_epoch(loader, epoch)


def _write_epoch(out: Path, history: list, best: dict, last: dict, improved: bool) -> None:
    """Rank 0's end of a round: the console line, ``best.pt`` (when this round ``improved`` it),
    ``last.pt``, training.json and the curve."""
    entry = history[-1]
    tqdm.write(
        f"epoch {entry['epoch']}: loss {entry['train_loss']:.4f}, val centre oIoU {entry['val_oIoU']:.2f}, "
        f"mIoU {entry['val_mIoU']:.2f}"
    )
    if improved:
        save_checkpoint(out / "checkpoints" / "best.pt", best)
    save_checkpoint(out / "checkpoints" / "last.pt", last)
    write_json_atomic(
        out / "training.json", {"history": history, "best_epoch": best["epoch"], "best_val_oIoU": best["val_oIoU"]}
    )
    draw_training_curve(history, out / "training_curve.png")


def _finetune(model, network, tokenizer, config, settings, test_store, out, best) -> dict:
    """The ``finetune-test`` protocol: train ``best`` further (through ``network``, as `_train`) on
    the centre views of the test split for ``settings["finetune_epochs"]`` epochs (same peak lr,
    poly decay, augmentation as in training; no selection: there is no held-out split left). Kept
    in ``checkpoints/finetuned.pt``, which a resumed run reuses."""
    path = out / "checkpoints" / "finetuned.pt"
    epochs = settings["finetune_epochs"]
    if path.is_file():
        previous = load_checkpoint(path)
        if previous["finetune_epochs"] == epochs and previous["from_epoch"] == best["epoch"]:
            return previous
    model.load_state_dict(best["model"])
    dataset = _samples(model, test_store, "test", "center", settings, augment=bool(config.get("augment")))
    generator = torch.Generator()
    loader = _loader(dataset, settings, True, generator)
    optimizer = make_optimizer(model, settings["lr"])
    scheduler = make_poly_schedule(optimizer, epochs * len(loader))
    for epoch in range(1, epochs + 1):
        _seed_epoch(settings["seed"] + 10_000 + epoch, generator, loader, epoch)
        loss = train_epoch(
            network,
            loader,
            tokenizer,
            optimizer,
            scheduler,
            config["class_weights"],
            settings["device"],
            settings["input_size"],
            description=f"fine-tune on test centre views {epoch}/{epochs}",
            dice_weight=config.get("dice_weight", 0.0),
        )
        if distributed.is_main():
            tqdm.write(f"fine-tune epoch {epoch}: loss {loss:.4f}")
    weights = {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}
    state = {"model": weights, "finetune_epochs": epochs, "from_epoch": best["epoch"]}
    distributed.on_main(save_checkpoint, path, state)
    return state


def check_data(store: DatasetStore, views: str, test_store: DatasetStore = None) -> None:
    """Fail before training when train or val has no centre-view sample, test none at ``views``,
    or an image the run will read is missing or not a PNG of the dataset's size (headers only,
    as ``validate --quick``). The test split is read from ``test_store`` (default: ``store``)."""
    test_store = test_store or store
    test_views = evaluation_views(test_store, views)
    problems = []
    for split, split_views, split_store in (
        ("train", [store.center], store),
        ("val", [store.center], store),
        ("test", test_views, test_store),
    ):
        if len(ClevrRemvDataset(split_store.root, split=split, views=split_views)) == 0:
            raise ClevrRemvError(
                f"{split_store.splits_path}: split {split!r} has no sample in the views the "
                "benchmark reads; generate more scenes and rerun `clevr-remv split`"
            )
        scene_views = [(scene, view) for scene in split_scene_ids(split_store, split) for view in split_views]
        problems += image_header_problems(
            split_store, tqdm(scene_views, desc=f"check {split} image headers", unit="view")
        )
    if problems:
        more = f" ({len(problems) - 1} more image problem(s))" if len(problems) > 1 else ""
        raise ClevrRemvError(
            f"{problems[0].path}: {problems[0].message}{more}; `clevr-remv validate --data DIR --quick` lists them all"
        )


def _earlier_run(folder: Path) -> bool:
    """Whether ``folder`` holds a run made before output folders had a manifest: one with a
    checkpoint, or one stopped in its first epoch (its config.json and an empty checkpoints/)."""
    if (folder / "checkpoints" / "last.pt").is_file():
        return True
    with contextlib.suppress(OSError, ValueError):
        names = {entry.name for entry in folder.iterdir()}
        config = json.loads((folder / "config.json").read_bytes().decode("utf-8"))
        checkpoints = folder / "checkpoints"
        empty = not checkpoints.exists() or (checkpoints.is_dir() and not any(checkpoints.iterdir()))
        return names <= {"config.json", "checkpoints"} and isinstance(config, dict) and "settings" in config and empty
    return False


@contextlib.contextmanager
def _removed_on_error(out: Path):
    """Create ``out`` if needed; if this call created it and a ClevrRemvError ends the run,
    remove it again, so a failed run leaves no folder that looks like a result (rank 0's task
    under torchrun)."""
    if not distributed.is_main():
        yield out
        return
    created = not out.exists()
    write_manifest(out, "benchmark")  # creates it
    try:
        yield out
    except ClevrRemvError:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise


def run_benchmark(
    data,
    model_name: str,
    out,
    epochs: int = 40,
    batch_size: int = 8,
    lr=None,
    device: str = "cpu",
    views: str = "corners",
    resume: bool = False,
    size: str = "tiny",
    text_encoder=None,
    vision_weights=None,
    input_size=None,
    workers: int = 0,
    recipe: str = "default",
    iterations=None,
    val_every=None,
    densecrf: bool = False,
    seed: int = 0,
    config_overrides=None,
    test_data=None,
    protocol: str = "heldout",
    finetune_epochs: int = DEFAULT_FINETUNE_EPOCHS,
    feature_cache=None,
    blind: bool = False,
) -> dict:
    """Train ``model_name`` on the centre views of train, select on val centre oIoU, test on the
    centre and ``views`` of test; returns the results dict (also written to ``out``).

    ``input_size``: (width, height) fed to the network (None = native); ``config_overrides``:
    entries replacing the model config of a new run (e.g. a smaller backbone), over those of
    ``recipe`` (a name in the model's ``RECIPES``); ``iterations``: train this many steps instead of
    ``epochs`` epochs (poly decay over them), validating every ``val_every`` steps (default: one
    epoch's); ``densecrf``: refine the test predictions with DenseCRF; ``test_data``: the dataset
    whose test split is scored (default ``data``); ``protocol``: one of PROTOCOLS; ``feature_cache``:
    the root of cached stem features (`clevr_remv.res.feature_cache`; default: the user's cache);
    ``blind``: train and test on a constant image (`ConstantImage`), the no-vision floor.

    Launched by torchrun with several processes, each trains a DistributedDataParallel copy on
    ``batch_size`` / N samples per step (`clevr_remv.res.distributed`); every process returns the
    results, rank 0 alone writes.
    """
    module = get_model(model_name)
    store = DatasetStore(data)
    test_store = DatasetStore(test_data) if test_data is not None else store
    if protocol not in PROTOCOLS:
        raise ClevrRemvError(f"--protocol: {protocol!r} is not one of {', '.join(PROTOCOLS)}")
    if protocol == "finetune-test" and finetune_epochs < 1:
        raise ClevrRemvError(f"--finetune-epochs: {finetune_epochs} must be at least 1")
    settings = _settings(
        model_name,
        module,
        size,
        epochs,
        batch_size,
        lr,
        device,
        views,
        input_size,
        seed,
        text_encoder,
        vision_weights,
        workers,
    )
    settings.update(
        _schedule(iterations, val_every),
        recipe=recipe,
        densecrf=densecrf,
        feature_cache=str(feature_cache) if feature_cache else None,
        blind=blind,
    )
    if densecrf:
        from clevr_remv.res.models.densecrf import check_available

        check_available()  # a missing package fails now, not after training
    config_overrides = {**recipe_overrides(module, recipe), **(config_overrides or {})}
    if vision_weights and module.vision_backbone({**module.default_config(size), **config_overrides}) == "cnn":
        read_encoder_file(vision_weights)  # not an encoder of `pretrain`: refused now, not after the data checks
    needs = requires_pretrained({**module.default_config(size), **config_overrides})
    if needs and not vision_weights:
        raise ClevrRemvError(
            f"--recipe {recipe}: model {model_name!r} needs --vision-weights, because {needs}; run "
            "`clevr-remv pretrain --data DATA --out P` and pass --vision-weights P/encoder.pt"
        )
    settings.update(
        protocol=protocol,
        finetune_epochs=finetune_epochs if protocol == "finetune-test" else 0,
        test_data=str(test_store.root),
    )
    if test_store is not store:
        check_test_data(store, test_store)
    with distributed.session(device) as backend:
        settings.update(world_size=distributed.world_size(), backend=backend)
        # Bad splits, views or images fail now, not after training.
        distributed.on_main(check_data, store, views, test_store)
        check_output_dir(out, "benchmark", {"--data": data, "--test-data": test_data}, ours=_earlier_run)
        distributed.barrier()  # every process checked --out before rank 0 writes into it
        with _removed_on_error(Path(out)) as out:
            config, model, state = _start(module, store, settings, out, resume, config_overrides)
            model.to(device)
            network = distributed.wrap(model, device)
            tokenizer = module.build_tokenizer(config)
            distributed.on_main(write_json_atomic, out / "config.json", {"settings": settings, "model": config})
            best = _train(model, network, tokenizer, config, settings, store, out, state)
            tested = best
            if protocol == "finetune-test":
                tested = _finetune(model, network, tokenizer, config, settings, test_store, out, best)
            tested = {**tested, "no_target": _no_target_rule(model, tokenizer, store, settings, tested, out)}
            return _test(model, tokenizer, test_store, settings, out, best, tested)
