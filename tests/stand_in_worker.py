"""A Blender-free render worker for tests: it speaks render_scene.py's protocol and draws each
view with the synthetic rasterizer (objects as discs). Tests steer it with environment variables:
CLEVR_REMV_STANDIN_VIEW_S slows each view (and probe) down, so that a run can be interrupted mid-scene;
while the file CLEVR_REMV_STANDIN_GATE exists, every view after a scene's first waits; each job
start is appended to the file CLEVR_REMV_STANDIN_LOG as "<pid> <op> <scene index>"."""

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from clevr_remv.generate.synthetic import rasterize_view

VIEW_SECONDS = float(os.environ.get("CLEVR_REMV_STANDIN_VIEW_S", "0"))
GATE = os.environ.get("CLEVR_REMV_STANDIN_GATE")
LOG = os.environ.get("CLEVR_REMV_STANDIN_LOG")


def emit(**event):
    print("@@clevr-remv " + json.dumps(event), flush=True)


def main():
    emit(event="ready")
    for line in sys.stdin:
        job = json.loads(line)
        spec, properties = job["spec"], job["properties"]
        if LOG:
            with open(LOG, "a") as log:
                log.write(f"{os.getpid()} {job['op']} {spec['index']}\n")
        if job["op"] == "probe":
            time.sleep(VIEW_SECONDS)
            view = next(v for v in spec["views"] if v["name"] == job["view"])
            _, index = rasterize_view(spec, view, properties)
            emit(event="probe", counts=np.bincount(index.ravel(), minlength=len(spec["objects"]) + 1).tolist())
            continue
        out = Path(job["out"])
        (out / "rgb").mkdir(exist_ok=True)
        (out / "index").mkdir(exist_ok=True)
        for number, view in enumerate(spec["views"]):
            start = time.perf_counter()
            while GATE and number > 0 and os.path.exists(GATE):
                time.sleep(0.01)
            time.sleep(VIEW_SECONDS)
            rgb, index = rasterize_view(spec, view, properties)
            Image.fromarray(rgb).save(out / "rgb" / f"{view['name']}.png")
            np.save(out / "index" / f"{view['name']}.npy", index)
            emit(event="view", name=view["name"], seconds=time.perf_counter() - start)
        emit(event="done")


if __name__ == "__main__":
    main()
