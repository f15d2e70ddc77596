"""``clevr-remv evaluate-depth``: score centre-view disparity maps (or a reference estimator) the
4D Light Field Benchmark's way."""

import click

from clevr_remv.depth_bench.estimators import ESTIMATORS
from clevr_remv.wording import plural


@click.command("evaluate-depth")
@click.option(
    "--data",
    "data_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Dataset root, generated with --passes depth.",
)
@click.option(
    "--predictions",
    type=click.Path(),
    help="Folder of <scene>.pfm disparity maps (clevr_remv_NNNNNN.pfm, as the hci-lf export names "
    "scenes), or a benchmark submission folder: disp_maps/<scene>.pfm, optional runtimes/<scene>.txt.",
)
@click.option(
    "--estimator",
    type=click.Choice(ESTIMATORS),
    default=None,
    help="Score a reference instead of --predictions: constant (the median true disparity: reads the "
    "ground truth, a floor) or sweep (a plane sweep over the light field's views, timed).",
)
@click.option(
    "--split", default="test", show_default=True, help="Split to score (a name in splits.json; 'all': every scene)."
)
@click.option(
    "--out",
    default="depth-evaluation",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for results.json, results.md, error_maps.png (and an estimator's disp_maps/, runtimes/): new, "
    "or an earlier output of evaluate-depth; never inside --data or --predictions.",
)
@click.option(
    "--border",
    type=click.IntRange(min=0),
    default=None,
    help="Pixels ignored along each edge; default 15 at the benchmark's 512 px, scaled with the longer image side.",
)
def evaluate_depth_command(data_dir, predictions, estimator, split, out, border):
    """Score the centre-view disparity of each scene of a split: BadPix 0.07 / 0.03 / 0.01 (%),
    MSE x100 and Q25 x100 as the 4D Light Field Benchmark defines them, per scene, averaged and
    per region (objects, metal, floor, occlusion band).

    Pass exactly one of --predictions and --estimator. Disparity is in the hci-lf export's
    convention: pixels per camera step, positive in front of the focus plane.
    """
    from clevr_remv.depth_bench.evaluate import LABELS, evaluate_depth

    results = evaluate_depth(data_dir, predictions, estimator, split, out, border)
    mean = results["mean"]
    click.echo(
        f"{plural(len(results['scenes']), 'scene')}, mean: "
        + "  ".join(f"{LABELS[key]} {mean[key]:.3g}" for key in mean)
    )
    for region, block in results["regions"].items():
        click.echo(
            f"  {region}: BadPix 0.07 {block['mean']['badpix_0.07']:.2f} %  MSE x100 {block['mean']['mse_x100']:.3g}"
        )
    click.echo(f"reports written to {out}")
