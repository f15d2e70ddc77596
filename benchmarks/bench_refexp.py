"""Fidelity of the referring expressions against the paper (CLEVR-REMV, chapter 6.3.3 / 6.4).

Lays out scenes with the real layout and rig code, measures visibility with the Blender-free
stand-in renderer (clevr_remv.generate.synthetic.rasterize_view), then generates expressions twice side by
side: the paper's filter (referent visible in every view) and --keep-partial. Prints mean words,
pairs per scene and the family mix next to the paper's figures, and what the visibility rules
remove: layouts re-drawn because an object shows fewer than min_pixels in the centre view, objects
hidden in some view, and the --keep-partial expressions the paper's filter would drop (the paper:
under 0.1 % of pairs).

    python benchmarks/bench_refexp.py --scenes 200
"""

import collections
import statistics
import time

import click
from tqdm import tqdm

from clevr_remv.generate.config import GenerateConfig, default_min_pixels
from clevr_remv.generate.properties import load_properties
from clevr_remv.generate.scene import add_visibility, scene_spec
from clevr_remv.generate.synthetic import rasterize_view
from clevr_remv.refexp import SceneFacts, generate_refexps, referent_of

PAPER_WORDS = 8.02  # mean expression length over train / val / test
PAPER_PAIRS = 55966 / 7000  # train pairs per scene


def stand_in_scene(config: GenerateConfig, index: int, properties: dict) -> tuple:
    """(scene.json of scene ``index`` with visibility from the stand-in renderer, layouts drawn):
    re-laid out like `generate` until every object shows min_pixels in the centre view."""
    attempt = 0
    while True:
        spec = scene_spec(config, index, attempt)
        masks = {view["name"]: rasterize_view(spec, view, properties)[1] for view in spec["views"]}
        scene = add_visibility(spec, properties, masks)
        centre = next(i for i, view in enumerate(scene["views"]) if [view["u"], view["v"]] == scene["rig"]["center"])
        if all(obj["views"][centre]["pixels"] >= config.min_pixels for obj in scene["objects"]):
            return scene, attempt + 1
        attempt += 1


def summarise(documents: list, seconds: float) -> dict:
    expressions = [e for document in documents for e in document["expressions"]]
    families = collections.Counter(e["family"]["template"] for e in expressions)
    return {
        "pairs_per_scene": len(expressions) / len(documents),
        "mean_words": statistics.mean(len(e["text"].split()) for e in expressions),
        "scenes_below_7": sum(len(d["expressions"]) < 7 for d in documents) / len(documents),
        "families": {name: count / len(expressions) for name, count in sorted(families.items())},
        "ms_per_scene": 1000 * seconds / len(documents),
    }


@click.command()
@click.option("--scenes", default=200, show_default=True, help="Layouts to measure.")
@click.option("--grid", default=9, show_default=True, help="Views per side of the rig.")
@click.option("--width", default=480, show_default=True, help="View width in pixels.")
@click.option("--height", default=320, show_default=True, help="View height in pixels.")
@click.option("--per-scene", default=8, show_default=True, help="Expressions wanted per scene.")
@click.option("--seed", default=0, show_default=True, help="Layout and expression seed.")
def main(scenes, grid, width, height, per_scene, seed):
    """Measure expression length, pairs per scene and family mix on stand-in layouts."""
    properties = load_properties()
    # generate's per-object pixel minimum (200 at 480x320), scaled to the measured frame size.
    min_pixels = default_min_pixels(width, height)
    config = GenerateConfig(
        seed=seed, grid=grid, width=width, height=height, min_pixels=min_pixels, properties=properties
    )
    layouts, attempts = zip(
        *(stand_in_scene(config, index, properties) for index in tqdm(range(scenes), desc="layouts")), strict=True
    )
    results, all_documents = {}, {}
    for name, keep_partial in (("every view (paper)", False), ("--keep-partial", True)):
        start = time.perf_counter()
        documents = [
            generate_refexps(scene, properties=properties, seed=seed, per_scene=per_scene, keep_partial=keep_partial)
            for scene in layouts
        ]
        results[name] = summarise(documents, time.perf_counter() - start)
        all_documents[name] = documents
    for scene, document in zip(layouts, all_documents["every view (paper)"], strict=True):
        facts = SceneFacts.from_scene(scene)
        assert all(referent_of(e["program"], facts) == e["referent"] - 1 for e in document["expressions"])
    objects = [len(scene["objects"]) for scene in layouts]
    hidden = sum(any(v["pixels"] == 0 for v in obj["views"]) for scene in layouts for obj in scene["objects"])
    kept = [
        (scene, e)
        for scene, document in zip(layouts, all_documents["--keep-partial"], strict=True)
        for e in document["expressions"]
    ]
    partial_pairs = sum(len(e["views"]) < grid * grid for _, e in kept)
    hidden_referents = sum(
        any(view["pixels"] == 0 for view in scene["objects"][e["referent"] - 1]["views"]) for scene, e in kept
    )
    redrawn = sum(count > 1 for count in attempts)
    paper, partial = results["every view (paper)"], results["--keep-partial"]
    print(
        f"\n{scenes} layouts, grid {grid}, {width}x{height}, min_pixels {min_pixels}, "
        f"mean objects {statistics.mean(objects):.2f} ({min(objects)}-{max(objects)})\n"
        f"scenes re-laid out (an object under min_pixels in the centre view): {redrawn} ({redrawn / scenes:.2%}), "
        f"{sum(attempts) - scenes} of {sum(attempts)} layouts drawn\n"
        f"objects hidden (0 pixels) in some view: {hidden} of {sum(objects)} ({hidden / sum(objects):.2%})\n"
        f"--keep-partial pairs the paper's filter drops: referent hidden in some view (paper: < 0.1 %) "
        f"{hidden_referents} of {len(kept)} ({hidden_referents / len(kept):.2%}); not valid in every view "
        f"(hidden, or false there) {partial_pairs} ({partial_pairs / len(kept):.2%})"
    )
    print(f"{'metric':<22}{'ours':>10}{'paper':>10}{'ratio':>8}{'keep-partial':>14}")
    print(
        f"{'mean words':<22}{paper['mean_words']:>10.2f}{PAPER_WORDS:>10.2f}"
        f"{paper['mean_words'] / PAPER_WORDS:>8.3f}{partial['mean_words']:>14.2f}"
    )
    print(
        f"{'pairs per scene':<22}{paper['pairs_per_scene']:>10.2f}{PAPER_PAIRS:>10.2f}"
        f"{paper['pairs_per_scene'] / PAPER_PAIRS:>8.3f}{partial['pairs_per_scene']:>14.2f}"
    )
    print(f"{'scenes with < 7 pairs':<22}{paper['scenes_below_7']:>10.1%}{'':>18}{partial['scenes_below_7']:>14.1%}")
    print(f"{'ms per scene':<22}{paper['ms_per_scene']:>10.1f}{'':>18}{partial['ms_per_scene']:>14.1f}")
    print("family mix (every view):")
    for family, share in paper["families"].items():
        print(f"  {family:<20}{share:>8.1%}")


if __name__ == "__main__":
    main()
