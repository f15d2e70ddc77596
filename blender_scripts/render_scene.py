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
  ``{"event": "view", "name": ..., "seconds": ..., "phases": {...}, "cpu_seconds": ...}`` per view and
  ``{"event": "done", "write_seconds": ..., "wait_seconds": ...}`` at the end (the writer thread's
  total time, and the wait for its last view).

Per view, Blender renders (scene sync, path tracing and denoising, compositor: the pass EXR) and
writes the 8-bit RGB as an uncompressed BMP in a scratch folder; the PNG and .npy files are then
encoded by a background thread while the next view renders. ``phases`` are the seconds each step
took on the main thread (see PHASES), ``cpu_seconds`` the process's CPU time over them (all
threads: a measure of work that other processes' load does not inflate as much as wall time);
the writer thread's total is in the "done" event.
- Failures reply ``{"event": "error", "message": ...}``; the driver decides what to retry.

Each view's pass EXR and BMP are deleted before it renders, so a file that is there afterwards
comes from that view's render (a compositor that wrote nothing, e.g. on a full disk, is an error,
never the previous view's masks). SIGTERM or SIGINT stops the worker after its current view; its
temporary files go with it (the driver points TMPDIR at a scratch folder of its own).

Only the standard library, numpy and bpy are used, so a Blender binary can run it.
"""

import json
import math
import os
import signal
import struct
import sys
import tempfile
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import bpy  # first: bmesh and mathutils come with it  # isort: skip
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
PNG_LEVEL = 6  # zlib level: files about 4 % smaller than Blender's own PNGs at its level 6
# Main-thread steps of one view, in order: Cycles' scene update, path tracing + denoising,
# render result + compositor (pass EXR), colour-managed 8-bit RGB out (BMP), pass EXR read-back,
# waiting for the writer thread (previous view's PNG and .npy files).
PHASES = ("sync", "trace", "composite", "rgb_out", "passes_in", "write_wait")


class Stop(BaseException):
    """Raised at the end of a view once a stop was asked for (not an error to report)."""


STOP = {"asked": False, "busy": False}


def ask_to_stop(signum, frame):
    """Signal handler: stop now when idle, else after the current view (see check_stop)."""
    STOP["asked"] = True
    if not STOP["busy"]:
        raise Stop


def check_stop():
    if STOP["asked"]:
        raise Stop


def fresh(path):
    """``path`` after removing any earlier file there: what is found there later was written since."""
    if os.path.exists(path):
        os.remove(path)
    return path


def require_file(path, view):
    """``path``, or an error naming ``view`` when its render did not write it."""
    if not os.path.isfile(path):
        raise RuntimeError(
            f"view {view}: Blender wrote no {os.path.basename(path)} (is the disk of "
            f"{os.path.dirname(path)} full?); nothing of an earlier view is used instead"
        )
    return path


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
    scene.render.image_settings.file_format = "BMP"  # raw 8-bit read-out; PNGs are encoded by the writer thread
    scene.render.image_settings.color_mode = "RGB"
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
    # Blue-noise sampling (Blender's "Automatic" pattern at these sample counts; the factory scene
    # has tabulated Sobol): the denoiser removes more of its error, for free (benchmarks/bench_render.py).
    cycles.sampling_pattern = "AUTOMATIC"
    for key, value in render.get("cycles", {}).items():  # overrides, e.g. from the benchmark
        setattr(cycles, key, value)
    cycles.device = "GPU" if device == "gpu" else "CPU"
    if device == "gpu":
        cycles.denoising_use_gpu = True
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
        add_object(
            scene,
            f"object{k}",
            meshes[kind],
            make_material(f"m{k}", rgb, metal),
            obj["3d_coords"],
            obj["rotation"],
            obj["radius"],
            k,
            bevel=kind != "sphere",
        )

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


def read_rgb(scene, path):
    """The last render as 8-bit RGB (H, W, 3), top row first: Blender's colour management and
    dithering, saved as an uncompressed BMP at ``path`` (no PNG encoding on this thread)."""
    bpy.data.images["Render Result"].save_render(fresh(path), scene=scene)
    data = np.fromfile(path, np.uint8)
    (offset,) = struct.unpack_from("<I", data, 10)
    width, height = struct.unpack_from("<ii", data, 18)
    channels = struct.unpack_from("<H", data, 28)[0] // 8
    stride = (width * channels + 3) // 4 * 4  # BMP rows are padded to 4 bytes
    rows = data[offset : offset + stride * abs(height)].reshape(abs(height), stride)
    bgr = rows[:, : width * channels].reshape(abs(height), width, channels)[:, :, 2::-1]
    return np.ascontiguousarray(bgr[::-1] if height > 0 else bgr)  # height > 0: bottom row first


def png_chunk(kind, payload):
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def encode_png(rgb):
    """PNG bytes of 8-bit RGB (H, W, 3): PNG's "Sub" row filter, zlib at PNG_LEVEL. Written with
    the standard library so that a Blender binary (no Pillow) runs it; zlib releases the GIL, so
    it overlaps the next render."""
    height, width, _ = rgb.shape
    filtered = rgb.copy()
    filtered[:, 1:] -= rgb[:, :-1]  # uint8 arithmetic wraps modulo 256, as the filter wants
    rows = np.concatenate([np.ones((height, 1), np.uint8), filtered.reshape(height, -1)], axis=1)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, not interlaced
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(rows.tobytes(), PNG_LEVEL))
        + png_chunk(b"IEND", b"")
    )


class PhaseClock:
    """Times one render's phases from Blender's render statistics: scene update until the first
    "Sample" message, path tracing and denoising until "Finished", then render result hand-over
    and compositor until the render call returns."""

    def __init__(self):
        self.marks = {}

    def __enter__(self):
        bpy.app.handlers.render_stats.append(self.on_stats)
        return self

    def __exit__(self, *exc):
        bpy.app.handlers.render_stats.remove(self.on_stats)

    def on_stats(self, text, *_):
        if "| Sample " in text:
            self.marks.setdefault("trace", time.perf_counter())
        elif text.endswith("| Finished"):
            self.marks.setdefault("composite", time.perf_counter())

    def render(self, scene, camera, view):
        """Render ``view``; return {"sync": s, "trace": s, "composite": s}."""
        self.marks = {}
        start = time.perf_counter()
        place_camera(camera, view)
        bpy.ops.render.render(write_still=False)
        end = time.perf_counter()
        trace = self.marks.get("trace", start)
        composite = self.marks.get("composite", trace)
        return {"sync": trace - start, "trace": composite - trace, "composite": end - composite}


def write_view(out, name, rgb, index, depth):
    """The writer thread's job for one view: its PNG and .npy files; return the seconds it took."""
    start = time.perf_counter()
    with open(os.path.join(out, "rgb", name + ".png"), "wb") as file:
        file.write(encode_png(rgb))
    np.save(os.path.join(out, "index", name + ".npy"), index)
    if depth is not None:
        np.save(os.path.join(out, "depth", name + ".npy"), depth)
    return time.perf_counter() - start


# ---------------------------------------------------------------- jobs


def probe(job, device, workdir):
    spec = dict(job["spec"])
    spec["render"] = {
        "samples": 1,
        "denoise": False,
        "cycles": {
            "max_bounces": 0,
            "diffuse_bounces": 0,
            "glossy_bounces": 0,
            "transmission_bounces": 0,
            "transparent_max_bounces": 0,
        },
    }
    scene, camera, pass_exr = build_scene(spec, job["properties"], device, workdir)
    view = next(v for v in spec["views"] if v["name"] == job["view"])
    place_camera(camera, view)
    fresh(pass_exr)
    bpy.ops.render.render(write_still=False)
    index, _ = read_passes(require_file(pass_exr, view["name"]))
    counts = np.bincount(index.ravel(), minlength=len(spec["objects"]) + 1)
    emit(event="probe", counts=counts.tolist())


def render(job, device, workdir):
    spec = job["spec"]
    depth = "depth" in job.get("passes", [])
    folders = ["rgb", "index"] + (["depth"] if depth else [])
    for folder in folders:
        os.makedirs(os.path.join(job["out"], folder), exist_ok=True)
    scene, camera, pass_exr = build_scene(spec, job["properties"], device, workdir, depth)
    bmp = os.path.join(workdir, "rgb.bmp")
    writes = []
    with PhaseClock() as clock, ThreadPoolExecutor(max_workers=1) as writer:
        for view in spec["views"]:
            cpu_start = time.process_time()
            fresh(pass_exr)
            phases = clock.render(scene, camera, view)
            require_file(pass_exr, view["name"])
            start = time.perf_counter()
            rgb = read_rgb(scene, bmp)
            phases["rgb_out"] = time.perf_counter() - start
            index, z = read_passes(pass_exr)
            phases["passes_in"] = time.perf_counter() - start - phases["rgb_out"]
            start = time.perf_counter()
            if writes:
                writes[-1] = writes[-1].result()  # at most one view waits to be written
            phases["write_wait"] = time.perf_counter() - start
            writes.append(writer.submit(write_view, job["out"], view["name"], rgb, index, z if depth else None))
            emit(
                event="view",
                name=view["name"],
                seconds=sum(phases.values()),
                phases=phases,
                cpu_seconds=time.process_time() - cpu_start,
            )
            check_stop()
        start = time.perf_counter()
        writes[-1] = writes[-1].result()
    emit(event="done", write_seconds=sum(writes), wait_seconds=time.perf_counter() - start)


def serve(device, workdir):
    emit(event="ready", blender=bpy.app.version_string)
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        STOP["busy"] = True
        try:
            {"probe": probe, "render": render}[job["op"]](job, device, workdir)
        except Exception as error:  # reported to the driver, which retries or stops
            emit(event="error", message=f"{type(error).__name__}: {error}")
        STOP["busy"] = False
        check_stop()


def main():
    device = os.environ.get("CLEVR_REMV_DEVICE", "cpu")
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # a driver that is gone: BrokenPipeError, then clean-up
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, ask_to_stop)
    with tempfile.TemporaryDirectory(prefix="clevr-remv-worker-") as workdir:
        try:
            serve(device, workdir)
        except (Stop, BrokenPipeError):
            pass


if __name__ == "__main__":
    main()
