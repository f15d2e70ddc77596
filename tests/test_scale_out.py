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
        assert all(
            files(tmp_path / str(k))[name] == content
            for name, content in files(reference).items()
            if int(name.split("/")[0]) in made[k]
        )
    # Shards into one shared folder complete the dataset.
    for k in range(3):
        make(tmp_path / "shared", 6, shard=f"{k}/3")
    assert files(tmp_path / "shared") == files(reference)


RUN = (
    "import sys; from clevr_remv.generate.pipeline import generate;"
    "from clevr_remv.generate.config import GenerateConfig;"
    "from clevr_remv.generate.properties import load_properties;"
    "start, scenes = int(sys.argv[2]), int(sys.argv[3]);"
    "generate(sys.argv[1], scenes, GenerateConfig(grid=3, width=48, height=32, samples=1, min_pixels=4,"
    " properties=load_properties()), start=start, command=sys.argv[4:], progress=False)"
)


def test_two_hosts_with_overlapping_ranges_share_one_folder(reference, tmp_path):
    root = tmp_path / "shared"
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", RUN, str(root), str(start), "4", *STAND_IN],
            env=dict(os.environ, CLEVR_REMV_HOSTNAME=host, CLEVR_REMV_STANDIN_VIEW_S="0.02"),
            stderr=subprocess.PIPE,
            text=True,
        )
        for host, start in (("host-a", 0), ("host-b", 2))
    ]
    for run in runs:
        assert run.wait(timeout=300) == 0, run.stderr.read()
    assert files(root) == files(reference)
    assert_complete_and_valid(root, 6)
    store = DatasetStore(root)
    assert store.info()["counts"]["expressions"] == sum(len(store.load_refexps(i)["expressions"]) for i in range(6))


def test_a_node_killed_mid_scene_loses_and_duplicates_nothing(reference, tmp_path, monkeypatch):
    """The node is removed while its actor is certainly mid-scene: every actor renders the first
    view of its first scene and then waits at a gate, which opens only once the actor is dead."""
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    from clevr_remv.dataset.leases import lease_alive

    gate, root = tmp_path / "gate", tmp_path / "data"
    gate.touch()
    monkeypatch.setenv("CLEVR_REMV_STANDIN_GATE", str(gate))
    fast_failure = {
        "health_check_period_ms": 300,
        "health_check_failure_threshold": 2,
        "health_check_initial_delay_ms": 0,
    }
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "_system_config": fast_failure})
    doomed = cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False)

    def mid_scene():
        return [folder for folder in root.glob("scenes/.tmp-0*") if any(folder.glob("rgb/*.png"))]

    def kill_when_both_are_mid_scene():
        try:
            deadline = time.time() + 120
            while len(mid_scene()) < 2 and time.time() < deadline:
                time.sleep(0.05)
            leases = list(root.glob("scenes/.tmp-run-*"))
            cluster.remove_node(doomed)
            while all(lease_alive(lease, 3600) for lease in leases) and time.time() < deadline:
                time.sleep(0.05)  # until the doomed actor's process is gone (its lease lock is free)
        finally:
            gate.unlink()

    killer = threading.Thread(target=kill_when_both_are_mid_scene)
    try:
        killer.start()
        summary = make(root, 6, executor="ray", workers=2, worker_cpus=1)
    finally:
        killer.join()
        ray.shutdown()
        cluster.shutdown()
    assert summary["rendered"] == 6 and summary["restarts"] == 1  # the lost scene was made again, here
    assert files(root) == files(reference)
    assert_complete_and_valid(root, 6)  # no temporary folder or lease of the dead actor is left


class FakeRay:
    """Just enough of ray for the driver loop: refs are made ready in order; ``outcomes`` maps a
    ref to the value ray.get returns or the exception it raises."""

    exceptions = pytest.importorskip("ray").exceptions

    def __init__(self):
        self.outcomes, self.killed = {}, []

    def wait(self, refs, num_returns=1, timeout=None):
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref):
        outcome = self.outcomes[ref]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def kill(self, actor, no_restart=True):
        self.killed.append(actor)


class FakeActor:
    """An actor whose calls return refs (strings) whose outcomes the test sets in FakeRay."""

    def __init__(self, ray, name, make_outcomes):
        self.name, self.ray, self.make_outcomes = name, ray, list(make_outcomes)
        parent = self

        class Method:
            def __init__(self, method):
                self.method = method

            def remote(self, *args):
                ref = f"{parent.name}.{self.method}{args}"
                if self.method == "identity":
                    ray.outcomes[ref] = {
                        "host": "node",
                        "pid": 1,
                        "run": parent.name,
                        "token": "secret",
                        "node": "f00dcafe" * 4,
                    }
                elif self.method == "make":
                    ray.outcomes[ref] = parent.make_outcomes.pop(0)
                return ref

        self.identity, self.make, self.close = Method("identity"), Method("make"), Method("close")


class NoEvents:
    def qsize(self):
        return 0


def test_an_unreachable_actor_is_replaced_but_its_folder_is_kept(tmp_path):
    """ActorUnavailableError ("may be available later") is a RayActorError, but the actor may still
    finish and rename its folder: the driver kills it and gives the scene to another actor, and the
    folder goes only when its lease says the actor is dead."""
    from clevr_remv.dataset.store import atomic_scene_dir
    from clevr_remv.generate.ray_executor import _ActorPool, _drive
    from clevr_remv.generate.scene_job import Progress

    ray = FakeRay()
    unreachable = ray.exceptions.ActorUnavailableError("the node does not answer", None)
    made = iter(
        [FakeActor(ray, "slow", [unreachable]), FakeActor(ray, "other", [True]), FakeActor(ray, "replacement", [])]
    )
    pool = _ActorPool(ray, lambda shape: next(made), str(tmp_path / "check"), "secret", str(tmp_path), 3600)
    for _ in range(2):
        pool.start((1, 0, None))
    for ref in list(pool.starting):
        pool.started(ref)
    pool.idle.reverse()  # the first actor gets the scene
    progress = Progress(1, 9, enabled=False)
    live = atomic_scene_dir(tmp_path / "scenes", 7)  # the unreachable actor's folder, still being written
    with live as folder:
        assert _drive(ray, pool, [7], progress, NoEvents()) == {"node/f00dcafe": 1}
        assert folder.is_dir()
        (folder / "scene.json").write_text("{}")
    assert [actor.name for actor in ray.killed] == ["slow"]
    assert progress.restarts == 1 and progress.rendered == 1
    assert [actor.name for actor in pool.starting.values()] == ["replacement"]
    assert live.completed and (tmp_path / "scenes" / "000007" / "scene.json").is_file()


def test_default_actors_use_every_node_of_a_mixed_cluster():
    """Nodes of 4 and 64 CPUs: one actor per node, each with its node's CPUs (an even share, 34,
    fits on one node only); 2 actors share the 64-CPU node; --worker-cpus 8 fits 8 actors."""
    from clevr_remv.generate.ray_executor import _cluster_shape

    class Cluster:
        def nodes(self):
            return [
                {"Alive": True, "NodeID": "small", "Resources": {"CPU": 4.0}},
                {"Alive": True, "NodeID": "big", "Resources": {"CPU": 64.0}},
                {"Alive": False, "NodeID": "gone", "Resources": {"CPU": 128.0}},
            ]

    assert _cluster_shape(Cluster(), "cpu", None, None) == [(4, 0, "small"), (64, 0, "big")]
    assert _cluster_shape(Cluster(), "cpu", 2, None) == [(32, 0, None)] * 2
    assert _cluster_shape(Cluster(), "cpu", 3, None) == [(21, 0, None)] * 3
    assert _cluster_shape(Cluster(), "cpu", None, 8) == [(8, 0, None)] * 8
    with pytest.raises(ClevrRemvError, match="--worker-cpus: 65 is more than the largest node has"):
        _cluster_shape(Cluster(), "cpu", None, 65)


def run_cli(*args, python_prefix="", cwd=None):
    code = f"{python_prefix}import sys; from clevr_remv.cli import main; sys.argv[0] = 'clevr-remv'; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--shard", "3/2"], "--shard 3/2: K must be between 0 and N-1"),
        (["--shard", "two"], "--shard two: write K/N"),
        (["--executor", "ray", "--ray-address", "127.0.0.1:1"], "--ray-address 127.0.0.1:1: nothing answers there"),
        (["--stale-after", "soon"], "write a duration such as 24h"),
    ],
)
def test_bad_scale_out_flags_are_refused_before_anything_is_written(tmp_path, args, message):
    result = run_cli("generate", "--out", str(tmp_path / "new"), "--scenes", "2", *args)
    assert result.returncode == 2 and message in result.stderr
    assert not (tmp_path / "new").exists()


def test_the_ray_executor_without_the_extra_names_it(tmp_path):
    result = run_cli(
        "generate",
        "--out",
        str(tmp_path / "new"),
        "--scenes",
        "2",
        "--executor",
        "ray",
        python_prefix="import sys; sys.modules['ray'] = None; ",
    )
    assert result.returncode == 2 and "pip install clevr-remv[cluster]" in result.stderr
    assert not (tmp_path / "new").exists()


def test_a_failing_scene_on_ray_reports_its_message(tmp_path):
    with pytest.raises(ClevrRemvError, match="scene 0: no layout in 100 attempts"):
        generate(
            tmp_path,
            1,
            GenerateConfig(grid=3, width=48, height=32, samples=1, min_pixels=10**6, properties=load_properties()),
            command=STAND_IN,
            progress=False,
            executor="ray",
            workers=1,
            worker_cpus=1,
        )


def test_a_node_that_cannot_see_the_dataset_folder_stops_the_run(tmp_path):
    from clevr_remv.generate.ray_executor import _ActorPool

    class FakeRay:
        exceptions = pytest.importorskip("ray").exceptions

        def get(self, ref):
            return {"host": "node-b", "pid": 7, "node": "f00dcafe" * 4, "token": None}

    pool = _ActorPool(FakeRay(), None, str(tmp_path / "check"), "secret", str(tmp_path), 3600)
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

    pool = ray_executor._ActorPool(
        FakeRay(), lambda shape: FakeActor(), str(tmp_path / "check"), "secret", str(tmp_path), 3600
    )
    pool.start((1, 0, None))
    with pytest.raises(ClevrRemvError, match="actors keep failing to start.*on every node"):
        for _ in range(ray_executor.MAX_START_FAILURES + 1):
            pool.started(next(iter(pool.starting)))
    assert len(pool.everyone) == ray_executor.MAX_START_FAILURES + 1
