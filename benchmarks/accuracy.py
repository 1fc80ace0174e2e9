"""Whether the default precision keeps the AP, behind ``benchmarks/accuracy.md``.

    python benchmarks/accuracy.py [--out DIR] [--device DEVICE]

Trains a short mixed-supervision run of the demo setting (``segdec.demo.demo_config`` with
``ACCURACY_RUN``, synthetic 320x64 images, 60 defective + 60 clean), unsaturated so that a
precision loss shows in its test AP, in plain fp32 and in the default precision "auto" (where
"auto" is fp32 the two are one computation, trained once), and scores the fp32 run's checkpoint
under bf16 autocast too, to show what bf16 inference costs. Writes DIR/accuracy.md (default DIR:
benchmarks).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd
import torch

from segdec.bench import command_line
from segdec.data.synthetic import DEMO_IMAGES, DEMO_SHAPE
from segdec.demo import demo_config, ensure_synthetic
from segdec.evaluate import evaluate_run
from segdec.io import write_text
from segdec.runtime import Runtime, resolve_device, resolve_precision
from segdec.train import train

ACCURACY_IMAGES, ACCURACY_SHAPE = DEMO_IMAGES, DEMO_SHAPE  # the demo's set, (height, width)
ACCURACY_RUN = {"n_seg": 3, "epochs": 4}  # MS, short: an AP below 1 that a precision loss moves
DTYPE_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


def accuracy_check(device: torch.device, work_dir: str | Path) -> pd.DataFrame:
    """Test AP of the run in fp32, in "auto" and fp32-trained under bf16 autocast, with each
    one's distance from the fp32 AP against the tolerance 0.005."""
    base = demo_config(work_dir, device=str(device), precision="fp32",
                       out_dir=str(Path(work_dir) / "fp32"), **ACCURACY_RUN)
    ensure_synthetic(base, ACCURACY_IMAGES, ACCURACY_IMAGES, shape=ACCURACY_SHAPE)
    fp32_ap = train(base, progress=False)["ap"]
    auto = Runtime(device, resolve_precision("auto", device)).autocast_dtype
    auto_ap = fp32_ap if auto is None else train(
        base.replace(precision="auto", out_dir=str(Path(work_dir) / "auto")), progress=False
    )["ap"]
    bf16_eval_ap = evaluate_run(base.out_dir, device, config=base, precision="bf16")["ap"]
    rows = [("train + test in fp32", "fp32", fp32_ap),
            ('train + test in the default "auto"', DTYPE_NAMES.get(auto, "fp32"), auto_ap),
            ("fp32-trained, tested under bf16 autocast", "bf16", bf16_eval_ap)]
    frame = pd.DataFrame(rows, columns=["run", "precision", "ap"])
    frame["ap_difference"] = (frame.ap - fp32_ap).abs()
    frame["within_0.005"] = frame.ap_difference <= 0.005
    return frame


def write_accuracy(frame: pd.DataFrame, out: str | Path, command: str) -> Path:
    text = "\n".join([
        "# Accuracy of the fast path", "",
        f"Produced by `{command}`: a short MS run of the demo setting (segdec.demo.demo_config "
        f"with {ACCURACY_RUN}, synthetic {ACCURACY_SHAPE[1]}x{ACCURACY_SHAPE[0]} images, "
        f"{ACCURACY_IMAGES} defective + {ACCURACY_IMAGES} clean), test-set AP, unsaturated so "
        "that a precision loss would show.", "",
        frame.to_markdown(index=False, floatfmt=".4f"), "",
    ])
    return write_text(Path(out) / "accuracy.md", text)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="benchmarks", type=Path)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work_dir:
        frame = accuracy_check(resolve_device(args.device), work_dir)
    print(frame.to_string(index=False))
    command = command_line(["python", sys.argv[0], *argv])
    print(f"\nwritten: {write_accuracy(frame, args.out, command)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
