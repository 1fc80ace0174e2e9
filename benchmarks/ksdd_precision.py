"""KolektorSDD accuracy of runs trained on another numerical path against the committed runs.

    python benchmarks/ksdd_precision.py ROOT SETTING [SETTING ...]

ROOT holds runs made by ``benchmarks/ksdd_run_wall_time.py RUN SETTING`` (``ROOT/RUN/DIR``: the
batch's configurations with only the precision or the atrous gradient path changed); each
SETTING names such a DIR (``bf16``, ``dilated-25``). Every run is set beside its committed
record in figures/ksdd/runs (fp32, space-to-batch gradient): test AP per fold, the folds joined
as Božič reports KolektorSDD, and the map's pixel AP at 1/8 resolution (mean over folds). Prints
a markdown table.
"""
import sys
from pathlib import Path

import pandas as pd

from segdec.runs import collect_runs, join_folds

ROOT, SETTINGS = Path(sys.argv[1]), sys.argv[2:]
RECORDS = Path("figures/ksdd/runs")


def finished_runs(root: Path) -> pd.DataFrame:
    runs = collect_runs(root)
    return runs[runs.finished.astype(bool)]


def setting_runs(setting: str) -> pd.DataFrame:
    """Runs under ROOT/foldK/RUN/setting, named by RUN."""
    runs = finished_runs(ROOT)
    parts = [Path(d).relative_to(ROOT).parts for d in runs.run_dir]
    runs = runs.assign(name=[p[1] for p in parts], setting=[p[-1] for p in parts])
    return runs[runs.setting == setting]


compared = {setting: setting_runs(setting) for setting in SETTINGS}
names = sorted(set().union(*(set(runs.name) for runs in compared.values())))
records = finished_runs(RECORDS)
records = records.assign(name=[Path(d).name for d in records.run_dir])
groups = {"committed (fp32, space_to_batch)": records, **compared}
rows = []
for name in names:
    for label, runs in groups.items():
        group = runs[runs.name == name]
        if group.empty:
            continue
        joined = join_folds(group).iloc[0]
        per_fold = dict(zip(group.fold.astype(int), group.ap, strict=True))
        rows.append({"run": name, "trained": label,
                     **{f"AP fold {f}": per_fold.get(f) for f in (0, 1, 2)},
                     "AP joined": joined.ap if len(group) == 3 else None,
                     "pixel AP 1/8 (fold mean)": joined.pixel_ap_1_8})
print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".4f"))
