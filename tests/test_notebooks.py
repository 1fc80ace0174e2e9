"""The committed notebooks (and segdec.companion): clean, parameterised, and executable by
papermill."""

from __future__ import annotations

import ast
import dataclasses
import json
import zipfile
from pathlib import Path

import nbformat
import papermill
import pytest

from segdec.companion import EXECUTED
from segdec.config import RunConfig
from segdec.errors import DataError

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_the_numbered_notebooks_are_there():
    assert [p.stem[:2] for p in NOTEBOOKS] == ["00", "01", "02", "03", "04", "05", "06", "07"]


REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_with_one_parameters_cell_and_outputs_only_for_the_companion(path):
    """The companion's notebooks and its examples (segdec.companion.EXECUTED) carry every output
    of an error-free execution (a reader sees the results); the others are committed clean."""
    book = nbformat.read(path, as_version=4)
    nbformat.validate(book)
    code = [c for c in book.cells if c.cell_type == "code"
            and "injected-parameters" not in c.metadata.get("tags", [])]
    if path.relative_to(REPO).as_posix() in EXECUTED:
        assert all(c.execution_count for c in code)
        assert not [o for c in code for o in c.outputs if o.output_type == "error"]
        assert any(c.outputs for c in code)
    else:
        assert all(not c.outputs and c.execution_count is None for c in code)
    tagged = [c for c in book.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code"
    assert book.metadata.kernelspec.name == "python3"


def _markdown_outputs(name: str) -> str:
    book = nbformat.read(REPO / "notebooks" / name, as_version=4)
    return "\n".join(o["data"]["text/markdown"] for c in book.cells if c.cell_type == "code"
                     for o in c.outputs if "text/markdown" in o.get("data", {}))


def test_the_committed_companion_says_what_the_committed_records_show():
    """The generated explanations in the executed notebooks are today's: re-rendered from the
    records they equal what the notebooks carry (a stale notebook fails here)."""
    from segdec import figures, narrative, tables
    from segdec.runs import RELEASED, collect_runs

    runs = collect_runs(REPO / "figures" / "ksdd" / "runs")
    ablation = _markdown_outputs("06_ablation.ipynb")
    for folds in ([0, 1, 2], [0]):
        assert narrative.describe_table6(tables.table6(runs, "ksdd", folds=folds)) in ablation
    assert narrative.describe_pairs(tables.paired_comparisons(runs)) in ablation
    missed = collect_runs(REPO / "figures" / "ksdd" / "diagnosis" / "missed" / "runs")
    assert narrative.describe_variants(tables.variant_table(missed)) in ablation
    curve = narrative.describe_pixel_label_curve(tables.pixel_label_table(runs))
    assert curve in _markdown_outputs("04_figure8.ipynb")
    assert curve in _markdown_outputs("03_table5.ipynb")
    figure9 = narrative.describe_figure9(figures.figure9_runs(runs, "FS", RELEASED), "FS")
    assert figure9 in _markdown_outputs("05_figure9.ipynb")
    # MS: Božič's released network collapsed in every MS run whose maps the records keep, so
    # the notebook says why it draws none rather than show a failure as his network.
    with pytest.raises(DataError, match="no MS runs of 'none \\(released\\)' and 'A\\+T\\+W' that"):
        figures.figure9_runs(runs, "MS", RELEASED)
    assert "Not drawn: no MS runs of 'none (released)'" in _markdown_outputs("05_figure9.ipynb")


def test_train_notebook_takes_every_run_configuration_field_with_its_default():
    """Notebook 02's parameters cell is RunConfig's defaults, written out: tested equal."""
    parameters = papermill.inspect_notebook(str(NOTEBOOKS[2]))
    assert set(parameters) == set(RunConfig.field_types()) | {"resume", "record"}
    for f in dataclasses.fields(RunConfig):
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        assert ast.literal_eval(parameters[f.name]["default"]) == default, f.name


@pytest.mark.parametrize("batch_file", sorted((REPO / "papermill_runs").glob("*.yaml")),
                         ids=lambda p: p.stem)
def test_batch_reports_pass_only_parameters_their_notebooks_take(batch_file):
    """A misspelt parameter would only be warned about by papermill and then ignored."""
    from segdec.batch import load_batch

    for report in load_batch(batch_file).reports:
        book = nbformat.read(REPO / report.notebook, as_version=4)
        cell = next(c for c in book.cells if "parameters" in c.metadata.get("tags", []))
        taken = {target.id for node in ast.parse(cell.source).body
                 if isinstance(node, ast.Assign) for target in node.targets}
        assert set(report.parameters) <= taken, (report.name, set(report.parameters) - taken)


def test_download_notebook_extracts_a_local_archive(tmp_path):
    """Notebook 01 executed once, on a two-image archive: download_severstal itself (archives,
    verification, Kaggle) is tested in test_download.py; here, that the notebook calls it."""
    from segdec.data.synthetic import synthesize

    source = synthesize(tmp_path / "source", 1, 1, shape=(64, 64))
    archive = tmp_path / "severstal.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for file in sorted(source.rglob("*")):
            if file.is_file():
                zipped.write(file, file.relative_to(source).as_posix())
    executed = tmp_path / "01.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS[1]), str(executed), kernel_name="python3", progress_bar=False,
        parameters={"dest": str(tmp_path / "severstal"), "archive": str(archive),
                    "expected_images": 2, "expected_shape": [64, 64]})
    printed = "".join(o.get("text", "") for c in nbformat.read(executed, as_version=4).cells
                      if c.cell_type == "code" for o in c.outputs)
    assert f"2 images, 1 with defects, in {tmp_path / 'severstal'}" in printed
    assert f"verified 2 images (1 defective) in {tmp_path / 'severstal'}" in printed  # logged
    assert (tmp_path / "severstal" / ".segdec-verified.json").is_file()


@pytest.mark.slow
def test_concepts_notebook_trains_its_networks_once_and_shows_what_they_do(tmp_path):
    def execute(name: str) -> list:
        papermill.execute_notebook(
            str(NOTEBOOKS[0]), str(tmp_path / name), kernel_name="python3", progress_bar=False,
            parameters={"data_root": "synthetic", "runs_dir": str(tmp_path / "runs"),
                        "input_width": 64, "input_height": 64, "epochs": 2,
                        "figures_dir": str(tmp_path / "figures")})
        return [o for c in nbformat.read(tmp_path / name, as_version=4).cells
                if c.cell_type == "code" for o in c.outputs]

    outputs = execute("first.ipynb")
    texts = "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "")
                    + o.get("data", {}).get("text/markdown", "") for o in outputs)
    assert texts.count("epoch 2/2: segmentation loss") == 4  # four networks trained
    assert "SYNTHETIC DATA (data_root is 'synthetic'): these networks learn made-up" in texts
    assert "Both networks see 216 x 216 pixels" in texts and "15x15" in texts
    assert ("2 stacked 3x3 dilation-2 kernels reach 25 of the 81 pixels they span; with a 2x2 "
            "max-pool between each two, 196 of 196.") in texts
    assert "atrous only (T): 90% of the gradient within" in texts
    assert "**Measured on the 30 test images.** Each channel's squeezed mean varies" in texts
    assert "Holding every gate at its mean over the test images moves the test pixel AP" in texts
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 8
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == [
        "balance_schedules.png", "effective_receptive_field.png", "kernel_taps.png",
        "loss_curves.png", "reachable_pixels.png", "se_channels.png", "se_gates.png",
        "se_off.png"]
    again = execute("second.ipynb")
    assert "epoch 1/2" not in "".join(o.get("text", "") for o in again)  # loaded, not retrained


def test_the_readme_opens_with_the_blocks_of_the_committed_records():
    from segdec.companion import readme_with_blocks

    readme = (REPO / "README.md").read_text()
    assert readme_with_blocks(readme, REPO) == readme
    assert readme.index("## Results") < readme.index("## Set-up: two commands")


BUDGET_SETS = {"dagm1": "DAGM Class1", "ksdd": "KolektorSDD", "tiles": "KolektorSDD in bands"}


def test_the_budget_table_is_the_committed_budget_records():
    """Each row of the time-budget table of docs/own-images.md, as the records in
    figures/own_images/budget_runs give it: a hand-typed number that drifted would be a silently
    wrong result in the guide's own words."""
    import re

    import yaml

    readme = (REPO / "docs" / "own-images.md").read_text()
    runs = sorted((REPO / "figures" / "own_images" / "budget_runs").glob("*/metrics.json"))
    assert {run.parent.name for run in runs} >= {f"{s}-{b}" for s in BUDGET_SETS
                                                  for b in ("10m", "20m", "default")}
    for run in (metrics.parent for metrics in runs):
        data, kind, seed = re.fullmatch(r"(\w+)-(10m|20m|default)(?:-seed(\d+))?",
                                        run.name).groups()
        config = yaml.safe_load((run / "config.yaml").read_text())
        metrics = json.loads((run / "metrics.json").read_text())
        (timing,) = json.loads((run / "timing.json").read_text())
        error = round(100 * (timing["estimated_s"] / timing["actual_s"] - 1))
        label = "default" if kind == "default" else f"`--time-budget {kind}`"
        row = (f"| {BUDGET_SETS[data]} | {label}{f', seed {seed}' if seed else ''} | "
               f"{config['input_width']}x{config['input_height']}, {config['epochs']} | "
               f"{metrics['ap']:.3f} | {metrics['fp']}, {metrics['fn']} | "
               f"{metrics['pixel_ap_1_8']:.3f} | {timing['actual_s'] / 60:.1f} min | "
               f"{timing['estimated_s'] / 60:.1f} min ({error:+d} %) |")
        assert row in readme, row


def test_links_and_citations_resolve_in_a_clone():
    """Every relative link of the READMEs points at a file of the repository, and nothing cites
    the paper brief that lives outside it (PAPER.md) instead of docs/paper.md."""
    import re

    readmes = [REPO / "README.md", *sorted((REPO / "figures").rglob("README.md")),
               REPO / "benchmarks" / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    for readme in readmes:
        text = readme.read_text()
        targets = [*re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text),
                   *re.findall(r'<img src="([^"]+)"', text)]
        for target in targets:
            if not target.startswith(("http://", "https://")):
                assert (readme.parent / target).exists(), f"{readme}: link to {target}"
    folders = ("segdec", "tests", "notebooks", "figures", "docs", "papermill_runs", "benchmarks")
    texts = [REPO / "README.md", *(p for folder in folders for p in (REPO / folder).rglob("*")
                                   if p.suffix in (".py", ".md", ".yaml", ".ipynb"))]
    assert (REPO / "docs" / "paper.md").is_file()
    citing = [p.relative_to(REPO).as_posix() for p in texts
              if "PAPER.md" in p.read_text(errors="ignore") and p.name != "test_notebooks.py"]
    assert citing == []


def test_committed_notebooks_render_on_the_repository_pages():
    """What a visitor sees on the hosting site: no widget state or frozen widget views, no path
    of the machine that executed them, and every saved report figure shown exactly once."""
    import re

    machine_path = re.compile(r"(?<![\w.])/(?:work|home|root|Users|tmp)/")
    for path in NOTEBOOKS:
        book = nbformat.read(path, as_version=4)
        assert "widgets" not in book.metadata, path.name
        assert not {"input_path", "output_path"} & set(book.metadata.get("papermill", {}))
        outputs = [o for c in book.cells if c.cell_type == "code" for o in c.outputs]
        assert not [o for o in outputs if "application/vnd.jupyter.widget-view+json"
                    in o.get("data", {})], path.name
        texts = [str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                 + str(o.get("data", {}).get("text/markdown", "")) for o in outputs]
        assert not [t for t in texts if machine_path.search(t)], path.name
    for name in ("04_figure8.ipynb", "05_figure9.ipynb"):
        book = nbformat.read(REPO / "notebooks" / name, as_version=4)
        images = [o for c in book.cells if c.cell_type == "code" for o in c.outputs
                  if "image/png" in o.get("data", {})]
        assert len(images) == 1, name
