"""segdec.batch: batch files and ``segdec batch``: the paper's settings, skipping, failure
isolation, Dask."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import yaml

from segdec import paper
from segdec.batch import execute_runs, load_batch, run_batch
from segdec.cli import main
from segdec.recipes import SEVERSTAL_SCHEDULE

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"


def test_table5_dry_run_lists_the_26_paper_settings(capsys):
    assert main(["batch", str(REPO / "papermill_runs" / "table5.yaml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "26 runs" in out and out.count("to run") + out.count("finished") == 26
    runs = load_batch(REPO / "papermill_runs" / "table5.yaml").runs
    listed = [(r.config.supervision, r.config.n_all, r.config.n_seg, r.config.epochs,
               r.config.beta, r.config.notes["table5_row"]) for r in runs]
    expected = [(row.mode, row.n_all, row.l_p, row.epochs,
                 SEVERSTAL_SCHEDULE[row.n_all][1], row.row)
                for row in paper.table5().itertuples()]
    assert listed == expected
    first = runs[0].config
    assert (first.learning_rate, first.momentum, first.batch_size, first.delta) == (
        0.1, 0.0, 10, 0.1)
    assert all(r.config.attention and r.config.atrous and r.config.balance == "decay"
               for r in runs)
    assert {r.config.splits for r in runs} == {"bozic"}  # compared with published numbers


def test_table6_batch_has_the_seven_switches_per_mode_and_dataset():
    batch = load_batch(REPO / "papermill_runs" / "table6.yaml")
    assert len(batch.runs) == 7 * 3 * len(paper.TABLE6_DATASETS)
    for dataset in paper.TABLE6_DATASETS:
        runs = [r.config for r in batch.runs if r.config.dataset == dataset]
        switches = {(c.supervision, c.attention, c.atrous, c.balance == "decay") for c in runs}
        assert len(switches) == 21
        assert {c.balance for c in runs} == {"decay", "linear"}
        assert all(c.epochs == paper.ABLATION_EPOCHS for c in runs)
    severstal = [r.config for r in batch.runs if r.config.dataset == "severstal"]
    assert {c.n_all for c in severstal} == {paper.ABLATION_N_ALL}
    assert {c.n_seg for c in severstal} == {0, paper.ABLATION_L_P, paper.ABLATION_N_ALL}
    ksdd = [r.config for r in batch.runs if r.config.dataset == "ksdd"]
    assert {c.splits for c in severstal + ksdd} == {"bozic"}  # Božič's images, as published
    assert {(c.fold, c.n_val) for c in ksdd} == {(0, 0)} and {c.n_seg for c in ksdd} == {0, 5, None}
    assert len({r.name for r in batch.reports}) == len(batch.reports)


def test_demo_batch_reads():
    batch = load_batch(REPO / "papermill_runs" / "demo.yaml")
    assert batch.synthetic and len(batch.reports) == 4
    assert {r.config.supervision for r in batch.runs} == {"WS", "MS", "FS"}
    # Quick on an AVX2 CPU too: 64x64 images, and Božič's dense network (5x the paper's step
    # cost) only where Figure 9 and Table 6's baseline row need it.
    assert batch.synthetic["shape"] == [64, 64] and len(batch.runs) == 10
    assert [r.name for r in batch.runs if not r.config.atrous] == ["FS-none", "MS-none"]
    # Synthetic results never land beside real ones, and every title says what they are.
    assert [r.parameters["out_dir"] for r in batch.reports] == ["figures/demo"] * 4
    assert {r.parameters["title_note"] for r in batch.reports} == {"synthetic smoke test"}


def write_batch(path: Path, runs: list[dict], reports: list[dict] | None = None,
                **defaults) -> Path:
    spec = {"batch": "t", "notebook": str(NOTEBOOKS / "02_train.ipynb"),
            "runs_dir": str(path.parent / "runs"), "defaults": defaults, "runs": runs,
            "reports": reports or []}
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.parametrize(("spec", "message"), [
    ({"runs": [{"name": "a"}], "extra": 1}, "unknown keys extra"),
    ({"runs": [{"name": "a"}, {"name": "a"}]}, "appears twice"),
    ({"runs": [{"name": "../a"}]}, "may hold only"),
    ({"runs": [{"name": "a", "n_seg": -1}]}, "run 'a': n_seg=-1"),
    ({"runs": [{"name": "a", "nonsense": 1}]}, "run 'a': unknown run-configuration keys"),
    ({"runs": []}, "lists no runs"),
    ({"runs": [{"n_all": 3}]}, "run 1 needs a name"),
    ({"runs": [{"name": "a"}], "defaults": ["epochs", 2]}, r"defaults must be a mapping"),
    ({"runs": [{"name": "a", "tags": ["x"]}]}, r"run 'a': tags must be a mapping"),
    ({"runs": [{"name": "a", "seeds": [0, 1], "tags": ["x"]}]}, "run 'a': tags must be a"),
    ({"runs": [{"name": "a", "seeds": [0, 0]}]}, r"seeds \[0, 0\] repeat a seed"),
    ({"runs": {"name": "a"}}, "runs is a list of runs"),
])
def test_bad_batch_files_name_the_problem(tmp_path, spec, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(ValueError, match=message):
        load_batch(path)


def test_a_rejected_run_keeps_the_batch_name_and_its_folders(tmp_path):
    """A rejected run's name must not become the batch's (its notebooks would land there)."""
    batch = load_batch(write_batch(tmp_path / "b.yaml", [
        {"name": "ok"}, {"name": "../../ESCAPED", "n_all": 3}, {"name": "bad", "n_seg": -1}]))
    assert batch.name == "t" and batch.out_dir == tmp_path / "out" / "t"
    assert sorted(batch.invalid) == ["../../ESCAPED", "bad"]


def test_seeds_expand_a_run_into_one_per_seed(tmp_path):
    batch = load_batch(write_batch(tmp_path / "b.yaml", [
        {"name": "f0/MS5", "seeds": [0, 4], "n_seg": 2, "tags": {"method": "x"}}],
        split_seed=0))
    assert [(r.name, r.config.seed, r.config.effective_split_seed, r.config.notes)
            for r in batch.runs] == [("f0/MS5", 0, 0, {"method": "x", "seed": 0}),
                                     ("f0/MS5-seed4", 4, 0, {"method": "x", "seed": 4})]
    with pytest.raises(ValueError, match="seeds must be a list of whole numbers"):
        load_batch(write_batch(tmp_path / "c.yaml", [{"name": "a", "seeds": 2}]))


def test_a_finished_run_with_other_settings_is_stale_not_skipped(tmp_path, caplog):
    """Editing a finished run's settings in the batch file must not pass as 'finished'."""
    path = write_batch(tmp_path / "b.yaml", [{"name": "a"}, {"name": "b"}], epochs=3)
    for run in load_batch(path).runs:
        Path(run.config.out_dir).mkdir(parents=True)
        run.config.save(Path(run.config.out_dir) / "config.yaml")
        (Path(run.config.out_dir) / "metrics.json").write_text("{}")
    edited = write_batch(tmp_path / "b.yaml", [{"name": "a", "learning_rate": 0.5},
                                               {"name": "b", "notes": {"new": "tag"},
                                                "estimate": False}], epochs=4)
    runs = {r.name: r for r in load_batch(edited).runs}
    # beta follows the epochs (theta ends where Table 4's pair ends it)
    changed = {"epochs": (3, 4), "beta": (0.3606, 0.2578)}
    assert runs["a"].changed_settings() == {**changed, "learning_rate": (0.1, 0.5)}
    assert runs["b"].changed_settings() == changed  # the estimate changes no result
    caplog.set_level(logging.INFO, logger="segdec")
    assert run_batch(edited, dry_run=True) == 1
    assert any(line.startswith("a: stale:") for line in caplog.messages)
    caplog.clear()
    assert run_batch(edited) == 1
    out = "\n".join(caplog.messages)
    assert "b: stale, not run" in out and "move or delete that folder" in out
    assert "already finished" not in out
    assert yaml.safe_load((tmp_path / "runs" / "a" / "config.yaml").read_text())["epochs"] == 3


def test_only_selects_by_pattern(tmp_path):
    batch = load_batch(write_batch(tmp_path / "b.yaml", [{"name": "ws-1"}, {"name": "fs-1"}]))
    assert [r.name for r in batch.select(["fs-*"])] == ["fs-1"]
    assert [r.config.out_dir for r in batch.select(None)] == [
        str(tmp_path / "runs" / "ws-1"), str(tmp_path / "runs" / "fs-1")]
    assert batch.out_dir == tmp_path / "out" / "t"
    with pytest.raises(ValueError, match="no run"):
        batch.select(["ms-*"])


# ---- executing notebooks (slow: each run starts a Jupyter kernel) -----------------------------
TINY = dict(n_all=4, n_seg=None, epochs=1, n_test=6, n_val=4, n_train_negatives=4,
            learning_rate=0.01, momentum=0.9, n_saved_maps=4, num_workers=0)


def report(notebook: str, runs: Path, out: Path, **parameters) -> dict:
    return {"notebook": str(NOTEBOOKS / notebook),
            "parameters": {"runs_dir": str(runs), "out_dir": str(out), **parameters}}


@pytest.mark.slow
def test_batch_isolates_a_failing_run_and_renders_the_reports(tmp_path, tiny_severstal, caplog):
    caplog.set_level(logging.INFO, logger="segdec")
    runs, figures = tmp_path / "runs", tmp_path / "figures"
    path = write_batch(
        tmp_path / "b.yaml",
        [{"name": "fs-atw", "tags": {"table5": True}},
         {"name": "broken", "data_root": str(tmp_path / "nowhere")},
         {"name": "fs-none", "attention": False, "atrous": False, "balance": "linear"}],
        # analogue_runs_dir None: the notebook's default renders the committed KolektorSDD
        # analogue into figures/ksdd, which a test must not rewrite.
        [report("03_table5.ipynb", runs, figures, tag="table5", compare_with_paper=False,
                analogue_runs_dir=None),
         report("04_figure8.ipynb", runs, figures, compare_with_paper=True),
         report("05_figure9.ipynb", runs, figures, mode="FS", n_images=2,
                baseline="none"),
         report("06_ablation.ipynb", runs, figures, compare_with_paper=True)],
        data_root=str(tiny_severstal), **TINY)
    assert run_batch(path, workers=2) == 1  # two local processes
    assert any(line.startswith("FAILED broken: DataError") for line in caplog.messages)
    for name in ("fs-atw", "fs-none"):
        assert (runs / name / "metrics.json").is_file()
        assert (tmp_path / "out" / "t" / f"{name}.ipynb").is_file()
    assert (tmp_path / "out" / "t" / "broken.ipynb").is_file()  # kept, with the traceback
    produced = sorted(p.name for p in figures.iterdir())
    assert produced == ["figure8.pdf", "figure8.png", "figure9_FS.pdf", "figure9_FS.png",
                        "table5.csv", "table5.md", "table6_severstal.csv", "table6_severstal.md"]
    # Reports alone, from the runs finished so far: nothing trains, the figures come again.
    shutil.rmtree(figures)
    assert run_batch(path, reports_only=True) == 0
    assert "reports from the 2 of 3 runs finished so far" in caplog.messages
    assert sorted(p.name for p in figures.iterdir()) == produced
    assert not (runs / "broken" / "metrics.json").exists()


@pytest.mark.slow
def test_a_killed_batch_restarted_runs_only_what_is_missing(tmp_path, tiny_severstal, caplog):
    path = write_batch(tmp_path / "b.yaml", [{"name": "first"}, {"name": "second"}],
                       data_root=str(tiny_severstal), **{**TINY, "epochs": 2})
    command = [sys.executable, "-m", "segdec", "batch", str(path)]
    batch = subprocess.Popen(command, cwd=REPO, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = tmp_path / "runs" / "first" / "metrics.json"
    deadline = time.monotonic() + 300
    while not first.is_file() and batch.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    os.killpg(batch.pid, signal.SIGKILL)  # the batch and its kernel, mid-way
    batch.wait()
    assert first.is_file() and not (tmp_path / "runs" / "second" / "metrics.json").is_file()
    finished_at = first.stat().st_mtime
    caplog.set_level(logging.INFO, logger="segdec")
    assert run_batch(path) == 0
    assert "first: already finished, skipped" in caplog.messages
    assert any(line.startswith("[2/2] second: done") for line in caplog.messages)
    assert first.stat().st_mtime == finished_at


@pytest.mark.slow
def test_batch_runs_on_a_dask_cluster_on_loopback(tmp_path, tiny_severstal):
    from dask.distributed import LocalCluster

    path = write_batch(tmp_path / "b.yaml", [{"name": "remote"}], data_root=str(tiny_severstal),
                       **TINY)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://",
                      host="127.0.0.1", dashboard_address=None) as cluster:
        assert main(["batch", str(path), "--scheduler", cluster.scheduler_address]) == 0
    assert (tmp_path / "runs" / "remote" / "metrics.json").is_file()


@pytest.mark.parametrize(("cores", "omp", "threads"), [(8, None, 2), (2, None, 1), (8, "5", None)])
def test_cpu_workers_share_the_cores(tmp_path, monkeypatch, cores, omp, threads):
    """Each of 3 local workers' kernels gets cpu_count // 3 threads (at least 1), not all of the
    cores; an OMP_NUM_THREADS already set is left to the workers as it is."""
    from segdec import batch as batch_module

    started = []

    class Pool:  # records how the pool would start its workers, and starts none
        def __init__(self, workers, mp_context, initializer, initargs):
            started.append((workers, initargs))
            raise InterruptedError

    monkeypatch.setattr(batch_module, "ProcessPoolExecutor", Pool)
    monkeypatch.setattr(batch_module, "_gpu_count", lambda: 0)
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", omp or "")  # so that the worker's setting is undone
    if omp is None:
        monkeypatch.delenv("OMP_NUM_THREADS")
    batch = load_batch(write_batch(tmp_path / "b.yaml", [{"name": "a"}, {"name": "b"}]))
    with pytest.raises(InterruptedError):
        execute_runs(batch, batch.select(None), workers=3, log=lambda line: None)
    assert started == [(3, (None, threads))]
    batch_module._init_worker(*started[0][1])  # what each worker runs first
    assert os.environ.get("OMP_NUM_THREADS") == (omp or str(threads))
    assert "CUDA_VISIBLE_DEVICES" not in os.environ


@pytest.mark.parametrize(("visible", "gpus"), [("2,3", ["2", "3", "2"]),
                                               ("GPU-aa, GPU-bb", ["GPU-aa", "GPU-bb", "GPU-aa"]),
                                               (None, ["0", "1", "0"])])
def test_local_gpu_workers_take_the_gpus_the_user_made_visible(tmp_path, monkeypatch, visible,
                                                                gpus):
    """Worker i gets the i-th visible GPU (round robin) and its share of the cores, as given to
    the process pool; the worker index itself would name GPUs 0 and 1 under ``2,3``."""
    from concurrent.futures import Future

    from segdec import batch as batches

    started = {}

    class Pool:
        def __init__(self, workers, mp_context, initializer, initargs):
            started.update(workers=workers, initializer=initializer, initargs=initargs)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def submit(self, function, *job):
            future = Future()
            future.set_result(batches.Result(job[3], "done"))
            return future

    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(batches, "_gpu_count", lambda: 2)
    monkeypatch.setattr(batches, "ProcessPoolExecutor", Pool)
    monkeypatch.setattr(os, "cpu_count", lambda: 12)
    path = write_batch(tmp_path / "b.yaml", [{"name": n} for n in "abc"], **TINY)
    loaded = load_batch(path)
    results = batches.execute_runs(loaded, loaded.runs, workers=3, log=lambda line: None)
    assert sorted(r.name for r in results) == ["a", "b", "c"] and started["workers"] == 3
    queue, threads = started["initargs"]
    assert [queue.get(timeout=5) for _ in range(3)] == gpus and threads == 4
    queue.put(gpus[1])
    started["initializer"](queue, threads)  # what the second worker process does
    assert os.environ["CUDA_VISIBLE_DEVICES"] == gpus[1] and os.environ["OMP_NUM_THREADS"] == "4"


def test_ksdd_companion_batch_reads():
    batch = load_batch(REPO / "papermill_runs" / "ksdd.yaml")
    configs = [r.config for r in batch.runs]
    assert {c.dataset for c in configs} == {"ksdd"}
    assert {c.supervision for c in configs} == {"WS", "MS", "FS"}
    assert {(c.attention, c.atrous, c.balance == "decay") for c in configs} == {
        (a, t, w) for a in (False, True) for t in (False, True) for w in (False, True)
        if (a, t, w) != (False, False, True)  # W alone is not a Table 6 row
    }
    # Table 6's KSDD column: 7 A/T/W rows and the released network on fold 0, in 3 modes; the
    # paper's method (with and without gradient adjustment) and the released network on every
    # fold with 3 seeds; Figure 8's L_p = 10, 15, 20 without gradient adjustment, 3 seeds.
    by_fold = {fold: [c for c in configs if c.fold == fold] for fold in range(3)}
    assert [len(by_fold[fold]) for fold in range(3)] == [6 * 3 + 3 * 3 * 3 + 3 * 3, 36, 36]
    assert sorted((c.architecture, c.gradient_adjustment, c.seed) for c in by_fold[1]) == sorted(
        (arch, ga, seed) for arch, ga, n in (("described", True, 3), ("described", False, 6),
                                             ("released", True, 3))
        for seed in (0, 1, 2) for _ in range(n))
    assert sorted(-1 if c.n_seg is None else c.n_seg for c in by_fold[2]
                  if not c.gradient_adjustment) == sorted([-1, 0, 5, 10, 15, 20] * 3)
    assert {(c.seed, c.effective_split_seed) for c in configs} == {(0, 0), (1, 0), (2, 0)}
    seeded = {r.name: r.config.seed for r in batch.runs if r.name.startswith("fold2/WS-released")}
    assert seeded == {"fold2/WS-released": 0, "fold2/WS-released-seed1": 1,
                      "fold2/WS-released-seed2": 2}
    assert {c.seg_to_decision for c in configs if c.architecture == "released"} == {"logit"}
    assert {c.seg_to_decision for c in configs if c.architecture == "described"} == {
        "probability"}
    assert {c.n_val for c in configs} == {0} and {c.batch_size for c in configs} == {1}


@pytest.mark.parametrize(("text", "message"), [
    ("runs: [{name: a}\n", "is not valid YAML: while parsing a flow sequence"),
    ("runs: !!python/object:pathlib.Path {}\n", "is not valid YAML: could not determine a "
                                                 "constructor for the tag"),
])
def test_a_batch_file_that_is_not_yaml_is_one_line(tmp_path, capsys, text, message):
    path = tmp_path / "b.yaml"
    path.write_text(text)
    assert main(["batch", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"segdec batch: error: {path} {message}")


def test_only_naming_a_run_that_cannot_run_says_why(tmp_path, capsys):
    path = write_batch(tmp_path / "b.yaml", [{"name": "good"}, {"name": "bad", "delta": -1}])
    assert main(["batch", str(path), "--only", "bad", "--dry-run"]) == 2
    assert capsys.readouterr().err == (f"segdec batch: error: bad cannot run: {path}: run 'bad': "
                                       "delta=-1.0 must be >= 0\n")
    assert main(["batch", str(path), "--only", "nothing", "--dry-run"]) == 2
    assert f"no run of {path} matches nothing" in capsys.readouterr().err


@pytest.mark.parametrize("workers", ["0", "-1"])
def test_workers_below_one_are_refused(tmp_path, capsys, workers):
    with pytest.raises(SystemExit) as exited:
        main(["batch", str(tmp_path / "b.yaml"), "--workers", workers])
    assert exited.value.code == 2
    assert f"argument --workers: {workers} must be at least 1" in capsys.readouterr().err


@pytest.mark.slow
def test_kernel_logs_stay_out_of_the_output_and_a_failing_notebook_still_says_why(tmp_path,
                                                                                     capfd, caplog):
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('out_dir = ""', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell('if out_dir.endswith("bad"):\n    raise ValueError("bad run")')])
    notebook.metadata.kernelspec = {"name": "python3", "display_name": "Python 3",
                                    "language": "python"}
    nbformat.write(notebook, tmp_path / "tiny.ipynb")
    path = write_batch(tmp_path / "b.yaml", [{"name": "good"}, {"name": "bad"}])
    spec = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**spec, "notebook": str(tmp_path / "tiny.ipynb")}))
    caplog.set_level(logging.INFO, logger="segdec")
    assert run_batch(path, workers=1) == 1
    out, err = capfd.readouterr()
    assert any(line.startswith("[1/2] good: done") for line in caplog.messages)
    assert "FAILED bad: ValueError: bad run" in caplog.messages
    assert "[IPKernelApp]" not in out + err


def test_each_finished_run_reports_the_batch_s_elapsed_and_remaining_time(tmp_path, monkeypatch):
    """Runs of 60, 80 and 75 s (a fake clock, one worker): the time left is the runs remaining
    x the median of the finished ones; a failed run is not a run time to go by."""
    import types

    from segdec import batch as batch_module

    clock = [0.0]
    outcome = {"a": ("done", 60.0), "b": ("failed", 5.0), "c": ("done", 80.0), "d": ("done", 75.0)}

    def execute(notebook, output, parameters, name, cwd):
        status, seconds = outcome[name]
        clock[0] += seconds
        return batch_module.Result(name, status, seconds)

    monkeypatch.setattr(batch_module, "execute_notebook", execute)
    monkeypatch.setattr(batch_module, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    batch = load_batch(write_batch(tmp_path / "b.yaml", [{"name": n} for n in "abcd"], **TINY))
    lines = []
    execute_runs(batch, batch.runs, workers=1, log=lines.append)
    assert lines[1::2] == [
        "batch: 60 s elapsed, ≈ 3 min left for 3 runs (1 at a time)",  # 3 x 60 s
        "batch: 65 s elapsed, ≈ 2 min left for 2 runs (1 at a time)",  # 2 x 60 s
        "batch: 2 min elapsed, ≈ 70 s left for 1 run (1 at a time)",  # median of 60 and 80 s
        "batch: 4 min elapsed",  # 220 s, nothing left
    ]


def test_one_invalid_batch_entry_fails_alone(tmp_path, caplog):
    path = tmp_path / "batch.yaml"
    path.write_text(yaml.safe_dump({
        "batch": "t", "notebook": str(NOTEBOOKS / "02_train.ipynb"),
        "runs": [{"name": "good"}, {"name": "bad", "epochs": "ten"}]}))
    batch = load_batch(path)
    assert [r.name for r in batch.runs] == ["good"] and "epochs='ten'" in batch.invalid["bad"]
    caplog.set_level(logging.INFO, logger="segdec")
    assert run_batch(path, dry_run=True) == 1
    assert f"bad: cannot run: {batch.invalid['bad']}" in caplog.messages


def test_the_paper_setting_batch_is_bozic_size_length_and_folds_with_the_recipe_that_trains():
    """Issue 33's item 4: the paper's network at Božič's 512x1408, 7x7 dilation and 50 epochs on
    his 3 folds, gradient adjustment off; FS of seed 0 on every fold first, for a CPU user."""
    batch = load_batch(REPO / "papermill_runs" / "ksdd_paper.yaml")
    configs = [r.config for r in batch.runs]
    assert len(configs) == 27
    assert {(c.input_width, c.input_height, c.dilate_masks, c.epochs, c.beta) for c in configs} == {
        (512, 1408, 7, 50, 0.018)}
    assert {(c.attention, c.atrous, c.balance, c.gradient_adjustment, c.splits, c.n_val)
            for c in configs} == {(True, True, "decay", False, "bozic", 0)}
    assert [(c.supervision, c.fold, c.seed) for c in configs[:4]] == [
        ("FS", 0, 0), ("FS", 1, 0), ("FS", 2, 0), ("MS", 0, 0)]
    assert sorted({(c.supervision, c.seed) for c in configs}) == sorted(
        (mode, seed) for mode in ("FS", "MS", "WS") for seed in (0, 1, 2))
