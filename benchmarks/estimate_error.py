"""How close each run's estimate (printed before its first epoch) came to the time it took.

    python benchmarks/estimate_error.py ROOT [ROOT ...]

Reads every timing.json below the ROOTs (a run directory writes one; `segdec records` copies it
into the committed records) and prints a markdown table: the run, its estimate, the actual time
(training, validations and test) and the estimate's error, then the median absolute error and
how many runs came within 20 % (issue 24's target). A stretch without an estimate (run with
--no-estimate) or not yet finished is left out.
"""
import json
import sys
from pathlib import Path

import numpy as np

rows = []
for root in map(Path, sys.argv[1:]):
    for timing in sorted(root.rglob("timing.json")):
        for stretch in json.loads(timing.read_text()):
            if stretch.get("estimated_s") and stretch.get("actual_s"):
                rows.append((timing.parent.relative_to(root.parent).as_posix(),
                             stretch["estimated_s"], stretch["actual_s"]))
if not rows:
    sys.exit(f"no finished run with an estimate below {', '.join(sys.argv[1:])}")
print("| run | estimated (s) | actual (s) | error |")
print("| --- | ---: | ---: | ---: |")
errors = []
for run, estimated, actual in rows:
    errors.append(estimated / actual - 1)
    print(f"| {run} | {estimated:.0f} | {actual:.0f} | {100 * errors[-1]:+.0f} % |")
errors = np.abs(errors)
print(f"\n{len(rows)} runs: median absolute error {100 * np.median(errors):.0f} %, "
      f"{int((errors <= 0.2).sum())} of {len(rows)} within 20 %.")
