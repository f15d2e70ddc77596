"""The RES commands: ``clevr-remv evaluate`` (score predictions) and ``clevr-remv benchmark``
(train an RES model on centre views, test on shifted views)."""

import click

from clevr_remv.geometry import VIEW_SETS
from clevr_remv.metrics import GENERALIZED_KEYS, ROBUSTNESS_IOUS
from clevr_remv.res.evaluate import describe_keys, evaluate, format_cell
from clevr_remv.res.models.registry import MODELS, SIZES
from clevr_remv.res.trivial import PREDICTORS


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
@click.option("--batch-size", default=8, show_default=True, type=int, help="Samples per training step.")
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
    help="lavt: a Swin checkpoint (.pth/.safetensors) for the backbone; baseline with --recipe "
    "paper-resnet101: an ImageNet ResNet-101 in torchvision's layout. Without it the "
    "backbone trains from scratch.",
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
    "takes --vision-weights). See docs/fidelity.md.",
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
):
    """Train an RES model on the centre views of train, keep the best checkpoint by val centre
    oIoU, and test it on the centre and shifted views of test.

    Writes results.json, results.md, iou_heatmap.png (as `clevr-remv evaluate`), predictions.jsonl,
    training_curve.png, training.json, config.json and checkpoints/ (one per epoch) to --out.
    """
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
    )
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
    """The console line of MVR and MRD (percent, or n/a when undefined)."""

    def percent(value) -> str:
        text = format_cell(value)
        return text if text == "n/a" else f"{text} %"

    return f"MVR {percent(results['MVR'])}  MRD {percent(results['MRD'])}  ({iou})"


def generalized_line(results: dict) -> str:
    """The console line of the generalized figures over all samples (an empty mask = "no target")."""
    overall = results["overall"]
    return "generalized, all samples: " + "  ".join(f"{key} {format_cell(overall[key])}" for key in GENERALIZED_KEYS)


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
    help="Score a trivial predictor instead of --predictions: the empty mask, the largest or a "
    "random visible object, or the one object matching the expression's attribute words.",
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

    Pass exactly one of --predictions (a model's masks) and --predictor (a trivial floor).
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
        f"all {results['samples']} samples: mIoU {format_cell(results['overall']['mIoU'])}  "
        f"oIoU {format_cell(results['overall']['oIoU'])}"
    )
    if results["MVR"] is not None:
        click.echo(robustness_line(results, mvr_iou))
    if "expressions" in results:
        click.echo(generalized_line(results))
    if results["missing_predictions"]:
        click.echo(f"{results['missing_predictions']} samples had no prediction (scored as empty)")
    if results["unused_predictions"]:
        click.echo(
            f"{results['unused_predictions']} prediction(s) matched no sample of split {split!r} at the "
            f"{views} views, e.g. {describe_keys(results['unused_examples'])}"
        )
    click.echo(f"reports written to {out}")
