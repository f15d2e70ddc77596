"""A Blender-free render worker for tests: it speaks render_scene.py's protocol and draws each
view with the synthetic rasterizer (objects as discs). CLEVR_REMV_STANDIN_VIEW_S slows each view
down, so that tests can interrupt a run mid-scene."""
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from clevr_remv.generate.synthetic import rasterize_view

VIEW_SECONDS = float(os.environ.get("CLEVR_REMV_STANDIN_VIEW_S", "0"))


def emit(**event):
    print("@@clevr-remv " + json.dumps(event), flush=True)


def main():
    emit(event="ready")
    for line in sys.stdin:
        job = json.loads(line)
        spec, properties = job["spec"], job["properties"]
        if job["op"] == "probe":
            view = next(v for v in spec["views"] if v["name"] == job["view"])
            _, index = rasterize_view(spec, view, properties)
            emit(event="probe", counts=np.bincount(index.ravel(), minlength=len(spec["objects"]) + 1).tolist())
            continue
        out = Path(job["out"])
        (out / "rgb").mkdir(exist_ok=True)
        (out / "index").mkdir(exist_ok=True)
        for view in spec["views"]:
            start = time.perf_counter()
            time.sleep(VIEW_SECONDS)
            rgb, index = rasterize_view(spec, view, properties)
            Image.fromarray(rgb).save(out / "rgb" / f"{view['name']}.png")
            np.save(out / "index" / f"{view['name']}.npy", index)
            emit(event="view", name=view["name"], seconds=time.perf_counter() - start)
        emit(event="done")


if __name__ == "__main__":
    main()
