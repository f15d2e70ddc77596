"""The generate pipeline: pick the scenes to make (range, shard, not yet complete), hand them to an
executor (local worker processes or Ray actors), then recount the dataset."""
import time

from clevr_remv.dataset.store import remove_stale_temporaries
from clevr_remv.errors import ClevrRemvError
from clevr_remv.generate.config import GenerateConfig
from clevr_remv.generate.executors import run_local
from clevr_remv.generate.ray_executor import check_reachable, import_ray, run_on_ray
from clevr_remv.generate.scene_job import Progress, SceneJob
from clevr_remv.generate.writer import open_dataset
from clevr_remv.refexp import refexp_settings

DEFAULT_STALE_AFTER_S = 24 * 3600.0
EXECUTORS = ("local", "ray")


def parse_shard(text):
    """'K/N' -> (K, N) with 0 <= K < N; None stays None."""
    if text is None:
        return None
    try:
        k, n = (int(part) for part in str(text).split("/"))
    except ValueError:
        raise ClevrRemvError(f"--shard {text}: write K/N, e.g. 3/64 (0-based shard K of N)") from None
    if not (n >= 1 and 0 <= k < n):
        raise ClevrRemvError(f"--shard {text}: K must be between 0 and N-1 (shards are 0-based: "
                             f"0/{max(n, 1)} ... {max(n, 1) - 1}/{max(n, 1)})")
    return k, n


def generate(out, scenes: int, config: GenerateConfig, start: int = 0, workers=None, command=None,
             device: str = "cpu", refexps=None, view_timeout: float = 600.0, progress: bool = True,
             executor: str = "local", shard=None, worker_cpus=None, ray_address=None,
             stale_after: float = DEFAULT_STALE_AFTER_S) -> dict:
    """Generate scenes ``start`` .. ``start + scenes - 1`` into ``out``; skip complete ones.

    ``command`` starts a render worker (see clevr_remv.generate.render.worker_command); ``refexps``
    are the expression settings (clevr_remv.refexp.refexp_settings; default: the defaults with the
    config's seed). ``executor`` is "local" (``workers`` processes here, default 1) or "ray"
    (``workers`` actors, default one per node or GPU, each with ``worker_cpus`` CPUs).
    ``shard`` = "K/N" keeps the scenes i with i mod N == K. Leftover temporary folders of this
    host's dead runs, and any older than ``stale_after`` seconds, are removed. Returns a summary.
    """
    if scenes < 1:
        raise ClevrRemvError(f"--scenes: {scenes} must be >= 1")
    if start < 0:
        raise ClevrRemvError(f"--start: {start} must be >= 0")
    if workers is not None and workers < 1:
        raise ClevrRemvError(f"--workers: {workers} must be >= 1")
    if worker_cpus is not None and worker_cpus < 1:
        raise ClevrRemvError(f"--worker-cpus: {worker_cpus} must be >= 1")
    if executor not in EXECUTORS:
        raise ClevrRemvError(f"--executor: {executor!r} must be one of {', '.join(EXECUTORS)}")
    if stale_after <= 0:
        raise ClevrRemvError(f"--stale-after: {stale_after} must be > 0")
    k, n = parse_shard(shard) or (0, 1)
    if executor == "ray":  # before anything is written
        import_ray()
        check_reachable(ray_address)
    refexps = refexps or refexp_settings(config.seed)
    store = open_dataset(out, config, refexps)
    remove_stale_temporaries(store.scenes_dir, stale_after)
    done = set(store.scene_ids())
    wanted = [index for index in range(start, start + scenes) if index % n == k]
    todo = [index for index in wanted if index not in done]
    job = SceneJob(str(store.root.resolve()), config, refexps)
    tracker = Progress(len(todo), config.grid ** 2, progress)
    started = time.perf_counter()
    try:
        if executor == "ray":
            per_node = run_on_ray(job, todo, tracker, workers, worker_cpus, command, device, view_timeout,
                                  ray_address, stale_after)
        else:
            per_node = run_local(job, todo, tracker, workers or 1, worker_cpus, command, device, view_timeout)
    finally:
        tracker.close()
        counts = store.refresh_counts()
    return {"rendered": tracker.rendered, "skipped": len(wanted) - tracker.rendered, "views": tracker.views,
            "wall_seconds": time.perf_counter() - started, "render_seconds": tracker.render_seconds,
            "restarts": tracker.restarts, "counts": counts, "out": str(store.root), "per_node": per_node}
