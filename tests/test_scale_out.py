"""Scaling generate out: the Ray executor, a simulated two-node cluster, job-array shards and
concurrent runs on several hosts writing one folder. A Blender-free stand-in worker renders."""
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from clevr_remv.dataset.store import DatasetStore
from clevr_remv.dataset.validate import validate_dataset
from clevr_remv.errors import ClevrRemvError
from clevr_remv.generate.config import GenerateConfig
from clevr_remv.generate.pipeline import generate
from clevr_remv.generate.properties import load_properties

STAND_IN = [sys.executable, str(Path(__file__).with_name("stand_in_worker.py"))]
CONFIG = GenerateConfig(grid=3, width=48, height=32, samples=1, min_pixels=4, properties=load_properties())


def make(root, scenes, **options):
    return generate(root, scenes, CONFIG, command=STAND_IN, progress=False, **options)


def files(root) -> dict:
    """Relative path -> bytes of every file of the scenes."""
    folder = Path(root) / "scenes"
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Scenes 0-5 made by one local run."""
    root = tmp_path_factory.mktemp("reference")
    make(root, 6)
    return root


def assert_complete_and_valid(root, scenes):
    store = DatasetStore(root)
    assert store.scene_ids() == list(range(scenes))
    assert not list(store.scenes_dir.glob(".tmp-*"))
    assert [str(p) for p in validate_dataset(root, quick=True)] == []
    assert store.info()["counts"]["scenes"] == scenes


def test_ray_executor_makes_the_same_files_as_the_local_one(reference, tmp_path):
    summary = make(tmp_path, 6, executor="ray", workers=2, worker_cpus=1)
    assert summary["rendered"] == 6 and sum(summary["per_node"].values()) == 6
    assert files(tmp_path) == files(reference)
    assert_complete_and_valid(tmp_path, 6)


def test_shards_split_the_range_and_make_the_same_scenes(reference, tmp_path):
    made = {}
    for k in range(3):
        make(tmp_path / str(k), 6, shard=f"{k}/3")
        made[k] = DatasetStore(tmp_path / str(k)).scene_ids()
    assert sorted(sum(made.values(), [])) == list(range(6))  # union is the range, shards are disjoint
    assert made[1] == [1, 4]
    for k in range(3):
        assert all(files(tmp_path / str(k))[name] == content for name, content in files(reference).items()
                   if int(name.split("/")[0]) in made[k])
    # Shards into one shared folder complete the dataset.
    for k in range(3):
        make(tmp_path / "shared", 6, shard=f"{k}/3")
    assert files(tmp_path / "shared") == files(reference)


RUN = ("import sys; from clevr_remv.generate.pipeline import generate;"
       "from clevr_remv.generate.config import GenerateConfig;"
       "from clevr_remv.generate.properties import load_properties;"
       "start, scenes = int(sys.argv[2]), int(sys.argv[3]);"
       "generate(sys.argv[1], scenes, GenerateConfig(grid=3, width=48, height=32, samples=1, min_pixels=4,"
       " properties=load_properties()), start=start, command=sys.argv[4:], progress=False)")


def test_two_hosts_with_overlapping_ranges_share_one_folder(reference, tmp_path):
    root = tmp_path / "shared"
    runs = [subprocess.Popen([sys.executable, "-c", RUN, str(root), str(start), "4", *STAND_IN],
                             env=dict(os.environ, CLEVR_REMV_HOSTNAME=host, CLEVR_REMV_STANDIN_VIEW_S="0.02"),
                             stderr=subprocess.PIPE, text=True)
            for host, start in (("host-a", 0), ("host-b", 2))]
    for run in runs:
        assert run.wait(timeout=300) == 0, run.stderr.read()
    assert files(root) == files(reference)
    assert_complete_and_valid(root, 6)
    store = DatasetStore(root)
    assert store.info()["counts"]["expressions"] == sum(len(store.load_refexps(i)["expressions"]) for i in range(6))


def test_a_node_killed_mid_run_loses_and_duplicates_nothing(reference, tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    monkeypatch.setenv("CLEVR_REMV_STANDIN_VIEW_S", "0.15")
    fast_failure = {"health_check_period_ms": 300, "health_check_failure_threshold": 2,
                    "health_check_initial_delay_ms": 0}
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "_system_config": fast_failure})
    doomed = cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False)

    def kill_when_busy():
        deadline = time.time() + 120
        while len(list(tmp_path.glob("scenes/0*"))) < 2 and time.time() < deadline:
            time.sleep(0.05)
        cluster.remove_node(doomed)

    killer = threading.Thread(target=kill_when_busy)
    try:
        killer.start()
        summary = make(tmp_path, 6, executor="ray", workers=2, worker_cpus=1)
    finally:
        killer.join()
        ray.shutdown()
        cluster.shutdown()
    assert summary["rendered"] == 6 and summary["restarts"] >= 1  # the lost scene was made again
    assert files(tmp_path) == files(reference)
    assert_complete_and_valid(tmp_path, 6)


def run_cli(*args, python_prefix="", cwd=None):
    code = f"{python_prefix}import sys; from clevr_remv.cli import main; sys.argv[0] = 'clevr-remv'; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


@pytest.mark.parametrize("args, message", [
    (["--shard", "3/2"], "--shard 3/2: K must be between 0 and N-1"),
    (["--shard", "two"], "--shard two: write K/N"),
    (["--executor", "ray", "--ray-address", "127.0.0.1:1"], "--ray-address 127.0.0.1:1: nothing answers there"),
    (["--stale-after", "soon"], "write a duration such as 24h"),
])
def test_bad_scale_out_flags_are_refused_before_anything_is_written(tmp_path, args, message):
    result = run_cli("generate", "--out", str(tmp_path / "new"), "--scenes", "2", *args)
    assert result.returncode == 2 and message in result.stderr
    assert not (tmp_path / "new").exists()


def test_the_ray_executor_without_the_extra_names_it(tmp_path):
    result = run_cli("generate", "--out", str(tmp_path / "new"), "--scenes", "2", "--executor", "ray",
                     python_prefix="import sys; sys.modules['ray'] = None; ")
    assert result.returncode == 2 and "pip install clevr-remv[cluster]" in result.stderr
    assert not (tmp_path / "new").exists()


def test_a_failing_scene_on_ray_reports_its_message(tmp_path):
    with pytest.raises(ClevrRemvError, match="scene 0: no layout in 100 attempts"):
        generate(tmp_path, 1, GenerateConfig(grid=3, width=48, height=32, samples=1, min_pixels=10 ** 6,
                                             properties=load_properties()),
                 command=STAND_IN, progress=False, executor="ray", workers=1, worker_cpus=1)


def test_a_node_that_cannot_see_the_dataset_folder_stops_the_run(tmp_path):
    from clevr_remv.generate.ray_executor import _ActorPool

    class FakeRay:
        exceptions = pytest.importorskip("ray").exceptions

        def get(self, ref):
            return {"host": "node-b", "pid": 7, "node": "f00dcafe" * 4, "token": None}

    pool = _ActorPool(FakeRay(), None, str(tmp_path / "check"), "secret", str(tmp_path))
    pool.starting["ref"] = "actor"
    with pytest.raises(ClevrRemvError, match=r"a node \(node-b, Ray node f00dcafe\) cannot read the dataset folder"):
        pool.started("ref")
    assert pool.idle == []


def test_actors_that_cannot_start_stop_the_run_with_advice(tmp_path):
    ray = pytest.importorskip("ray")
    from clevr_remv.generate import ray_executor

    class FakeRay:
        exceptions = ray.exceptions

        def get(self, ref):
            raise ray.exceptions.RayActorError()

    class FakeActor:
        class identity:
            @staticmethod
            def remote(check_file):
                return object()

    pool = ray_executor._ActorPool(FakeRay(), FakeActor, str(tmp_path / "check"), "secret", str(tmp_path))
    pool.start()
    with pytest.raises(ClevrRemvError, match="actors keep failing to start.*on every node"):
        for _ in range(ray_executor.MAX_START_FAILURES + 1):
            pool.started(next(iter(pool.starting)))
    assert len(pool.everyone) == ray_executor.MAX_START_FAILURES + 1
