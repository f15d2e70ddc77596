"""`clevr-remv generate`: the command-line shell over clevr_remv.generate.pipeline."""

import signal
import sys
import warnings
from pathlib import Path

import click

from clevr_remv.generate.config import (
    DEFAULT_BASELINE,
    DEFAULT_LENS_MM,
    DEFAULT_SAMPLES,
    GenerateConfig,
    small_view_warning,
)
from clevr_remv.generate.pipeline import EXECUTORS
from clevr_remv.generate.pipeline import generate as run_generate
from clevr_remv.generate.properties import load_properties
from clevr_remv.generate.render import worker_command
from clevr_remv.generate.rig import RIG_TYPES
from clevr_remv.generate.writer import stored_config
from clevr_remv.refexp import load_template_set, refexp_settings
from clevr_remv.refexp.cli import EXPRESSIONS_HELP, TARGET_MIX_HELP, parse_target_mix
from clevr_remv.refexp.generator import EXPRESSION_KINDS
from clevr_remv.wording import plural

DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _exit_on_sigterm(signum, frame):
    sys.exit(128 + signum)


def _parse_duration(ctx, param, value) -> float:
    """'24h', '90m', '3600s', '2d' (or a number of hours) -> seconds."""
    text = str(value).strip().lower()
    unit = DURATION_UNITS.get(text[-1:], None)
    try:
        seconds = float(text[:-1] if unit else text) * (unit or 3600.0)
    except ValueError:
        raise click.BadParameter(f"{value!r}: write a duration such as 24h, 90m or 3600s") from None
    if seconds <= 0:
        raise click.BadParameter(f"{value!r}: must be longer than 0")
    return seconds


@click.command()
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Dataset folder (created, or resumed when it holds a dataset made with the same settings).",
)
@click.option("--scenes", required=True, type=int, help="Number of scenes to generate.")
@click.option("--start", default=0, show_default=True, type=int, help="Index of the first scene.")
@click.option("--seed", default=0, show_default=True, type=int, help="Global seed; scene i depends only on (seed, i).")
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Render workers (scenes made at once): processes here with --executor local [default: 1], "
    "actors with --executor ray [default: one per node, or per GPU with --device gpu].",
)
@click.option("--grid", default=9, show_default=True, type=int, help="Cameras per side of the array (odd).")
@click.option("--width", default=480, show_default=True, type=int, help="View width in pixels.")
@click.option("--height", default=320, show_default=True, type=int, help="View height in pixels.")
@click.option("--samples", default=DEFAULT_SAMPLES, show_default=True, type=int, help="Cycles samples per pixel.")
@click.option("--no-denoise", is_flag=True, help="Turn off the OpenImageDenoise denoiser.")
@click.option(
    "--device",
    default="cpu",
    show_default=True,
    type=click.Choice(["cpu", "gpu"]),
    help="Render device (gpu: OptiX, else CUDA).",
)
@click.option("--min-objects", default=3, show_default=True, type=int, help="Fewest objects per scene.")
@click.option("--max-objects", default=10, show_default=True, type=int, help="Most objects per scene.")
@click.option(
    "--min-pixels",
    default=None,
    type=int,
    help="Fewest visible pixels per object in the centre view (else the layout is re-sampled) "
    "[default: 200 at 480x320, scaled with the view's pixel count (50 at 240x160); "
    "a resumed dataset's own value].",
)
@click.option(
    "--baseline",
    default=DEFAULT_BASELINE,
    show_default=True,
    type=float,
    help="Distance between neighbouring cameras, world units.",
)
@click.option(
    "--lens",
    default=DEFAULT_LENS_MM,
    show_default=True,
    type=float,
    help="Focal length in mm on a 32 mm sensor, every camera of the array (CLEVR's: 35).",
)
@click.option(
    "--rig",
    default="parallel",
    show_default=True,
    type=click.Choice(RIG_TYPES),
    help="parallel optical axes, or convergent (lens shift: zero disparity at the scene centre).",
)
@click.option(
    "--passes",
    default="",
    metavar="NAMES",
    help="Optional passes beside rgb and index, comma-separated: depth (16-bit z-depth PNGs per view).",
)
@click.option(
    "--properties",
    "properties_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Your own properties JSON (shapes, colours, materials, sizes). Default: CLEVR's.",
)
@click.option("--blender", type=str, help="Run the render worker in this Blender binary instead of the bpy module.")
@click.option("--per-scene", default=8, show_default=True, type=int, help="Referring expressions per scene.")
@click.option(
    "--templates",
    "templates_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Your own referring-expression template folder.",
)
@click.option(
    "--expressions", type=click.Choice(EXPRESSION_KINDS), default="single", show_default=True, help=EXPRESSIONS_HELP
)
@click.option("--target-mix", callback=parse_target_mix, default=None, metavar="P0,P1,P2", help=TARGET_MIX_HELP)
@click.option(
    "--view-timeout",
    default=600.0,
    show_default=True,
    type=float,
    help="Seconds without progress after which a render worker is restarted.",
)
@click.option(
    "--executor",
    default="local",
    show_default=True,
    type=click.Choice(EXECUTORS),
    help="local: worker processes on this machine; ray: actors on a Ray cluster "
    "(pip install clevr-remv[cluster]; --out must be a folder every node sees).",
)
@click.option(
    "--ray-address",
    default=None,
    metavar="ADDRESS",
    help="Ray head node HOST:PORT or ray://HOST:PORT [default: join the running cluster if there is "
    "one, else start Ray on this machine].",
)
@click.option(
    "--worker-cpus",
    type=int,
    default=None,
    help="CPUs (render threads) per worker [default: an even share of the cores, at least 1; with "
    "--executor ray, one actor per node with that node's CPUs, or with --workers N the most at "
    "which N actors fit on the nodes].",
)
@click.option(
    "--shard",
    default=None,
    metavar="K/N",
    help="Make only the scenes i of the range with i mod N == K (0-based K), e.g. for job arrays: "
    "--shard $SLURM_ARRAY_TASK_ID/64.",
)
@click.option(
    "--stale-after",
    default="24h",
    show_default=True,
    callback=_parse_duration,
    metavar="DURATION",
    help="Remove the temporary scene folders of runs on other machines whose lease was not touched "
    "this long (runs touch theirs every minute), and folders without a lease unchanged this long "
    "(e.g. 24h, 90m, 3600s).",
)
def generate(
    out,
    scenes,
    start,
    seed,
    workers,
    grid,
    width,
    height,
    samples,
    no_denoise,
    device,
    min_objects,
    max_objects,
    min_pixels,
    baseline,
    lens,
    rig,
    passes,
    properties_file,
    blender,
    per_scene,
    templates_dir,
    expressions,
    target_mix,
    view_timeout,
    executor,
    ray_address,
    worker_cpus,
    shard,
    stale_after,
):
    """Lay out CLEVR scenes and render each with a GRID x GRID light-field camera array.

    Writes rgb/ and index/ PNGs per view (and depth/ with --passes depth), scene.json and
    refexps.json per scene. Running the same command again skips complete scenes and finishes
    the rest. Several runs (other --start ranges, shards, hosts) may write one folder at once;
    each scene is made once.
    """
    if min_pixels is None:  # a resumed dataset's own value, else the default for the view size
        min_pixels = (stored_config(out) or {}).get("min_pixels")
    config = GenerateConfig(
        seed=seed,
        grid=grid,
        width=width,
        height=height,
        samples=samples,
        denoise=not no_denoise,
        baseline=baseline,
        lens=lens,
        rig=rig,
        min_objects=min_objects,
        max_objects=max_objects,
        min_pixels=min_pixels,
        properties=load_properties(properties_file),
        passes=[name.strip() for name in passes.split(",") if name.strip()],
    )
    small = small_view_warning(width, height)
    if small:
        warnings.warn(small, stacklevel=1)
    if templates_dir is not None:
        load_template_set(templates_dir)  # a bad template folder fails before anything is written
    refexps = refexp_settings(seed, per_scene, templates_dir, expressions=expressions, target_mix=target_mix)
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)  # a job scheduler's stop: clean up as on Ctrl+C
    try:
        summary = run_generate(
            out,
            scenes,
            config,
            start=start,
            workers=workers,
            command=worker_command(blender),
            device=device,
            refexps=refexps,
            view_timeout=view_timeout,
            executor=executor,
            shard=shard,
            worker_cpus=worker_cpus,
            ray_address=ray_address,
            stale_after=stale_after,
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    overhead = (
        f" (overhead x{summary['wall_seconds'] / summary['render_seconds']:.2f})" if summary["render_seconds"] else ""
    )
    click.echo(
        f"{plural(summary['rendered'], 'scene')} rendered ({plural(summary['views'], 'view')}), "
        f"{summary['skipped']} already complete; {summary['wall_seconds']:.1f} s wall, "
        f"{summary['render_seconds']:.1f} s rendering{overhead}; dataset {summary['out']}: "
        f"{plural(summary['counts']['scenes'], 'scene')}, {plural(summary['counts']['expressions'], 'expression')}"
    )
    if summary["restarts"]:
        click.echo(f"{plural(summary['restarts'], 'scene')} restarted after a render worker or node was lost")
    if executor == "ray":
        click.echo(
            "scenes per node: "
            + (", ".join(f"{node} {count}" for node, count in sorted(summary["per_node"].items())) or "none")
        )
