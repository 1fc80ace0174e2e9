"""Issue 24's measurement: each real set's default run against the same run fitted into a time
budget (`--time-budget`), test AP and time side by side.

    python benchmarks/time_budget.py ROOT

Reads the runs below ROOT (a batch's run directories, or their records copied by `segdec
records`: config.yaml, metrics.json, timing.json), groups them by their data folder, and prints
a markdown table per set: the budget, the input size and epochs trained, the test AP, AUC and
errors, the maps' pixel AP at 1/8, the time taken (training, validations and test), the
estimate's error, and the AP's difference to the set's run without a budget of the same training
seed. Every run of a set has the same seeded split, so the differences are paired on the same
test images. Last, issue 24's two targets: a 20-minute budget within 0.02 AP of the default (the
mean difference where there are several seeds), and estimates within 20 % of the time taken.
"""
import json
import sys
from collections import defaultdict
from pathlib import Path

import yaml

TARGET_AP_GAP = 0.02
TARGET_ESTIMATE_ERROR = 0.2


def read_run(run_dir: Path) -> dict:
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    stretches = json.loads((run_dir / "timing.json").read_text())
    if len(stretches) != 1 or stretches[0]["actual_s"] is None:
        sys.exit(f"{run_dir}/timing.json: a resumed or unfinished run ({len(stretches)} "
                 "stretches); its time is not one run's, train it again from the start")
    timing = stretches[0]
    return {"name": run_dir.name, "data": config["data_root"], "seed": config["seed"],
            "budget_s": config.get("time_budget"),
            "size": f"{config['input_width']}x{config['input_height']}",
            "epochs": config["epochs"], "ap": metrics["ap"], "auc": metrics["auc"],
            "fp": metrics["fp"], "fn": metrics["fn"], "pixel_ap": metrics["pixel_ap_1_8"],
            "actual_s": timing["actual_s"],
            "estimated_s": timing["estimated_s"],
            "planned_default_s": (timing.get("budget") or {}).get("configured", {})
            .get("planned_s")}


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


runs = [read_run(metrics.parent)
        for root in map(Path, sys.argv[1:]) for metrics in sorted(root.rglob("metrics.json"))]
if not runs:
    sys.exit(f"no finished run below {', '.join(sys.argv[1:])}")
ap_gaps, errors = defaultdict(list), []
for data in sorted({run["data"] for run in runs}):
    rows = sorted((run for run in runs if run["data"] == data),
                  key=lambda run: (run["budget_s"] or float("inf"), run["seed"]))
    defaults = {run["seed"]: run for run in rows if run["budget_s"] is None}
    print(f"\n### {data}\n")
    print("| run | seed | budget | input | epochs | test AP | AUC | FP, FN | pixel AP (1/8) "
          "| time | estimate error | AP - default |")
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for run in rows:
        error = run["estimated_s"] / run["actual_s"] - 1 if run["estimated_s"] else None
        errors += [] if error is None else [abs(error)]
        default = defaults.get(run["seed"])
        gap = run["ap"] - default["ap"] if default and run is not default else None
        if gap is not None:
            ap_gaps[(data, run["budget_s"])].append(gap)
        print(f"| {run['name']} | {run['seed']} "
              f"| {minutes(run['budget_s']) if run['budget_s'] else 'none'} "
              f"| {run['size']} | {run['epochs']} | {run['ap']:.3f} | {run['auc']:.3f} "
              f"| {run['fp']}, {run['fn']} | {run['pixel_ap']:.3f} | {minutes(run['actual_s'])} "
              f"| {'-' if error is None else f'{100 * error:+.0f} %'} "
              f"| {'-' if gap is None else f'{gap:+.3f}'} |")
    planned = [run["planned_default_s"] for run in rows if run["planned_default_s"]]
    if defaults and planned:
        print(f"\nThe default run, as the budget runs planned it before training: "
              f"{', '.join(minutes(s) for s in planned)}; it took "
              f"{', '.join(minutes(run['actual_s']) for run in defaults.values())}.")
print()
for (data, budget), gaps in ap_gaps.items():
    if budget == 1200:
        mean = sum(gaps) / len(gaps)
        verdict = "meets" if mean >= -TARGET_AP_GAP else "misses"
        seeds = (f"the mean of {len(gaps)} seeds' paired differences "
                 f"({', '.join(f'{gap:+.3f}' for gap in gaps)})" if len(gaps) > 1 else "one seed")
        print(f"- {data}: the 20 min budget is {mean:+.3f} AP from the default, {seeds} "
              f"({verdict} the target of {TARGET_AP_GAP}).")
within = sum(error <= TARGET_ESTIMATE_ERROR for error in errors)
print(f"- Estimates: {within} of {len(errors)} within {100 * TARGET_ESTIMATE_ERROR:.0f} % of "
      "the time taken.")
