"""The paper's ablation (chapter 5.3.4): lambda = 0 (the MH loss) against lambda = 1 with each
distance (Table 5.4), and R-sum over lambda with the L1 distance (Figure 5.2).

Each run lives in ``<out>/runs/<name>/`` (best.pt, results.json); a run whose results.json holds the
same config is reused, so an interrupted ablation resumes where it stopped.
"""

import json
from dataclasses import MISSING, asdict, fields, replace
from pathlib import Path

from matplotlib.figure import Figure
from tqdm import tqdm

from clevr_remv.dataset.atomic import atomic_path, write_text_atomic
from clevr_remv.dataset.store import write_json_atomic
from clevr_remv.retrieval.train import TrainConfig, train

TABLE_DISTANCES = ("msd", "cos", "l2", "l1")  # the paper's row order
COLUMNS = [("i2t", "r1"), ("i2t", "r5"), ("i2t", "r10"), ("t2i", "r1"), ("t2i", "r5"), ("t2i", "r10")]


def ablation_runs(base: TrainConfig, lambdas) -> list:
    """(run name, row label or None, config) for the table rows and the extra lambdas of the plot."""
    out = Path(base.out) / "runs"
    runs = [("mh", "λ = 0 (MH loss)", replace(base, loss="imc", lam=0.0, distance="l1", out=str(out / "mh")))]
    for distance in TABLE_DISTANCES:
        runs.append(
            (
                f"lambda1_{distance}",
                f"λ = 1, δ_{distance}",
                replace(base, loss="imc", lam=1.0, distance=distance, out=str(out / f"lambda1_{distance}")),
            )
        )
    for lam in sorted(set(lambdas) - {0.0, 1.0}):
        runs.append(
            (
                f"lambda{lam:g}_l1",
                None,
                replace(base, loss="imc", lam=lam, distance="l1", out=str(out / f"lambda{lam:g}_l1")),
            )
        )
    return runs


def _run_or_reuse(config: TrainConfig) -> dict:
    results_path = Path(config.out) / "results.json"
    if results_path.is_file():
        previous = json.loads(results_path.read_text())
        # a run written before a config field existed ran with that field's default
        defaults = {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}
        if {**defaults, **previous.get("config", {})} == asdict(config):
            tqdm.write(f"reusing {results_path}")
            return previous
    return train(config)


def markdown_table(rows, split: str, imc_variant: str = "paper", negatives: str = "distinct-images") -> str:
    """Rows (label, metrics) as Table 5.4: recalls per direction and R-sum, the best of each column bold;
    the header names the split, the IMC variant and the negatives."""
    keys = COLUMNS + [(None, "rsum")]

    def value(metrics, key):
        return metrics["rsum"] if key[0] is None else metrics[key[0]][key[1]]

    best = {key: max(value(m, key) for _, m in rows) for key in keys}
    lines = [
        f"| IMC ({split}, {imc_variant} variant, {negatives} negatives) "
        "| Image→Text R@1 | R@5 | R@10 | Text→Image R@1 | R@5 | R@10 | R-sum |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, metrics in rows:
        cells = [
            f"**{value(metrics, k):.1f}**" if value(metrics, k) == best[k] else f"{value(metrics, k):.1f}" for k in keys
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_rsum_over_lambda(points, path, split: str) -> None:
    """R-sum over lambda (L1 distance), as the paper's Figure 5.2."""
    lambdas, rsums = zip(*sorted(points), strict=True)
    figure = Figure(figsize=(5, 3.5))
    axes = figure.subplots()
    axes.plot(lambdas, rsums, marker="o")
    axes.set_xlabel("λ (IMC weight, L1 distance)")
    axes.set_ylabel(f"R-sum ({split})")
    axes.set_title("R-sum over λ")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=120)


def run_ablation(base: TrainConfig, lambdas=(0.0, 0.5, 1.0, 2.0)) -> dict:
    """Train every run, then write ``ablation.md``, ``ablation.json`` and ``rsum_lambda.png`` in ``base.out``."""
    out = Path(base.out)
    results = {}
    runs = ablation_runs(base, lambdas)
    for number, (name, _, config) in enumerate(runs, start=1):
        tqdm.write(f"ablation run {number}/{len(runs)}: {name}")
        results[name] = _run_or_reuse(config)
    split = "test" if all("test" in r for r in results.values()) else "val"
    rows = [(label, results[name][split]) for name, label, _ in runs if label]
    table = markdown_table(rows, split, base.imc_variant, base.negatives)
    write_text_atomic(out / "ablation.md", table)
    points = [(config.lam, results[name][split]["rsum"]) for name, _, config in runs if config.distance == "l1"]
    plot_rsum_over_lambda(points, out / "rsum_lambda.png", split)
    summary = {
        "split": split,
        "imc_variant": base.imc_variant,
        "negatives": base.negatives,
        "runs": {
            name: {"lambda": c.lam, "distance": c.distance, "metrics": results[name][split]} for name, _, c in runs
        },
    }
    write_json_atomic(out / "ablation.json", summary)
    return {"table": table, **summary}
