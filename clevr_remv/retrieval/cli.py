"""``clevr-remv retrieval``: train, evaluate, ablation (and a synthetic demo set)."""

from dataclasses import fields
from functools import partial
from pathlib import Path

import click

from clevr_remv.dataset.outdir import check_output_dir, check_output_file, only_names, write_manifest
from clevr_remv.errors import ClevrRemvError
from clevr_remv.wording import plural

DISTANCE_CHOICE = click.Choice(["cos", "msd", "l1", "l2"])


def _data_options(command, format_default="precomp"):
    format_help = "precomp: VSE++/SCAN features; remv: CLEVR-REMV centre views."
    options = [
        click.option(
            "--data",
            required=True,
            type=click.Path(exists=True, file_okay=False),
            help="Precomputed-feature folder ({train,dev,test}_ims.npy + _caps.txt) or a CLEVR-REMV root.",
        ),
        click.option(
            "--format",
            "data_format",
            type=click.Choice(["precomp", "remv"]),
            default=format_default,
            show_default=format_default is not None,
            help=format_help + ("" if format_default else " [default: the checkpoint's]"),
        ),
        click.option(
            "--image-size",
            type=click.IntRange(16),
            default=128,
            show_default=True,
            help="remv only: shrink centre views so the longer side is at most this many pixels.",
        ),
        click.option(
            "--device", default="auto", show_default=True, help="auto (CUDA when available), cpu, cuda or cuda:N."
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _training_options(command):
    options = [
        click.option("--margin", type=float, default=0.2, show_default=True, help="Hinge margin alpha."),
        click.option(
            "--mu-down",
            type=float,
            default=0.05,
            show_default=True,
            help="IMC band: lower distance threshold (--imc-variant code: a rank fraction).",
        ),
        click.option(
            "--mu-up",
            type=float,
            default=0.5,
            show_default=True,
            help="IMC band: upper distance threshold (code: a rank fraction).",
        ),
        click.option(
            "--imc-variant",
            type=click.Choice(["paper", "code"]),
            default="paper",
            show_default=True,
            help="IMC term as the thesis writes it (paper: push in-band pairs apart) or as the authors' "
            "public code computes it (code: row-normalised distances, a rank band, pulls them "
            "together); the same for cos. See docs/fidelity.md.",
        ),
        click.option(
            "--negatives",
            type=click.Choice(["distinct-images", "off-diagonal"]),
            default="distinct-images",
            show_default=True,
            help="Negatives of a row in every loss term: rows showing other images (two captions of one "
            "image are not negatives), or every other row, as the authors' code masks only the diagonal "
            "(with --imc-variant code: exactly the authors' loss). See docs/retrieval.md.",
        ),
        click.option("--epochs", type=click.IntRange(1), default=30, show_default=True, help="Training epochs."),
        click.option(
            "--batch-size",
            type=click.IntRange(2),
            default=128,
            show_default=True,
            help="(image, caption) pairs per batch.",
        ),
        click.option(
            "--lr", type=click.FloatRange(0, min_open=True), default=2e-4, show_default=True, help="Adam learning rate."
        ),
        click.option(
            "--lr-update",
            type=click.IntRange(1),
            default=15,
            show_default=True,
            help="Multiply the learning rate by 0.1 every this many epochs.",
        ),
        click.option(
            "--grad-clip",
            type=click.FloatRange(0),
            default=2.0,
            show_default=True,
            help="Clip the gradient norm to this (0: no clipping).",
        ),
        click.option(
            "--embed-dim",
            type=click.IntRange(2),
            default=1024,
            show_default=True,
            help="Joint embedding size d (even: two LSTM directions).",
        ),
        click.option("--word-dim", type=click.IntRange(1), default=300, show_default=True, help="Word vector size."),
        click.option(
            "--min-word-count",
            type=click.IntRange(1),
            default=1,
            show_default=True,
            help="Keep training words seen at least this often; others map to <unk>.",
        ),
        click.option(
            "--glove",
            type=click.Path(dir_okay=False),
            default=None,
            help="Initialise word vectors from this local GloVe .txt file (its size = --word-dim).",
        ),
        click.option("--seed", type=int, default=0, show_default=True, help="Random seed."),
        click.option("--fold5", is_flag=True, help="Also report the 5-fold mean on the test split (COCO 1K)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _config(out, **options):
    from clevr_remv.retrieval.train import TrainConfig

    if options["mu_down"] >= options["mu_up"]:
        raise ClevrRemvError(
            f"--mu-down {options['mu_down']} / --mu-up {options['mu_up']}: the band is empty; "
            "pass --mu-down below --mu-up"
        )
    if options["embed_dim"] % 2:
        raise ClevrRemvError(f"--embed-dim {options['embed_dim']}: must be even (two LSTM directions)")
    names = {f.name for f in fields(TrainConfig)}
    options["format"] = options.pop("data_format")
    options["data"] = str(options["data"])
    return TrainConfig(out=str(out), **{k: v for k, v in options.items() if k in names})


def _claim(out, command: str, inputs: dict, *names) -> None:
    """Check that ``command`` may write the folder ``out`` (see `check_output_dir`); ``names``
    are the names it writes there, which recognise its folders made before manifests."""
    check_output_dir(out, command, inputs, ours=only_names(*names))


def format_metrics(result: dict) -> str:
    """A small text table of one evaluation (and its 5-fold mean when present)."""
    lines = [f"{'':12}{'R@1':>7}{'R@5':>7}{'R@10':>7}{'medr':>7}"]
    for title, metrics in [("", result)] + ([("5-fold ", result["fold5"]["mean"])] if "fold5" in result else []):
        for direction, name in (("i2t", "image->text"), ("t2i", "text->image")):
            m = metrics[direction]
            lines.append(f"{title + name:12}{m['r1']:7.1f}{m['r5']:7.1f}{m['r10']:7.1f}{m['medr']:7.0f}")
        lines.append(f"{title}R-sum {metrics['rsum']:.1f}")
    return "\n".join(lines)


@click.group()
def retrieval():
    """Image-text retrieval: VSE++'s SH / MH losses vs the IMC loss (paper chapter 5)."""


@retrieval.command()
@_data_options
@click.option(
    "--loss",
    type=click.Choice(["sh", "mh", "imc"]),
    default="imc",
    show_default=True,
    help="sh: sum of hinges; mh: max of hinges (VSE++); imc: MH + intra-modal constraint.",
)
@click.option(
    "--distance",
    type=DISTANCE_CHOICE,
    default="l1",
    show_default=True,
    help="IMC distance, normalised onto the cosine distance's [0, 2] scale.",
)
@click.option(
    "--lambda", "lam", type=click.FloatRange(0), default=1.0, show_default=True, help="IMC weight (0 = the MH loss)."
)
@_training_options
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="retrieval-run",
    show_default=True,
    help="Output folder: best.pt (best validation R-sum) and results.json.",
)
def train(out, **options):
    """Train the two-branch embedding network; keep the best checkpoint by validation R-sum."""
    from clevr_remv.retrieval.train import train as run_training

    _claim(out, "retrieval train", {"--data": options["data"]}, "best.pt", "results.json")
    results = run_training(_config(out, **options))
    write_manifest(out, "retrieval train")
    click.echo(f"best epoch {results['best_epoch']}, validation:\n{format_metrics(results['val'])}")
    if "test" in results:
        click.echo(f"test:\n{format_metrics(results['test'])}")
    click.echo(f"wrote {Path(out) / 'results.json'} and {Path(out) / 'best.pt'}")


@retrieval.command()
@click.option(
    "--checkpoint",
    required=True,
    type=click.Path(dir_okay=False),
    help="best.pt written by `clevr-remv retrieval train`.",
)
@partial(_data_options, format_default=None)
@click.option(
    "--split",
    type=click.Choice(["train", "val", "test"]),
    default="test",
    show_default=True,
    help="Split to evaluate (val = dev_* files in precomp folders).",
)
@click.option("--fold5", is_flag=True, help="Also report the mean over 5 folds of the images (COCO 1K protocol).")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Also write the metrics to this JSON file.")
def evaluate(checkpoint, data, data_format, image_size, device, split, fold5, out):
    """Score a checkpoint: R@1/5/10 per direction, median rank, R-sum."""
    from clevr_remv.dataset.store import write_json_atomic
    from clevr_remv.retrieval.checkpoint import load_checkpoint
    from clevr_remv.retrieval.data import load_split
    from clevr_remv.retrieval.evaluation import evaluate_split
    from clevr_remv.retrieval.train import resolve_device

    if out:
        check_output_file(out, {"--data": data, "--checkpoint": checkpoint})
    torch_device = resolve_device(device)
    model, vocab, payload = load_checkpoint(checkpoint, torch_device)
    split_data = load_split(data, data_format or payload["config"]["format"], split, image_size)
    if split_data.image_kind != model.spec["image"]:
        raise ClevrRemvError(
            f"--checkpoint {checkpoint}: trained on image {model.spec['image']}, but --data "
            f"holds image {split_data.image_kind}; pass the --format it was trained with"
        )
    if split_data.image_kind == "features" and split_data.images.shape[1] != model.spec["feature_dim"]:
        raise ClevrRemvError(
            f"--data {data}: {split_data.images.shape[1]}-d features, the checkpoint expects "
            f"{model.spec['feature_dim']}; pass the features it was trained on"
        )
    if fold5 and len(split_data.images) < 5:
        raise ClevrRemvError(
            f"--fold5: the {split} split has {plural(len(split_data.images), 'image')}; 5 folds need 5"
        )
    result = evaluate_split(model, vocab, split_data, torch_device, fold5=fold5)
    click.echo(format_metrics(result))
    if out:
        write_json_atomic(out, result)
        click.echo(f"wrote {out}")


@retrieval.command()
@_data_options
@_training_options
@click.option(
    "--lambdas",
    default="0,0.5,1,2",
    show_default=True,
    help="Comma-separated lambdas for the R-sum plot (L1 distance); 0 and 1 are always run.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="retrieval-ablation",
    show_default=True,
    help="Output folder: ablation.md, ablation.json, rsum_lambda.png and runs/.",
)
def ablation(out, lambdas, **options):
    """Lambda = 0 (MH) vs lambda = 1 with each distance (Table 5.4) and R-sum over lambda (Figure 5.2)."""
    from clevr_remv.retrieval.ablation import run_ablation

    try:
        values = [float(x) for x in lambdas.split(",") if x.strip()]
    except ValueError as error:
        raise ClevrRemvError(f"--lambdas {lambdas}: not comma-separated numbers; pass e.g. 0,0.5,1,2") from error
    if any(v < 0 for v in values):
        raise ClevrRemvError(f"--lambdas {lambdas}: lambdas must be >= 0")
    _claim(out, "retrieval ablation", {"--data": options["data"]}, "runs", "ablation.*", "rsum_lambda.png")
    summary = run_ablation(_config(out, loss="imc", distance="l1", lam=1.0, **options), values)
    write_manifest(out, "retrieval ablation")
    click.echo(summary["table"])
    click.echo(f"wrote {Path(out) / 'ablation.md'}, {Path(out) / 'ablation.json'} and {Path(out) / 'rsum_lambda.png'}")


@retrieval.command()
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder to write the set into.")
@click.option("--train", "n_train", type=click.IntRange(1), default=1000, show_default=True, help="Training images.")
@click.option("--dev", "n_dev", type=click.IntRange(1), default=200, show_default=True, help="Validation images.")
@click.option("--test", "n_test", type=click.IntRange(1), default=200, show_default=True, help="Test images.")
@click.option("--feature-dim", type=click.IntRange(1), default=256, show_default=True, help="Feature size.")
@click.option("--captions-per-image", type=click.IntRange(1), default=5, show_default=True, help="Captions per image.")
@click.option("--noise", type=click.FloatRange(0), default=1.0, show_default=True, help="Feature noise (std).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
def synthetic(out, n_train, n_dev, n_test, feature_dim, captions_per_image, noise, seed):
    """Write a small learnable synthetic set in the precomputed-feature layout (tests and demos)."""
    from clevr_remv.retrieval.synthetic import make_synthetic_precomp

    _claim(out, "retrieval synthetic", {}, "*_ims.npy", "*_caps.txt")
    make_synthetic_precomp(
        out,
        train=n_train,
        dev=n_dev,
        test=n_test,
        feature_dim=feature_dim,
        captions_per_image=captions_per_image,
        noise=noise,
        seed=seed,
    )
    write_manifest(out, "retrieval synthetic")
    click.echo(
        f"wrote {out}/{{train,dev,test}}_ims.npy and _caps.txt "
        f"({n_train}/{n_dev}/{n_test} images, {plural(captions_per_image, 'caption')} each)"
    )
