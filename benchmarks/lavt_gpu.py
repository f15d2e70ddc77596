"""LAVT on one CUDA machine, in one command: generate (or take) a dataset, split it, and run
`clevr-remv benchmark --model lavt --device cuda` with LAVT's published recipe (Swin-B, 480x480
input, AdamW lr 5e-5, weight decay 0.01, poly decay, batch 32, 40 epochs, cross-entropy with class
weights [0.9, 1.1], best checkpoint by val oIoU), writing the reports.

    python benchmarks/lavt_gpu.py --data remv --scenes 10000 \
        --vision-weights swin_base_patch4_window12_384_22k.pth \
        --text-encoder bert-base-uncased/ --out benchmark-lavt-base

The paper's LAVT reads the words with BERT-base: pass a local copy of it (a Hugging Face folder:
config.json, weights, tokenizer files; read offline) with ``--text-encoder``. Without it the run uses
the offline MiniLM (6 layers, 384 wide), which is not the paper's setting, and says so. What a run
used (text encoder: path, architecture, whether it is BERT-base, tensors loaded; vision weights:
path, size, tensors loaded) is printed first and written to ``setup.json``, ``setup.md`` and a
"What this run used" section at the end of ``results.md`` in ``--out``.

With ``--scenes`` the dataset is rendered on the GPU first (`generate --device gpu`, 9x9 views,
480x320, resumable); without it ``--data`` must already hold a dataset. ``--epochs 1`` gives a
short check of throughput and the loss curve (training_curve.png, training.json). Every command
is printed before it runs; a failure stops the script with that command's exit code.

``--gpus N`` trains on N GPUs of this machine: the benchmark is launched as
``python -m torch.distributed.run --standalone --nproc_per_node N -m clevr_remv benchmark ...``
(torchrun; DistributedDataParallel over nccl, one process per GPU), the batch of 32 split into
32 / N per GPU, so the recipe is the same for every N (N must divide 32).
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

PAPER = {"--size": "base", "--epochs": "40", "--batch-size": "32", "--lr": "5e-5", "--input-size": "480x480"}
BERT_BASE = {"model_type": "bert", "num_hidden_layers": 12, "hidden_size": 768, "num_attention_heads": 12}
SETUP_HEADING = "## What this run used"


def run(arguments: list, gpus: int = 1) -> None:
    """Run `python -m clevr_remv ARGUMENTS`, under torchrun on ``gpus`` processes when more than one."""
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(gpus)] if gpus > 1 else []
    command = [sys.executable, *launcher, "-m", "clevr_remv", *arguments]
    print("+ " + " ".join(command), flush=True)
    completed = subprocess.run(command)
    if completed.returncode:
        sys.exit(completed.returncode)


def describe_text_encoder(folder) -> dict:
    """Name, architecture and path of a local Hugging Face text encoder, and whether it has
    BERT-base's shape (the paper's encoder)."""
    path = Path(folder).resolve()
    config_path = path / "config.json"
    if not config_path.is_file():
        sys.exit(
            f"--text-encoder {folder}: no config.json there; pass the folder of a Hugging Face "
            "BERT-family model (config.json, weights, tokenizer files)"
        )
    config = json.loads(config_path.read_text())
    shape = {key: config.get(key) for key in BERT_BASE}
    is_bert_base = shape == BERT_BASE
    name = config.get("_name_or_path") or path.name
    label = f"{name} ({shape['model_type']}, {shape['num_hidden_layers']} layers, {shape['hidden_size']} wide): " + (
        "BERT-base, as in the paper" if is_bert_base else "not BERT-base, which the paper used"
    )
    return {"path": str(path), "name": name, **shape, "bert_base": is_bert_base, "label": label}


def describe_vision_weights(path) -> dict:
    """Path and size of the vision checkpoint."""
    path = Path(path).resolve()
    if not path.is_file():
        sys.exit(f"--vision-weights {path}: no such file; pass an ImageNet Swin-B checkpoint (.pth/.safetensors)")
    return {
        "path": str(path),
        "bytes": path.stat().st_size,
        "label": f"{path.name} ({path.stat().st_size / 2**20:.0f} MiB)",
    }


def setup_markdown(setup: dict) -> str:
    """The "What this run used" section."""
    text, vision = setup["text_encoder"], setup["vision_weights"]
    lines = [
        SETUP_HEADING,
        "",
        f"- text encoder: {text['label']}; {text['path']}",
        f"- vision weights: {vision['label']}; {vision['path']}",
    ]
    loads = (("text encoder", setup.get("text_encoder_load")), ("vision weights", setup.get("vision_load")))
    for part, report in loads:
        if report:
            lines.append(
                f"- {part} load: {report['loaded']} tensors loaded, {len(report['missing'])} missing, "
                f"{len(report['unexpected'])} unexpected"
            )
    lines.append("- settings: " + ", ".join(f"{key} {value}" for key, value in setup["settings"].items()))
    return "\n".join(lines) + "\n"


def write_setup(out: Path, setup: dict) -> None:
    """setup.json, setup.md, and the section at the end of results.md (replaced on a rerun)."""
    for name, key in (("text_encoder.json", "text_encoder_load"), ("vision_weights.json", "vision_load")):
        if (out / name).is_file():
            setup[key] = json.loads((out / name).read_text())
    (out / "setup.json").write_text(json.dumps(setup, indent=2) + "\n")
    section = setup_markdown(setup)
    (out / "setup.md").write_text(section)
    results = out / "results.md"
    if results.is_file():
        body = results.read_text().split(SETUP_HEADING)[0].rstrip("\n")
        results.write_text(body + "\n\n" + section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="dataset folder (rendered there with --scenes)")
    parser.add_argument("--scenes", type=int, default=None, help="render this many scenes first (GPU)")
    parser.add_argument("--vision-weights", required=True, help="ImageNet Swin-B checkpoint (.pth/.safetensors)")
    parser.add_argument(
        "--text-encoder", default=None, help="local BERT-base folder (the paper's encoder); default: the offline MiniLM"
    )
    parser.add_argument("--epochs", default=PAPER["--epochs"], help="40 in the paper; 1 for a short check")
    parser.add_argument("--workers", default="8", help="DataLoader workers (per GPU)")
    parser.add_argument("--gpus", type=int, default=1, help="GPUs to train on (torchrun processes; must divide 32)")
    parser.add_argument("--out", default="benchmark-lavt-base")
    args = parser.parse_args()
    if args.gpus < 1 or int(PAPER["--batch-size"]) % args.gpus:
        sys.exit(f"--gpus {args.gpus}: the paper's batch of {PAPER['--batch-size']} must split evenly across the GPUs")
    if args.text_encoder is None:
        from clevr_remv.res.models.text import default_text_encoder_path

        text_encoder = describe_text_encoder(default_text_encoder_path())
    else:
        text_encoder = describe_text_encoder(args.text_encoder)
    settings = {**PAPER, "--epochs": str(args.epochs)}
    setup = {
        "text_encoder": text_encoder,
        "vision_weights": describe_vision_weights(args.vision_weights),
        "settings": {**{key.lstrip("-"): value for key, value in settings.items()}, "gpus": args.gpus},
    }
    print(setup_markdown(setup), flush=True)
    if args.scenes is not None:
        run(["generate", "--out", args.data, "--scenes", str(args.scenes), "--device", "gpu"])
    run(["split", "--data", args.data])
    command = [
        "benchmark",
        "--model",
        "lavt",
        "--device",
        "cuda",
        "--data",
        args.data,
        "--out",
        args.out,
        "--vision-weights",
        args.vision_weights,
        "--workers",
        args.workers,
        *[item for pair in settings.items() for item in pair],
    ]
    if args.text_encoder:
        command += ["--text-encoder", args.text_encoder]
    start = time.perf_counter()
    run(command + ["--resume"], args.gpus)
    write_setup(Path(args.out), setup)
    print(
        f"benchmark: {(time.perf_counter() - start) / 60:.1f} min; reports in {args.out} "
        f"(what the run used: {Path(args.out) / 'setup.md'})"
    )


if __name__ == "__main__":
    main()
