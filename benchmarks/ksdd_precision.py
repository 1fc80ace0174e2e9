"""KolektorSDD accuracy of runs trained under another precision against the committed fp32 runs.

    python benchmarks/ksdd_precision.py ROOT PRECISION

ROOT holds runs made by ``benchmarks/ksdd_run_wall_time.py RUN SETTING`` (``ROOT/RUN/SETTING-N``,
the batch's configurations with only the precision changed); each is set beside its committed
fp32 record in figures/ksdd/runs: test AP per fold, the folds joined as Božič reports them, and
the segmentation map's pixel AP at 1/8 resolution. Prints a markdown table.
"""
import sys
from pathlib import Path

import pandas as pd

from segdec.report import collect_runs, join_folds

ROOT, PRECISION = Path(sys.argv[1]), sys.argv[2]
RECORDS = Path("figures/ksdd/runs")


def runs_of(root: Path, names: set[str] | None = None) -> pd.DataFrame:
    runs = collect_runs(root)
    runs["name"] = [str(Path(d).relative_to(root)).split("/")[1] if root != RECORDS
                    else Path(d).name for d in runs.run_dir]
    runs = runs[runs.finished]
    return runs if names is None else runs[runs.name.isin(names)]


other = runs_of(ROOT)
fp32 = runs_of(RECORDS, set(other.name))
rows = []
for name in sorted(set(other.name)):
    for precision, runs in (("fp32", fp32), (PRECISION, other)):
        group = runs[runs.name == name]
        joined = join_folds(group).iloc[0]
        per_fold = dict(zip(group.fold.astype(int), group.ap, strict=True))
        rows.append({"run": name, "precision": precision,
                     **{f"AP fold {f}": per_fold.get(f) for f in (0, 1, 2)},
                     "AP joined": joined.ap if len(group) == 3 else None,
                     "pixel AP 1/8 (fold mean)": joined.pixel_ap_1_8})
print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".4f"))
