"""CLEVR-REMV render worker: the only code that imports bpy.

Runs as ``python render_scene.py`` (bpy module) or ``blender -b --python render_scene.py``
and serves jobs read as JSON lines on stdin. Each job carries a scene spec (objects, lights,
rig views, render settings; see clevr_remv/generate/scene.py). Replies are JSON lines on stdout that
start with EVENT_PREFIX (Blender prints its own log lines there too):

- ``{"op": "probe", "spec": {...}, "properties": {...}, "view": "u5_v5"}`` renders one view's object-index pass
  at 1 sample and replies ``{"event": "probe", "counts": [background, object 1, ...]}``.
- ``{"op": "render", "spec": {...}, "properties": {...}, "out": DIR, "passes": [...]}`` renders every
  view once with the object-index pass enabled, writes ``DIR/rgb/<view>.png`` and ``DIR/index/<view>.npy``
  (uint8, 0 = background, k = object k), with ``"passes": ["depth"]`` also ``DIR/depth/<view>.npy``
  (float32 z-depth along the optical axis, world units; 1e10 where there is no surface), replies
  ``{"event": "view", ...}`` per view and ``{"event": "done"}`` at the end.
- Failures reply ``{"event": "error", "message": ...}``; the driver decides what to retry.

Only the standard library, numpy and bpy are used, so a Blender binary can run it.
"""
import json
import math
import os
import sys
import tempfile
import time

import bpy  # first: bmesh and mathutils come with it
import bmesh
import mathutils
import numpy as np

EVENT_PREFIX = "@@clevr-remv "
GROUND_RGB = (0.45, 0.45, 0.45)
LIGHT_TINTS = {"key": (1.0, 0.93, 0.85), "fill": (0.85, 0.9, 1.0), "back": (1.0, 1.0, 1.0)}
LIGHT_SIZE = 2.0
LIGHT_POWER_SCALE = 5.0  # CLEVR's lamp strengths are relative; this sets the exposure.
WORLD_STRENGTH = 0.3
BEVEL_WIDTH = 0.1  # in units of the object's half-extent
MAX_BOUNCES = 4  # as good as Cycles' default 12 here (same PSNR), and faster


def emit(**event):
    sys.stdout.write(EVENT_PREFIX + json.dumps(event) + "\n")
    sys.stdout.flush()


def srgb_to_linear(value):
    value /= 255.0
    return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4


# ---------------------------------------------------------------- scene building

def make_mesh(kind):
    """Unit-size primitive: half-extent 1, resting on z = -1 .. 1 around its centre."""
    mesh = bpy.data.meshes.new(kind)
    bm = bmesh.new()
    if kind == "cube":
        bmesh.ops.create_cube(bm, size=2.0)
    elif kind == "sphere":
        bmesh.ops.create_uvsphere(bm, u_segments=48, v_segments=24, radius=1.0)
    else:
        bmesh.ops.create_cone(bm, cap_ends=True, segments=48, radius1=1.0, radius2=1.0, depth=2.0)
    bm.to_mesh(mesh)
    bm.free()
    mesh.materials.append(None)  # one slot; each object links its own material to it
    smooth = [kind == "sphere" or (kind == "cylinder" and abs(p.normal.z) < 0.5) for p in mesh.polygons]
    mesh.polygons.foreach_set("use_smooth", smooth)
    return mesh


def make_material(name, rgb, metal):
    material = bpy.data.materials.new(name)
    material.use_nodes = True
    bsdf = next(node for node in material.node_tree.nodes if node.type == "BSDF_PRINCIPLED")
    bsdf.inputs["Base Color"].default_value = (*rgb, 1.0)
    bsdf.inputs["Metallic"].default_value = 1.0 if metal else 0.0
    bsdf.inputs["Roughness"].default_value = 0.25 if metal else 0.8
    return material


def add_object(scene, name, mesh, material, location, rotation_deg, scale, pass_index, bevel):
    obj = bpy.data.objects.new(name, mesh)
    obj.location = location
    obj.rotation_euler = (0.0, 0.0, math.radians(rotation_deg))
    obj.scale = (scale, scale, scale)
    obj.pass_index = pass_index
    obj.material_slots[0].link = "OBJECT"
    obj.material_slots[0].material = material
    if bevel:
        modifier = obj.modifiers.new("bevel", "BEVEL")
        modifier.width = BEVEL_WIDTH
        modifier.segments = 3
        modifier.limit_method = "ANGLE"
    scene.collection.objects.link(obj)
    return obj


def setup_render(scene, spec, device):
    render = spec["render"]
    threads = int(os.environ.get("CLEVR_REMV_THREADS", "0"))
    if threads > 0:
        scene.render.threads_mode = "FIXED"
        scene.render.threads = threads
    scene.render.engine = "CYCLES"
    scene.render.resolution_x = spec["width"]
    scene.render.resolution_y = spec["height"]
    scene.render.resolution_percentage = 100
    scene.render.use_persistent_data = True
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGB"
    scene.render.image_settings.compression = 60  # zlib level 6: 5 % larger than 9, 8x faster to write
    scene.view_settings.view_transform = "Standard"
    cycles = scene.cycles
    cycles.seed = spec["index"]
    cycles.samples = render["samples"]
    cycles.use_adaptive_sampling = False
    cycles.use_denoising = render["denoise"]
    cycles.denoiser = "OPENIMAGEDENOISE"
    # The albedo and normal passes OIDN reads are clean enough at CLEVR's simple materials:
    # prefiltering them ("ACCURATE") costs 2 more denoiser runs per view (benchmarks/bench_render.py).
    cycles.denoising_prefilter = "FAST"
    cycles.max_bounces = MAX_BOUNCES
    for key, value in render.get("cycles", {}).items():  # overrides, e.g. from the benchmark
        setattr(cycles, key, value)
    cycles.device = "GPU" if device == "gpu" else "CPU"
    if device == "gpu":
        enable_gpu()


def enable_gpu():
    preferences = bpy.context.preferences.addons["cycles"].preferences
    for backend in ("OPTIX", "CUDA"):
        try:
            preferences.compute_device_type = backend
        except TypeError:
            continue
        devices = [d for d in preferences.get_devices_for_type(backend) if d.type == backend]
        if devices:
            for d in preferences.devices:
                d.use = d.type == backend
            return
    raise RuntimeError("--device gpu: no OptiX or CUDA device found; use --device cpu")


def setup_pass_output(scene, directory, depth):
    """Compositor: write the Object Index pass (x channel) and, when ``depth``, the Depth pass
    (y channel) of every render into one EXR, ``directory``/passes.exr; return its path."""
    layer = scene.view_layers[0]
    layer.use_pass_object_index = True
    layer.use_pass_z = depth
    tree = bpy.data.node_groups.new("clevr_remv", "CompositorNodeTree")
    scene.compositing_node_group = tree
    layers = tree.nodes.new("CompositorNodeRLayers")
    combine = tree.nodes.new("ShaderNodeCombineXYZ")
    tree.links.new(layers.outputs["Object Index"], combine.inputs["X"])
    if depth:
        tree.links.new(layers.outputs["Depth"], combine.inputs["Y"])
    output = tree.nodes.new("CompositorNodeOutputFile")
    output.directory = directory
    output.file_name = ""
    output.format.media_type = "IMAGE"
    output.format.file_format = "OPEN_EXR"
    output.format.color_depth = "32"
    output.file_output_items.new("VECTOR", "passes")
    tree.links.new(combine.outputs["Vector"], output.inputs["passes"])
    return os.path.join(directory, "passes.exr")


def build_scene(spec, properties, device, pass_dir, depth=False):
    """Build the spec's scene from nothing; return (scene, camera, pass EXR path)."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    setup_render(scene, spec, device)
    world = bpy.data.worlds.new("world")
    world.use_nodes = True
    background = world.node_tree.nodes["Background"]
    background.inputs["Color"].default_value = (0.5, 0.5, 0.5, 1.0)
    background.inputs["Strength"].default_value = WORLD_STRENGTH
    scene.world = world

    ground_mesh = bpy.data.meshes.new("ground")
    bm = bmesh.new()
    bmesh.ops.create_grid(bm, x_segments=1, y_segments=1, size=50.0)
    bm.to_mesh(ground_mesh)
    bm.free()
    ground = bpy.data.objects.new("ground", ground_mesh)
    ground.data.materials.append(make_material("ground", GROUND_RGB, metal=False))
    scene.collection.objects.link(ground)

    meshes = {}
    for k, obj in enumerate(spec["objects"], start=1):
        kind = properties["shapes"][obj["shape"]]
        if kind not in meshes:
            meshes[kind] = make_mesh(kind)
        rgb = [srgb_to_linear(c) for c in properties["colors"][obj["color"]]]
        metal = properties["materials"][obj["material"]] == "metal"
        add_object(scene, f"object{k}", meshes[kind], make_material(f"m{k}", rgb, metal),
                   obj["3d_coords"], obj["rotation"], obj["radius"], k, bevel=kind != "sphere")

    for light in spec["lights"]:
        data = bpy.data.lights.new(light["name"], "AREA")
        data.energy = light["energy"] * LIGHT_POWER_SCALE
        data.size = LIGHT_SIZE
        data.color = LIGHT_TINTS.get(light["name"], (1.0, 1.0, 1.0))
        lamp = bpy.data.objects.new(light["name"], data)
        lamp.location = light["location"]
        lamp.rotation_euler = look_at_euler(light["location"])
        scene.collection.objects.link(lamp)

    camera_data = bpy.data.cameras.new("camera")
    camera_data.lens = spec["camera"]["lens"]
    camera_data.sensor_width = spec["camera"]["sensor_width"]
    camera_data.sensor_fit = "AUTO"
    camera = bpy.data.objects.new("camera", camera_data)
    scene.collection.objects.link(camera)
    scene.camera = camera
    return scene, camera, setup_pass_output(scene, pass_dir, depth)


def look_at_euler(location):
    """Euler rotation pointing an object's -z axis from ``location`` at the origin."""
    direction = mathutils.Vector((0.0, 0.0, 0.0)) - mathutils.Vector(location)
    return direction.to_track_quat("-Z", "Y").to_euler()


def place_camera(camera, view):
    world_to_camera = np.asarray(view["world_to_camera"], float)
    camera_to_world = np.linalg.inv(world_to_camera)
    camera.matrix_world = mathutils.Matrix(camera_to_world.tolist())
    camera.data.shift_x, camera.data.shift_y = view["shift"]


def read_passes(path):
    """The pass EXR as (index uint8 (H, W), depth float32 (H, W)), top row first."""
    image = bpy.data.images.load(path)
    try:
        width, height = image.size
        pixels = np.empty(width * height * image.channels, np.float32)
        image.pixels.foreach_get(pixels)
    finally:
        bpy.data.images.remove(image)
    pixels = pixels.reshape(height, width, -1)[::-1]
    return np.rint(pixels[:, :, 0]).astype(np.uint8), np.ascontiguousarray(pixels[:, :, 1])


# ---------------------------------------------------------------- jobs

def render_view(scene, camera, view, rgb_path):
    place_camera(camera, view)
    scene.render.filepath = rgb_path
    bpy.ops.render.render(write_still=True)


def probe(job, device, workdir):
    spec = dict(job["spec"])
    spec["render"] = {"samples": 1, "denoise": False,
                      "cycles": {"max_bounces": 0, "diffuse_bounces": 0, "glossy_bounces": 0,
                                  "transmission_bounces": 0, "transparent_max_bounces": 0}}
    scene, camera, pass_exr = build_scene(spec, job["properties"], device, workdir)
    view = next(v for v in spec["views"] if v["name"] == job["view"])
    render_view(scene, camera, view, os.path.join(workdir, "probe.png"))
    index, _ = read_passes(pass_exr)
    counts = np.bincount(index.ravel(), minlength=len(spec["objects"]) + 1)
    emit(event="probe", counts=counts.tolist())


def render(job, device, workdir):
    spec = job["spec"]
    depth = "depth" in job.get("passes", [])
    folders = ["rgb", "index"] + (["depth"] if depth else [])
    for folder in folders:
        os.makedirs(os.path.join(job["out"], folder), exist_ok=True)
    scene, camera, pass_exr = build_scene(spec, job["properties"], device, workdir, depth)
    for view in spec["views"]:
        start = time.perf_counter()
        render_view(scene, camera, view, os.path.join(job["out"], "rgb", view["name"] + ".png"))
        index, z = read_passes(pass_exr)
        np.save(os.path.join(job["out"], "index", view["name"] + ".npy"), index)
        if depth:
            np.save(os.path.join(job["out"], "depth", view["name"] + ".npy"), z)
        emit(event="view", name=view["name"], seconds=time.perf_counter() - start)
    emit(event="done")


def main():
    device = os.environ.get("CLEVR_REMV_DEVICE", "cpu")
    with tempfile.TemporaryDirectory(prefix="clevr-remv-worker-") as workdir:
        emit(event="ready", blender=bpy.app.version_string)
        for line in sys.stdin:
            if not line.strip():
                continue
            job = json.loads(line)
            try:
                {"probe": probe, "render": render}[job["op"]](job, device, workdir)
            except Exception as error:  # reported to the driver, which retries or stops
                emit(event="error", message=f"{type(error).__name__}: {error}")


if __name__ == "__main__":
    main()
