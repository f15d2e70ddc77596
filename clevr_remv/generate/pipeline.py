"""The generate pipeline: pick the scenes to make (range, shard, not yet complete), hand them to an
executor (local worker processes or Ray actors), then recount the dataset.

Each run holds a lease (`clevr_remv.dataset.store.start_run`) from before it opens the dataset
until its scenes are made; the recount at the end leaves disagreements to runs still at work.
"""

import contextlib
import time
from pathlib import Path

from clevr_remv.dataset.atomic import TMP_PREFIX
from clevr_remv.dataset.outdir import check_output_dir, only_names
from clevr_remv.dataset.store import other_runs_at_work, remove_stale_temporaries, start_run
from clevr_remv.errors import ClevrRemvError
from clevr_remv.generate.config import GenerateConfig
from clevr_remv.generate.executors import run_local
from clevr_remv.generate.ray_executor import check_reachable, import_ray, run_on_ray
from clevr_remv.generate.render import remove_stale_scratch
from clevr_remv.generate.scene_job import Progress, SceneJob
from clevr_remv.generate.writer import create_or_open_dataset
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
        raise ClevrRemvError(
            f"--shard {text}: K must be between 0 and N-1 (shards are 0-based: "
            f"0/{max(n, 1)} ... {max(n, 1) - 1}/{max(n, 1)})"
        )
    return k, n


def _generates_own(folder: Path) -> bool:
    """Whether ``folder`` is a dataset, or holds only what `generate` writes before dataset.json
    (runs starting together into a new folder)."""
    return (folder / "dataset.json").is_file() or only_names("scenes", TMP_PREFIX + "*")(folder)


def _remove_empty(folders) -> None:
    """Remove those of ``folders`` that are empty, innermost first."""
    for folder in sorted(folders, key=lambda path: len(path.parts), reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()


def generate(
    out,
    scenes: int,
    config: GenerateConfig,
    start: int = 0,
    workers=None,
    command=None,
    device: str = "cpu",
    refexps=None,
    view_timeout: float = 600.0,
    progress: bool = True,
    executor: str = "local",
    shard=None,
    worker_cpus=None,
    ray_address=None,
    stale_after: float = DEFAULT_STALE_AFTER_S,
) -> dict:
    """Generate scenes ``start`` .. ``start + scenes - 1`` into ``out``; skip complete ones.

    ``command`` starts a render worker (see clevr_remv.generate.render.worker_command); ``refexps``
    are the expression settings (clevr_remv.refexp.refexp_settings; default: the defaults with the
    config's seed). ``executor`` is "local" (``workers`` processes here, default 1) or "ray"
    (``workers`` actors, default one per node or GPU, each with ``worker_cpus`` CPUs).
    ``shard`` = "K/N" keeps the scenes i with i mod N == K. Leftovers of runs that have ended
    are removed (see `clevr_remv.dataset.store.remove_stale_temporaries`; ``stale_after``
    seconds decide for other hosts' runs). A first run that fails before making a scene leaves no
    dataset behind; otherwise dataset.json counts the scenes finished however the run ends (an
    error, Ctrl+C, SIGTERM; after SIGKILL the next run recounts). Returns a summary.
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
    if not view_timeout > 0:
        raise ClevrRemvError(
            f"--view-timeout: {view_timeout} must be > 0 (seconds without progress before a "
            "render worker is restarted, e.g. 600)"
        )
    k, n = parse_shard(shard) or (0, 1)
    out = check_output_dir(out, "generate", ours=_generates_own)
    if executor == "ray":  # before anything is written
        import_ray()
        check_reachable(ray_address)
    refexps = refexps or refexp_settings(config.seed)
    made = [folder for folder in (out, out / "scenes") if not folder.exists()]  # by this run, if it fails
    lease = start_run(out / "scenes")  # first: a failed first run sees whether other runs came meanwhile
    store = None
    try:
        store, created = create_or_open_dataset(out, config, refexps)
        remove_stale_temporaries(store.scenes_dir, stale_after)
        remove_stale_scratch(stale_after)
        done = set(store.scene_ids())
        wanted = [index for index in range(start, start + scenes) if index % n == k]
        todo = [index for index in wanted if index not in done]
        job = SceneJob(str(store.root.resolve()), config, refexps)
        tracker = Progress(len(todo), config.grid**2, progress)
        started = time.perf_counter()
        try:
            if executor == "ray":
                per_node = run_on_ray(
                    job, todo, tracker, workers, worker_cpus, command, device, view_timeout, ray_address, stale_after
                )
            else:
                per_node = run_local(
                    job, todo, tracker, workers or 1, worker_cpus, command, device, view_timeout, lease
                )
        finally:
            tracker.close()
    except BaseException:
        lease.release()
        if store is None:
            _remove_empty(made)
        elif created and not store.scene_ids() and not other_runs_at_work(store.scenes_dir):
            store.dataset_json_path.unlink(missing_ok=True)  # the corrected command starts afresh
            _remove_empty(made)
        else:  # also after Ctrl+C or SIGTERM: the scenes finished count (a second one skips it)
            with contextlib.suppress(Exception, KeyboardInterrupt, SystemExit):  # the run's own error is reported
                store.refresh_counts(lambda: other_runs_at_work(store.scenes_dir))
        raise
    lease.release()
    remove_stale_temporaries(store.scenes_dir, stale_after)  # e.g. of Ray actors lost meanwhile
    counts = store.refresh_counts(lambda: other_runs_at_work(store.scenes_dir))
    return {
        "rendered": tracker.rendered,
        "skipped": len(wanted) - tracker.rendered,
        "views": tracker.views,
        "wall_seconds": time.perf_counter() - started,
        "render_seconds": tracker.render_seconds,
        "restarts": tracker.restarts,
        "counts": counts,
        "out": str(store.root),
        "per_node": per_node,
    }
