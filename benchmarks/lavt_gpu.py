"""LAVT at the paper's settings on one CUDA machine, in one command: generate (or take) a dataset,
split it, and run `clevr-remv benchmark --model lavt --device cuda` with LAVT's published recipe
(Swin-B, 480x480 input, AdamW lr 5e-5, weight decay 0.01, poly decay, batch 32, 40 epochs,
cross-entropy with class weights [0.9, 1.1], best checkpoint by val oIoU), writing the reports.

    python benchmarks/lavt_gpu.py --data remv --scenes 10000 \
        --vision-weights swin_base_patch4_window12_384_22k.pth --out benchmark-lavt-base

With ``--scenes`` the dataset is rendered on the GPU first (`generate --device gpu`, 9x9 views,
480x320, resumable); without it ``--data`` must already hold a dataset. ``--epochs 1`` gives a
short check of throughput and the loss curve (training_curve.png, training.json). Every command
is printed before it runs; a failure stops the script with that command's exit code.
"""
import argparse
import subprocess
import sys
import time

PAPER = {"--size": "base", "--epochs": "40", "--batch-size": "32", "--lr": "5e-5", "--input-size": "480x480"}


def run(arguments: list) -> None:
    command = [sys.executable, "-m", "clevr_remv", *arguments]
    print("+ " + " ".join(command), flush=True)
    completed = subprocess.run(command)
    if completed.returncode:
        sys.exit(completed.returncode)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="dataset folder (rendered there with --scenes)")
    parser.add_argument("--scenes", type=int, default=None, help="render this many scenes first (GPU)")
    parser.add_argument("--vision-weights", required=True, help="ImageNet Swin-B checkpoint (.pth/.safetensors)")
    parser.add_argument("--text-encoder", default=None, help="local BERT-family folder (e.g. bert-base-uncased)")
    parser.add_argument("--epochs", default=PAPER["--epochs"], help="40 in the paper; 1 for a short check")
    parser.add_argument("--workers", default="8", help="DataLoader workers")
    parser.add_argument("--out", default="benchmark-lavt-base")
    args = parser.parse_args()
    if args.scenes is not None:
        run(["generate", "--out", args.data, "--scenes", str(args.scenes), "--device", "gpu"])
    run(["split", "--data", args.data])
    settings = {**PAPER, "--epochs": str(args.epochs)}
    command = ["benchmark", "--model", "lavt", "--device", "cuda", "--data", args.data, "--out", args.out,
               "--vision-weights", args.vision_weights, "--workers", args.workers,
               *[item for pair in settings.items() for item in pair]]
    if args.text_encoder:
        command += ["--text-encoder", args.text_encoder]
    start = time.perf_counter()
    run(command + ["--resume"])
    print(f"benchmark: {(time.perf_counter() - start) / 60:.1f} min; reports in {args.out}")


if __name__ == "__main__":
    main()
