"""The RES commands: ``clevr-remv evaluate`` (score predictions) and ``clevr-remv benchmark``
(train an RES model on centre views, test on shifted views)."""

import click

from clevr_remv.geometry import VIEW_SETS
from clevr_remv.metrics import GENERALIZED_KEYS, ROBUSTNESS_IOUS
from clevr_remv.res.evaluate import NOT_COMPARABLE, describe_keys, evaluate, format_cell
from clevr_remv.res.models.registry import MODELS, SIZES
from clevr_remv.res.trivial import PREDICTORS
from clevr_remv.wording import plural


def _parse_size(ctx, param, value):
    """'480x320' -> (480, 320); None stays None (native resolution)."""
    if value is None:
        return None
    try:
        width, height = (int(part) for part in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"{value!r}: write WIDTHxHEIGHT, e.g. 240x160") from None
    if width < 32 or height < 32:
        raise click.BadParameter(f"{value!r}: both sides must be at least 32 pixels")
    return width, height


@click.command("benchmark")
@click.option(
    "--model", "model_name", required=True, metavar="NAME", help=f"Registered model: {', '.join(sorted(MODELS))}."
)
@click.option(
    "--data",
    "data_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Dataset root with splits.json (run `clevr-remv split` first).",
)
@click.option("--epochs", default=40, show_default=True, type=int, help="Training epochs (the paper: 40).")
@click.option(
    "--batch-size",
    default=8,
    show_default=True,
    type=int,
    help="Samples per training step; under torchrun the global batch, split evenly across the processes.",
)
@click.option(
    "--lr",
    type=float,
    default=None,
    help="Peak learning rate of AdamW (poly decay); default: the model's (lavt 5e-5, baseline 1e-3).",
)
@click.option(
    "--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True, help="Where to train and predict."
)
@click.option(
    "--views",
    type=click.Choice(["corners", "all"]),
    default="corners",
    show_default=True,
    help="Test views besides the centre: the four corners (the paper) or every view.",
)
@click.option(
    "--out",
    default=None,
    type=click.Path(file_okay=False),
    help="Output folder (checkpoints, reports); default: benchmark-<model>-<size>.",
)
@click.option("--resume", is_flag=True, help="Continue the interrupted run in --out from its last checkpoint.")
@click.option(
    "--size",
    type=click.Choice(SIZES),
    default="tiny",
    show_default=True,
    help="Model size; for lavt the Swin-T / Swin-S / Swin-B backbone.",
)
@click.option(
    "--text-encoder",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="lavt: folder of a local BERT-family model (default: the offline MiniLM package).",
)
@click.option(
    "--vision-weights",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="baseline, cmsa, lavt-cnn: the encoder.pt of `clevr-remv pretrain` (same --size); lavt: a Swin "
    "checkpoint (.pth/.safetensors) for the backbone; baseline with --recipe paper-resnet101: an ImageNet "
    "ResNet-101 in torchvision's layout. Without it the backbone trains from scratch.",
)
@click.option(
    "--input-size",
    callback=_parse_size,
    default=None,
    metavar="WxH",
    help="Resize images to WxH for the network (e.g. 240x160 on CPU); "
    "scores are always computed at the native resolution.",
)
@click.option("--workers", default=2, show_default=True, type=int, help="DataLoader worker processes.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of initialisation and shuffling.")
@click.option(
    "--recipe",
    default="default",
    show_default=True,
    help="Model recipe (config overrides): baseline paper (the paper's concat fusion, 1x1 head, "
    "cross-entropy, no augmentation) or paper-resnet101 (the same on a dilated ResNet-101 that "
    "takes --vision-weights); lavt zero-gate, pytorch-init, drop-path-0.2, unaligned-upsampling or "
    "train-all-text (each switches one LAVT-RIS detail back). See docs/fidelity.md.",
)
@click.option(
    "--iterations",
    type=click.IntRange(1),
    default=None,
    help="Train this many iterations (batches) instead of --epochs, poly decay over them "
    "(the paper: 800,000 for its CNN-LSTM models).",
)
@click.option(
    "--val-every",
    type=click.IntRange(1),
    default=None,
    help="With --iterations: validate (and checkpoint) every this many iterations [default: one epoch's].",
)
@click.option(
    "--densecrf",
    is_flag=True,
    help="Refine the test predictions with DenseCRF (needs pip install pydensecrf2, which compiles; "
    "the paper reports its CNN-LSTM models with and without it).",
)
@click.option(
    "--test-data",
    "test_data_dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Score the test split of this dataset instead of --data's (e.g. train on a centre-view-only "
    "dataset, test on a 9x9 one); views of the same size, scenes disjoint from train and val.",
)
@click.option(
    "--protocol",
    type=click.Choice(["heldout", "finetune-test"]),
    default="heldout",
    show_default=True,
    help="heldout: test the best val checkpoint on unseen scenes (the paper's definitions); "
    "finetune-test: first fine-tune it on the test scenes' centre views (the paper's section 7.3.3).",
)
@click.option(
    "--finetune-epochs",
    default=5,
    show_default=True,
    type=int,
    help="Epochs of fine-tuning on the test centre views with --protocol finetune-test.",
)
@click.option(
    "--feature-cache",
    default=None,
    type=click.Path(file_okay=False),
    help="Folder of cached stem features, for models that keep a pretrained stem frozen (recipes "
    "frozen-stem*) [default: $XDG_CACHE_HOME/clevr-remv/features].",
)
@click.option(
    "--blind",
    is_flag=True,
    help="Train and test on a constant grey image: the no-vision floor (what the words and the "
    "dataset's priors alone reach), VQA's blind baseline.",
)
def benchmark(
    model_name,
    data_dir,
    epochs,
    batch_size,
    lr,
    device,
    views,
    out,
    resume,
    size,
    text_encoder,
    vision_weights,
    input_size,
    workers,
    seed,
    recipe,
    iterations,
    val_every,
    densecrf,
    test_data_dir,
    protocol,
    finetune_epochs,
    feature_cache,
    blind,
):
    """Train an RES model on the centre views of train, keep the best checkpoint by val centre
    oIoU, and test it on the centre and shifted views of test.

    Writes results.json, results.md, iou_heatmap.png (as `clevr-remv evaluate`), predictions.jsonl,
    training_curve.png, training.json, config.json and checkpoints/ (one per epoch) to --out.

    Runs on several processes (DistributedDataParallel) when launched with
    `torchrun --standalone --nproc_per_node N -m clevr_remv benchmark ...`.
    """
    from clevr_remv.res import distributed
    from clevr_remv.res.benchmark import run_benchmark
    from clevr_remv.res.models.registry import get_model

    get_model(model_name)  # a clear error for unknown names before anything slow
    out = out or f"benchmark-{model_name}-{size}"
    results = run_benchmark(
        data_dir,
        model_name,
        out,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        device=device,
        views=views,
        resume=resume,
        size=size,
        text_encoder=text_encoder,
        vision_weights=vision_weights,
        input_size=input_size,
        workers=workers,
        seed=seed,
        recipe=recipe,
        iterations=iterations,
        val_every=val_every,
        densecrf=densecrf,
        test_data=test_data_dir,
        protocol=protocol,
        finetune_epochs=finetune_epochs,
        feature_cache=feature_cache,
        blind=blind,
    )
    if not distributed.is_main():
        return
    center = results["center"]
    click.echo(
        f"test centre: mIoU {format_cell(center['mIoU'])}  oIoU {format_cell(center['oIoU'])}  "
        f"(best epoch {results['benchmark']['best_epoch']})"
    )
    if results["MVR"] is not None:
        click.echo(robustness_line(results, "oIoU"))
    if "expressions" in results:
        click.echo(generalized_line(results))
    click.echo(f"reports written to {out}")


def robustness_line(results: dict, iou: str) -> str:
    """The console line of MVR and MRD (percent, or n/a when undefined); an MVR that is not
    comparable (some view below 1/e of the centre IoU) is marked so."""

    def percent(value) -> str:
        text = format_cell(value)
        return text if text == "n/a" else f"{text} %"

    marker = f" ({NOT_COMPARABLE}: a view below 1/e of the centre IoU)" if results["mvr_valid"] is False else ""
    return f"MVR {percent(results['MVR'])}{marker}  MRD {percent(results['MRD'])}  ({iou})"


def generalized_line(results: dict) -> str:
    """The console line of the generalized figures over all samples (an empty mask = "no target")."""
    overall = results["overall"]
    return "generalized, all samples: " + "  ".join(f"{key} {format_cell(overall[key])}" for key in GENERALIZED_KEYS)


@click.command("pretrain")
@click.option(
    "--data",
    "data_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Dataset root with splits.json; only the train split's centre views are read (val measures).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="Output folder: encoder.pt, pretrain.json, checkpoints/.",
)
@click.option("--epochs", default=15, show_default=True, type=int, help="Passes over the training centre views.")
@click.option(
    "--size",
    type=click.Choice(SIZES),
    default="tiny",
    show_default=True,
    help="Encoder size (the CNN models' --size that will load it).",
)
@click.option(
    "--input-size",
    callback=_parse_size,
    default=None,
    metavar="WxH",
    help="Resize views to WxH (multiples of 8; the benchmark's --input-size); default: native.",
)
@click.option(
    "--batch-size",
    default=32,
    show_default=True,
    type=int,
    help="Views per step; under torchrun the global batch, split evenly across the processes.",
)
@click.option("--lr", default=1e-3, show_default=True, type=float, help="Peak learning rate of AdamW (poly decay).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of initialisation and shuffling.")
@click.option("--resume", is_flag=True, help="Continue the interrupted run in --out from its last checkpoint.")
def pretrain_command(data_dir, out, epochs, size, input_size, batch_size, lr, seed, resume):
    """Pretrain the CNN encoder to name, for every cell, the colour, shape, material and size of the
    object covering it (or background), from the train split's centre views.

    Writes encoder.pt (load it with `benchmark --vision-weights OUT/encoder.pt`) and pretrain.json
    (per-attribute accuracy on the val centre views, the data read, wall time) to --out.

    Runs on several CPU processes (DistributedDataParallel, gloo) when launched with
    `torchrun --standalone --nproc_per_node N -m clevr_remv pretrain ...`.
    """
    from clevr_remv.res import distributed
    from clevr_remv.res.models.attributes import ATTRIBUTES
    from clevr_remv.res.pretrain import run_pretrain

    document = run_pretrain(
        data_dir,
        out,
        epochs=epochs,
        size=size,
        input_size=input_size,
        seed=seed,
        batch_size=batch_size,
        lr=lr,
        resume=resume,
    )
    if not distributed.is_main():
        return
    if document["val"]:
        click.echo(
            "val centre views, foreground cells: "
            + ", ".join(f"{name} {document['val'][name]['foreground_cells']:.1f} %" for name in ATTRIBUTES)
        )
    click.echo(f"encoder written to {out}/encoder.pt ({document['wall_seconds']:.0f} s of training)")


@click.command("evaluate")
@click.option(
    "--data", "data_dir", required=True, type=click.Path(file_okay=False), help="Dataset root (with splits.json)."
)
@click.option(
    "--predictions",
    type=click.Path(),
    help="JSON Lines file (scene, expression_id, view [u, v], mask as COCO RLE per line) or "
    "folder of {scene:06d}/{expression_id}/u{u}_v{v}.png masks (non-zero = referent).",
)
@click.option(
    "--predictor",
    type=click.Choice(PREDICTORS),
    default=None,
    help="Score a reference predictor instead of --predictions: the floors empty (the empty mask), "
    "largest or random (a visible object), or the perception oracle attributes (the true masks and a "
    "perfect parse of the referent's attribute words: not a floor).",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of --predictor random.")
@click.option("--split", default="test", show_default=True, help="Split to score (a name in splits.json).")
@click.option(
    "--views",
    type=click.Choice(VIEW_SETS),
    default="corners",
    show_default=True,
    help="Views to score: the centre only, the centre and the four corners, or every view.",
)
@click.option(
    "--out",
    default="evaluation",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for results.json, results.md and iou_heatmap.png.",
)
@click.option(
    "--mvr-iou",
    type=click.Choice(ROBUSTNESS_IOUS),
    default="oIoU",
    show_default=True,
    help="Which IoU feeds MVR, MRD and the heatmap.",
)
def evaluate_command(data_dir, predictions, predictor, seed, split, views, out, mvr_iou):
    """Score RES predictions: P@0.5-0.9, mIoU, oIoU per view and overall, MVR and MRD.

    Pass exactly one of --predictions (a model's masks) and --predictor (a floor or the attributes oracle).
    Missing predictions count as empty masks and are reported.
    """
    results = evaluate(data_dir, predictions, split, views, out, mvr_iou, predictor=predictor, seed=seed)
    center = results["center"]
    if center is not None:
        click.echo(
            f"centre: mIoU {format_cell(center['mIoU'])}  oIoU {format_cell(center['oIoU'])}  "
            f"P@0.5 {format_cell(center['P@0.5'])}"
        )
    click.echo(
        f"all {plural(results['samples'], 'sample')}: mIoU {format_cell(results['overall']['mIoU'])}  "
        f"oIoU {format_cell(results['overall']['oIoU'])}"
    )
    if results["MVR"] is not None:
        click.echo(robustness_line(results, mvr_iou))
    if "expressions" in results:
        click.echo(generalized_line(results))
    if results["missing_predictions"]:
        click.echo(f"{plural(results['missing_predictions'], 'sample')} had no prediction (scored as empty)")
    if results["unused_predictions"]:
        click.echo(
            f"{plural(results['unused_predictions'], 'prediction')} matched no sample of split {split!r} at the "
            f"{views} views, e.g. {describe_keys(results['unused_examples'])}"
        )
    click.echo(f"reports written to {out}")
