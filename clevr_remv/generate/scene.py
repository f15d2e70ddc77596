"""Assemble a scene's spec (what the renderer needs) and its scene.json document."""

from clevr_remv import FORMAT_VERSION
from clevr_remv.generate.config import GenerateConfig
from clevr_remv.generate.layout import sample_layout
from clevr_remv.generate.masks import object_views
from clevr_remv.generate.rig import build_views


def scene_spec(config: GenerateConfig, index: int, attempt: int = 0) -> dict:
    """The full description of one scene before rendering: layout, rig views, render settings.

    It is also the renderer's input and becomes scene.json once visibility is added.
    """
    layout = sample_layout(config.seed, index, attempt, config.properties, config.min_objects, config.max_objects)
    layout["camera"]["lens"] = config.lens
    views, rig_info = build_views(
        layout["camera"], config.grid, config.baseline, config.rig, config.width, config.height
    )
    return {
        "format_version": FORMAT_VERSION,
        **layout,
        "width": config.width,
        "height": config.height,
        "views": views,
        "rig": rig_info,
        "render": {"samples": config.samples, "denoise": config.denoise, "engine": "CYCLES"},
    }


def shape_kinds(spec: dict, properties: dict) -> list:
    """The primitive (cube / sphere / cylinder) of each object of a scene."""
    return [properties["shapes"][obj["shape"]] for obj in spec["objects"]]


def add_visibility(spec: dict, properties: dict, index_images: dict) -> dict:
    """Return the scene.json document: ``spec`` with each object's per-view entries measured
    from ``index_images`` (view name -> uint8 index mask)."""
    kinds = shape_kinds(spec, properties)
    per_view = [object_views(index_images[view["name"]], spec["objects"], kinds, view) for view in spec["views"]]
    objects = [dict(obj, views=[entries[k] for entries in per_view]) for k, obj in enumerate(spec["objects"])]
    return dict(spec, objects=objects)
