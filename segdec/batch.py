"""Papermill batches: one ``02_train`` notebook per run, then the report notebooks.

A batch file (YAML) names the batch, the runs' shared run-configuration ``defaults``, the
``runs`` (``name``, optional ``tags`` and ``seeds``, any ``RunConfig`` field as an override) and the
``reports`` to execute afterwards (``notebook`` + ``parameters``). Each run trains into
``<runs_dir>/<name>`` and its executed notebook lands in ``<batch file's folder>/out/<batch>/``.

A run whose ``metrics.json`` exists is skipped and an interrupted one resumes from its last
checkpoint, so a killed batch started again runs only what is missing. Two runs sharing an
``out_dir`` are refused before anything runs, and a batch holds its notebook folder's lock
(``segdec.outputs``), so the same batch started twice is refused at once. A finished run whose saved
``config.yaml`` differs from the batch file's settings is stale: it is reported, not skipped and
not overwritten. A run that raises is
recorded and the others go on; the summary lists every failure and the exit code is non-zero.
Runs fan out over local processes (one per GPU when there are several, each with its share of
the CPU cores) or over a Dask cluster. Dask workers get no GPU from here: a worker's runs use the
GPUs that worker sees, so start one worker per GPU, each with its own ``CUDA_VISIBLE_DEVICES``.
"""

from __future__ import annotations

import fnmatch
import logging
import multiprocessing
import os
import re
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from segdec.config import RunConfig
from segdec.errors import ConfigError, MissingExtraError
from segdec.kernel import KERNEL, KERNEL_ARGUMENTS
from segdec.outputs import FolderLock
from segdec.timing import batch_progress

logger = logging.getLogger(__name__)
TRAIN_NOTEBOOK = "notebooks/02_train.ipynb"
# "presets" is not read: it holds YAML anchors that runs merge in with "<<: *anchor".
BATCH_KEYS = {"batch", "notebook", "runs_dir", "synthetic", "defaults", "presets", "runs",
              "reports"}
SYNTHETIC_KEYS = {"n_pos", "n_neg", "shape", "seed"}  # shape: [height, width]
# Letters, digits and _.+- in "/"-separated parts (a run named "severstal/MS-A+T+W" trains in
# <runs_dir>/severstal/MS-A+T+W); no part can be "..".
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*(/[A-Za-z0-9][A-Za-z0-9_.+-]*)*$")


PATH_FIELDS = ("data_root", "split_csv")  # compared as the folders and files they name


def _resolved_paths(values: dict[str, Any]) -> dict[str, Any]:
    return {**values, **{name: str(Path(values[name]).resolve()) for name in PATH_FIELDS
                         if values.get(name) is not None}}


@dataclass(frozen=True)
class BatchRun:
    name: str
    config: RunConfig

    @property
    def finished(self) -> bool:
        return (Path(self.config.out_dir) / "metrics.json").is_file()

    def changed_settings(self) -> dict[str, tuple[Any, Any]]:
        """Settings where the finished run in ``out_dir`` differs from this batch's: field ->
        (trained with, asked for). Fields the saved run lacks (added to segdec later) and fields
        left to derive from the data (None here) are not compared."""
        saved_path = Path(self.config.out_dir) / "config.yaml"
        if not saved_path.is_file():
            return {}
        saved = yaml.safe_load(saved_path.read_text()) or {}
        # "data" and "/abs/path/data" are one folder: compared resolved, as resuming does.
        resolved = _resolved_paths(self.config.to_dict())
        return self.config.replace(**{name: resolved[name] for name in PATH_FIELDS}).differences(
            _resolved_paths(saved))

    @property
    def status(self) -> str:
        """``finished``, ``stale`` (finished with other settings) or ``to run``."""
        if not self.finished:
            return "to run"
        return "stale" if self.changed_settings() else "finished"

    def stale_message(self) -> str:
        changes = ", ".join(f"{name} {old!r} -> {new!r}"
                            for name, (old, new) in self.changed_settings().items())
        return (f"{self.config.out_dir} holds a finished run with other settings ({changes}); "
                "move or delete that folder to train it anew, or restore the batch file's "
                "settings")

    def parameters(self) -> dict[str, Any]:
        """Every run-configuration field, explicitly, and ``resume`` to continue a killed run."""
        return {**self.config.to_dict(), "resume": True}


@dataclass(frozen=True)
class Report:
    name: str  # the executed copy is out/<batch>/<name>.ipynb
    notebook: Path
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Batch:
    name: str
    source: Path
    train_notebook: Path
    runs: list[BatchRun]
    reports: list[Report]
    synthetic: dict[str, Any] | None = None  # n_pos, n_neg, shape (H, W), seed and root (defaults')
    invalid: dict[str, str] = field(default_factory=dict)  # run name -> why it cannot run

    @property
    def out_dir(self) -> Path:
        """Where the executed notebooks go: ``out/<batch>`` beside the batch file."""
        return self.source.parent / "out" / self.name

    def select(self, patterns: Iterable[str] | None) -> list[BatchRun]:
        """The runs whose names match any of the shell-style ``patterns`` (all when none)."""
        patterns = list(patterns or [])
        if not patterns:
            return self.runs
        def matches(name: str) -> bool:
            return any(fnmatch.fnmatchcase(name, p) for p in patterns)

        chosen = [r for r in self.runs if matches(r.name)]
        if not chosen:
            unrunnable = [f"{name} cannot run: {error}" for name, error in self.invalid.items()
                          if matches(name)]
            raise ConfigError("; ".join(unrunnable) or
                              f"no run of {self.source} matches {', '.join(patterns)}")
        return chosen


@dataclass(frozen=True)
class Result:
    name: str
    status: str  # "done", "skipped" or "failed"
    seconds: float = 0.0
    error: str = ""


# ---- reading a batch file -----------------------------------------------------------------------
def load_batch(path: str | Path) -> Batch:
    """Read and check a batch file; every run's configuration is validated here, before any runs."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"batch file {path} does not exist")
    try:
        spec = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:  # a syntax error, or a tag such as !!python/object
        raise ConfigError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(spec, dict):
        raise ConfigError(f"{path}: a batch file holds a mapping (batch, defaults, runs, reports)")
    unknown = sorted(set(spec) - BATCH_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown keys {', '.join(unknown)}; "
                          f"allowed: {', '.join(sorted(BATCH_KEYS))}")
    name = str(spec.get("batch") or path.stem)
    if not NAME.match(name):
        raise ConfigError(f"{path}: batch name {name!r} may hold only letters, digits, _.+- and /")
    runs_dir = Path(spec.get("runs_dir", f"runs/{name}"))
    defaults = _mapping(spec.get("defaults"), f"{path}: defaults")
    if not isinstance(spec.get("runs") or [], list):
        raise ConfigError(f"{path}: runs is a list of runs (- name: ..., and settings)")
    runs, seen, invalid = [], set(), {}
    entries = [run for entry in spec.get("runs") or [] for run in _expand_seeds(path, entry)]
    for index, entry in enumerate(entries, start=1):
        # One bad entry is that run's failure, not the batch's: the others still run.
        try:
            run = _read_run(path, index, entry, defaults, runs_dir)
        except ValueError as err:
            run_name = entry.get("name") if isinstance(entry, dict) else None
            invalid[str(run_name or f"run {index}")] = str(err)
            continue
        if run.name in seen:
            raise ConfigError(f"{path}: run name {run.name!r} appears twice")
        seen.add(run.name)
        runs.append(run)
    _refuse_shared_out_dirs(path, runs)
    if not runs:
        reasons = "; ".join(invalid.values())
        raise ConfigError(f"{path}: the batch lists no runs" + (f" that can run: {reasons}"
                                                                if reasons else ""))
    synthetic = spec.get("synthetic")
    if synthetic is not None and (not isinstance(synthetic, dict)
                                  or set(synthetic) - SYNTHETIC_KEYS):
        raise ConfigError(f"{path}: synthetic takes only {', '.join(sorted(SYNTHETIC_KEYS))}")
    if synthetic is not None:
        synthetic = {**synthetic, "root": defaults.get("data_root", RunConfig().data_root)}
    reports: list[Report] = []
    for entry in spec.get("reports") or []:
        if not isinstance(entry, dict) or "notebook" not in entry:
            raise ConfigError(f"{path}: each report needs a notebook (optional: name, parameters)")
        notebook = Path(entry["notebook"])
        report = Report(str(entry.get("name", notebook.stem)), notebook,
                        dict(entry.get("parameters") or {}))
        if report.name in {r.name for r in reports}:
            raise ConfigError(f"{path}: two reports are named {report.name!r}; give them names")
        reports.append(report)
    return Batch(name=name, source=path, train_notebook=Path(spec.get("notebook", TRAIN_NOTEBOOK)),
                 runs=runs, reports=reports, synthetic=synthetic, invalid=invalid)


def _refuse_shared_out_dirs(path: Path, runs: list[BatchRun]) -> None:
    """One folder per run: a second run in a folder would find the first one's metrics.json,
    pass as finished and train nothing (its settings and tags never recorded)."""
    owners: dict[Path, str] = {}
    for run in runs:
        folder = Path(run.config.out_dir).resolve()
        if folder in owners:
            raise ConfigError(f"{path}: runs {owners[folder]!r} and {run.name!r} both train into "
                              f"{run.config.out_dir}; give each run its own out_dir")
        owners[folder] = run.name


def _mapping(value: Any, what: str) -> dict:
    """A part of a batch file that must be a mapping (null: empty), or a message saying so."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{what} must be a mapping (key: value lines), not "
                          f"{type(value).__name__} {value!r}")
    return value


def _expand_seeds(path: Path, entry: Any) -> list[Any]:
    """A run with ``seeds: [s0, s1, ...]`` is one run per seed: the first keeps the name, the
    others add ``-seed<s>``; each gets its ``seed`` and a ``seed`` tag."""
    if not isinstance(entry, dict) or "seeds" not in entry:
        return [entry]
    entry = dict(entry)
    seeds, name = entry.pop("seeds"), str(entry.get("name"))
    if (not isinstance(seeds, list) or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)):
        raise ConfigError(f"{path}: run {name!r}: seeds must be a list of whole numbers, "
                          f"not {seeds!r}")
    if len(set(seeds)) < len(seeds):
        raise ConfigError(f"{path}: run {name!r}: seeds {seeds} repeat a seed, which would train "
                          "the same run twice; list each seed once")
    tags = _mapping(entry.get("tags"), f"{path}: run {name!r}: tags")
    return [{**entry, "name": name if i == 0 else f"{name}-seed{seed}", "seed": seed,
             "tags": {**tags, "seed": seed}} for i, seed in enumerate(seeds)]


def _read_run(path: Path, index: int, entry: Any, defaults: dict, runs_dir: Path) -> BatchRun:
    if not isinstance(entry, dict) or "name" not in entry:
        raise ConfigError(f"{path}: run {index} needs a name (and run-configuration overrides)")
    overrides = dict(entry)
    name = str(overrides.pop("name"))
    tags = _mapping(overrides.pop("tags", None), f"{path}: run {name!r}: tags")
    if not NAME.match(name):
        raise ConfigError(f"{path}: run name {name!r} may hold only letters, digits, _.+- and /")
    values = {**defaults, **overrides}
    values.setdefault("out_dir", str(runs_dir / name))
    values["notes"] = {**(values.get("notes") or {}), **tags}
    try:
        return BatchRun(name, RunConfig.from_dict(values))
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{path}: run {name!r}: {err}") from None


def plan(runs: list[BatchRun]) -> pd.DataFrame:
    """What a batch will do: one row of the settings that tell its runs apart."""
    def count(value: int | None) -> int | str:
        return "all" if value is None else value

    return pd.DataFrame([
        {"run": r.name, "status": r.status,
         "mode": r.config.supervision, "n_all": count(r.config.n_all),
         "n_seg": count(r.config.n_seg),
         "epochs": r.config.epochs, "beta": r.config.beta, "balance": r.config.balance,
         "attention": r.config.attention, "atrous": r.config.atrous,
         "dataset": r.config.dataset, "tags": r.config.notes, "out_dir": r.config.out_dir}
        for r in runs
    ])


# ---- executing ----------------------------------------------------------------------------------
def execute_notebook(notebook: Path, output: Path, parameters: dict, name: str,
                     cwd: str) -> Result:
    """Execute one notebook in ``cwd`` with papermill; any failure becomes a ``failed`` result."""
    import papermill

    started = time.perf_counter()
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        papermill.execute_notebook(str(notebook), str(output), parameters=parameters,
                                   kernel_name=KERNEL, progress_bar=False, cwd=cwd,
                                   extra_arguments=KERNEL_ARGUMENTS)
    except Exception as err:  # one run's failure must not stop the batch
        return Result(name, "failed", time.perf_counter() - started, _describe(err))
    return Result(name, "done", time.perf_counter() - started)


def _describe(err: Exception) -> str:
    if hasattr(err, "ename"):  # papermill.PapermillExecutionError: the error raised in the cell
        return f"{err.ename}: {err.evalue}".strip()
    return f"{type(err).__name__}: {err}"


def _init_worker(gpus: Any, threads: int | None) -> None:
    """Process-pool initializer: pin this worker to one GPU (an entry of ``_worker_gpus`` from
    the queue ``gpus``) and to its share of the CPU cores.

    The notebook kernels it starts inherit the environment; without a share, every kernel's
    PyTorch would take all cores and the workers would slow each other down.
    """
    if gpus is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpus.get())
    if threads is not None:
        os.environ["OMP_NUM_THREADS"] = str(threads)


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _worker_gpus(workers: int, gpus: int) -> list[str]:
    """The ``CUDA_VISIBLE_DEVICES`` of each local worker, round robin over the ``gpus`` this
    process sees: entries of the user's own list where one is set (``2,3`` gives GPUs 2 and 3,
    not 0 and 1), else their indices."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = ([entry.strip() for entry in visible.split(",")] if visible
           else [str(index) for index in range(gpus)])
    return [ids[worker % gpus] for worker in range(workers)]


def execute_runs(batch: Batch, runs: list[BatchRun], workers: int | None = None,
                 scheduler: str | None = None,
                 log: Callable[[str], None] = logger.info) -> list[Result]:
    """Execute the unfinished ``runs``; skipped and failed runs are results too, in any order."""
    statuses = {r.name: r.status for r in runs}
    results = [Result(r.name, "skipped") for r in runs if statuses[r.name] == "finished"]
    stale = [Result(r.name, "failed", error=r.stale_message()) for r in runs
             if statuses[r.name] == "stale"]
    todo = [r for r in runs if statuses[r.name] == "to run"]
    jobs = [(batch.train_notebook.resolve(), (batch.out_dir / f"{r.name}.ipynb").resolve(),
             r.parameters(), r.name, os.getcwd()) for r in todo]
    for result in results:
        log(f"{result.name}: already finished, skipped")
    for result in stale:
        log(f"{result.name}: stale, not run: {result.error}")
    results += stale
    started, collected, run_seconds = time.perf_counter(), [], []
    parallel = 1  # runs at a time, once the workers are known

    def collect(result: Result) -> None:
        results.append(result)
        collected.append(result)
        detail = f" ({result.error})" if result.error else ""
        log(f"[{len(results)}/{len(runs)}] {result.name}: {result.status} "
            f"in {result.seconds:.0f} s{detail}")
        if result.status == "done":  # a run that failed early says nothing of the others' time
            run_seconds.append(result.seconds)
        log(batch_progress(time.perf_counter() - started, run_seconds,
                           len(jobs) - len(collected), parallel))

    def collect_future(future: Any, name: str) -> None:
        try:
            collect(future.result())
        except Exception as err:  # the worker itself died (killed, out of memory)
            collect(Result(name, "failed", error=_describe(err)))

    if not jobs:
        return results
    if scheduler:
        try:
            from dask.distributed import Client
            from dask.distributed import as_completed as dask_completed
        except ImportError:
            raise MissingExtraError(
                "--scheduler needs Dask: pip install 'segdec[cluster]'") from None

        with Client(scheduler) as client:
            parallel = max(1, len(client.scheduler_info()["workers"]))
            # Workers must see the same file system: paths are the submitting machine's.
            names = {client.submit(execute_notebook, *job, pure=False): job[3] for job in jobs}
            for future in dask_completed(list(names)):
                collect_future(future, names[future])
        return results
    gpus = _gpu_count()
    workers = parallel = workers or max(gpus, 1)
    if workers == 1:
        for job in jobs:
            collect(execute_notebook(*job))
        return results
    context = multiprocessing.get_context("spawn")
    queue = None
    if gpus > 1:
        queue = context.Queue()
        for gpu in _worker_gpus(workers, gpus):
            queue.put(gpu)
    threads = None
    if "OMP_NUM_THREADS" not in os.environ:  # GPU workers too: their loaders and kernels share
        threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                             initargs=(queue, threads)) as pool:
        names = {pool.submit(execute_notebook, *job): job[3] for job in jobs}
        for future in as_completed(names):
            collect_future(future, names[future])
    return results


def execute_reports(batch: Batch, log: Callable[[str], None] = logger.info,
                    only: list[str] | None = None) -> list[Result]:
    """Execute the reports (with ``only``, those whose names match a shell-style pattern)."""
    chosen = [r for r in batch.reports
              if not only or any(fnmatch.fnmatchcase(r.name, p) for p in only)]
    if only and not chosen:
        raise ConfigError(f"no report of {batch.source} matches {', '.join(only)}; its reports: "
                         f"{', '.join(r.name for r in batch.reports)}")
    results = []
    for item in chosen:
        output = batch.out_dir / f"{item.name}.ipynb"
        result = execute_notebook(item.notebook.resolve(), output.resolve(), item.parameters,
                                  item.name, os.getcwd())
        log(f"report {result.name}: {result.status} in {result.seconds:.0f} s"
            + (f" ({result.error})" if result.error else ""))
        results.append(result)
    return results


def prepare_synthetic(batch: Batch) -> None:
    """Write the batch's synthetic dataset into the defaults' data root unless it is there."""
    if not batch.synthetic:
        return
    from segdec.data.synthetic import DEMO_IMAGES, DEMO_SHAPE
    from segdec.demo import ensure_synthetic

    options = batch.synthetic
    ensure_synthetic(RunConfig(data_root=options["root"]), options.get("n_pos", DEMO_IMAGES),
                     options.get("n_neg", DEMO_IMAGES),
                     shape=tuple(options.get("shape", DEMO_SHAPE)), seed=options.get("seed", 0))


def run_batch(path: str | Path, only: list[str] | None = None, dry_run: bool = False,
              workers: int | None = None, scheduler: str | None = None,
              log: Callable[[str], None] = logger.info, reports_only: bool = False) -> int:
    """The ``segdec batch`` command: 0 when every run and report succeeded, else 1. With
    ``reports_only``, render the reports from the runs finished so far and train nothing (with
    ``only``, the reports whose names match)."""
    batch = load_batch(path)
    if dry_run:
        return _dry_run(batch, only, log)
    with FolderLock(batch.out_dir, "batch", what="the executed notebooks"):
        return _run_locked(batch, only, workers, scheduler, log, reports_only)


def _dry_run(batch: Batch, only: list[str] | None, log: Callable[[str], None]) -> int:
    """List the selected runs, stale ones with why, and the reports; run nothing."""
    runs = batch.select(only)
    invalid = _invalid(batch, only, log)
    log(plan(runs).to_string(index=False))
    stale = [run for run in runs if run.status == "stale"]
    for run in stale:
        log(f"{run.name}: stale: {run.stale_message()}")
    log(f"{len(runs)} runs; reports: {', '.join(str(r.notebook) for r in batch.reports)}")
    return 1 if invalid or stale else 0


def _invalid(batch: Batch, only: list[str] | None, log: Callable[[str], None]) -> list[Result]:
    """The selected entries that cannot run, as failures, each logged with why."""
    invalid = [Result(name, "failed", error=error) for name, error in batch.invalid.items()
               if not only or any(fnmatch.fnmatchcase(name, p) for p in only)]
    for result in invalid:
        log(f"{result.name}: cannot run: {result.error}")
    return invalid


def _run_locked(batch: Batch, only: list[str] | None, workers: int | None,
                scheduler: str | None, log: Callable[[str], None], reports_only: bool) -> int:
    """``run_batch`` with the batch's notebook folder locked: one batch of a file at a time."""
    if reports_only:
        done = sum(run.finished for run in batch.runs)
        log(f"reports from the {done} of {len(batch.runs)} runs finished so far")
        failed = [r for r in execute_reports(batch, log, only) if r.status == "failed"]
        for result in failed:
            log(f"FAILED {result.name}: {result.error}")
        return 1 if failed else 0
    runs = batch.select(only)
    invalid = _invalid(batch, only, log)
    started = time.perf_counter()
    prepare_synthetic(batch)
    results = invalid + execute_runs(batch, runs, workers, scheduler, log) + execute_reports(
        batch, log)
    failed = [r for r in results if r.status == "failed"]
    counts = pd.Series([r.status for r in results]).value_counts().to_dict()
    log(f"\nbatch {batch.name}: {counts} in {time.perf_counter() - started:.0f} s; "
        f"notebooks in {batch.out_dir}")
    for result in failed:
        log(f"FAILED {result.name}: {result.error}")
    return 1 if failed else 0
