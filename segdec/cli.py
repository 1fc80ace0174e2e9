"""``segdec`` command line: one subcommand per job, run-configuration fields as options."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from segdec.config import RunConfig
from segdec.data.synthetic import DEMO_IMAGES, DEMO_SHAPE
from segdec.errors import ConfigError, Interrupted, OutputExistsError, SegdecError, os_error_line
from segdec.messages import show_messages


def _size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` as image tools write it -> (height, width), the package's order."""
    width, _, height = text.lower().partition("x")
    try:
        return int(height), int(width)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT, such as 320x64") from None


def _at_least(low: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``low``."""
    def whole_number(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} must be at least {low}")
        return value

    return whole_number


def _threshold(text: str) -> str | float:
    """``best`` or a number; predict checks that it is a probability."""
    if text == "best":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither 'best' nor a probability such as 0.5") from None


def _base_config(args: argparse.Namespace) -> RunConfig:
    """--config, else (when resuming) the run's own saved config, then the options on top."""
    saved = Path(getattr(args, "out_dir", "")) / "config.yaml"
    if args.config:
        base = RunConfig.from_file(args.config)
    elif getattr(args, "resume", False) and saved.is_file():
        base = RunConfig.from_file(saved)
    else:
        base = None
    return RunConfig.from_args(args, base)


def cmd_train(args: argparse.Namespace) -> int:
    from segdec.checkpoint import last_checkpoint
    from segdec.train import train

    config = _base_config(args)
    # Said here in the CLI's words; the Python API (train's resume=True) says its own.
    started = last_checkpoint(config.out_dir).is_file()
    if args.resume and not started:
        raise ConfigError(f"nothing to resume in {config.out_dir}: it holds no "
                          "checkpoints/last.pt; start the run without --resume")
    if started and not args.resume:
        raise OutputExistsError(f"{config.out_dir} already holds a run; continue it with --resume "
                                "or choose another --out-dir")
    try:
        metrics = train(config, resume=args.resume)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted: {_where_the_run_stands(Path(config.out_dir))}") from None
    except SegdecError:  # some are OSErrors too (OutputExistsError), and say what to do
        raise
    except OSError as err:  # a full disk, mostly: the run's last checkpoint is intact
        raise SegdecError(f"{os_error_line(err)}; "
                          f"{_where_the_run_stands(Path(config.out_dir))}") from None
    print(_format_metrics(metrics))
    print(f"run directory: {config.out_dir}")
    return 0


def _where_the_run_stands(run_dir: Path) -> str:
    """Where a stopped run can go on from, and the command that continues it."""
    from segdec.checkpoint import last_checkpoint, load_checkpoint

    last = last_checkpoint(run_dir)
    try:
        state = load_checkpoint(last)
    except (SegdecError, OSError):
        return (f"{run_dir} holds no checkpoint to continue from (it stopped before its first "
                "epoch ended); start the run again with the same command")
    resume = shlex.join(["segdec", "train", "--out-dir", str(run_dir), "--resume"])
    return (f"{last} holds epoch {state['epoch'] + 1} of {state['run_config']['epochs']}; "
            f"continue with: {resume}")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from segdec.evaluate import evaluate_run

    print(_format_metrics(evaluate_run(args.run, device=args.device)))
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from segdec.data.download import download

    download(args.dataset, args.dest, archive=args.zip, expected_images=args.expected_images)
    return 0


def cmd_split(args: argparse.Namespace) -> int:
    from segdec.data.catalogue import load_samples
    from segdec.data.splits import check_split_target, make_split, save_split

    check_split_target(args.out, args.overwrite)
    config = _base_config(args)
    split = make_split(load_samples(config), config.n_all, config.n_seg,
                       config.effective_split_seed, config.n_test, config.n_val,
                       config.n_train_negatives)
    save_split(split, args.out)
    counts = split.groupby(["subset", "label"]).agg(
        images=("image", "size"), pixel_labelled=("has_pixel_label", "sum"))
    print(counts.to_string())
    print(f"split written to {args.out}; reuse it with --split-csv {args.out}")
    return 0


def cmd_check_data(args: argparse.Namespace) -> int:
    from segdec.data.catalogue import load_samples
    from segdec.data.check import check_samples

    config = _base_config(args)
    check = check_samples(load_samples(config), config.bit_depth)
    print(f"{config.dataset} at {config.data_root}")
    print(check.summary())
    return 2 if check.problems else 0


def cmd_synth(args: argparse.Namespace) -> int:
    from segdec.data.synthetic import synthesize

    out = synthesize(args.out, args.n_pos, args.n_neg, seed=args.seed, shape=args.size,
                     overwrite=args.overwrite)
    print(f"wrote {args.n_pos} defective and {args.n_neg} clean images to {out}")
    return 0


def cmd_quick_demo(args: argparse.Namespace) -> int:
    from segdec.demo import run_quick_demo

    table = run_quick_demo(args.out, n_pos=args.n_pos, n_neg=args.n_neg, shape=args.size,
                     epochs=args.epochs)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"\nruns and data: {args.out}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from segdec.predict import predict_images

    scores, skipped = predict_images(args.checkpoint, args.images, args.out, args.threshold,
                                     args.batch_size, args.device, args.mask_threshold,
                                     args.num_workers, overwrite=args.overwrite)
    print(f"{len(scores)} images scored, {int(scores.decision.sum())} judged defective, "
          f"{len(skipped)} unreadable skipped; results in {args.out}")
    if scores.empty:
        print(f"segdec predict: error: none of the {len(skipped)} images could be read; "
              f"{args.out / 'skipped.csv'} says why for each", file=sys.stderr)
        return 2
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from segdec.export import export_onnx

    print(f"wrote {export_onnx(args.checkpoint, args.onnx)}")
    return 0


def cmd_suggest_labels(args: argparse.Namespace) -> int:
    from segdec.suggest import suggest_labels

    top = suggest_labels(args.run, args.budget, args.out, args.device)
    print(top.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"\nwritten to {args.out or args.run / 'label_suggestions.csv'}")
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    from segdec.batch import run_batch

    try:
        return run_batch(args.file, only=args.only, dry_run=args.dry_run, workers=args.workers,
                         scheduler=args.scheduler, reports_only=args.reports_only)
    except KeyboardInterrupt:
        again = shlex.join(["segdec", *args.argv])
        raise Interrupted("interrupted: finished runs are kept, and a run stopped mid-way "
                          f"resumes from its last checkpoint; continue with: {again}") from None


def cmd_summary(args: argparse.Namespace) -> int:
    from segdec.tables import runs_table, save_table

    table = runs_table(args.runs)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.out_dir:
        paths = save_table(table, args.out_dir, args.name)
        print(f"\nwritten: {', '.join(map(str, paths))}")
    return 0


def cmd_companion(args: argparse.Namespace) -> int:
    from segdec.companion import NOTEBOOKS, render_companion

    render_companion(tuple(args.notebooks or NOTEBOOKS))
    return 0


def cmd_records(args: argparse.Namespace) -> int:
    from segdec.records import copy_records

    copied, present = copy_records(args.runs, args.dest)
    print(f"{len(copied)} run records copied to {args.dest}, {len(present)} already there")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from segdec.bench import QUICK, BenchSettings, command_line, run_bench, write_bench
    from segdec.runtime import resolve_device

    settings = QUICK if args.quick else BenchSettings()
    settings = replace(settings, batch_size=args.batch_size)
    results = run_bench(settings, resolve_device(args.device))
    command = command_line(["segdec", *args.argv])
    print("\n" + results.markdown(command))
    if args.out:
        path = write_bench(results, args.out, command)
        print(f"written: {path} and {path.with_suffix('.csv')}")
    return 0


def _format_metrics(metrics: dict) -> str:
    return " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in metrics.items())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segdec", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train one run and evaluate it on the test split")
    train.add_argument("--config", help="YAML run configuration; options below override it")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in --out-dir from its last checkpoint")
    RunConfig.add_arguments(train)
    train.set_defaults(func=cmd_train)

    evaluate = commands.add_parser("evaluate", help="evaluate a run directory's best checkpoint")
    evaluate.add_argument("--run", required=True, type=Path)
    evaluate.add_argument("--device", default="auto")
    evaluate.set_defaults(func=cmd_evaluate)

    download = commands.add_parser("download", help="download and verify a dataset")
    download.add_argument("dataset", choices=["severstal", "ksdd", "ksdd2", "dagm"])
    download.add_argument("--dest", required=True, type=Path,
                          help="folder for the dataset (dagm: each class goes to DEST/ClassN)")
    download.add_argument("--zip", type=Path,
                          help="use this archive, downloaded in a browser, instead of fetching it")
    download.add_argument("--expected-images", type=int, metavar="N",
                          help="check for N images (dagm: per class) instead of the published "
                               "count, for a subset")
    download.set_defaults(func=cmd_download)

    split = commands.add_parser("split", help="write the train/val/test split of a configuration")
    split.add_argument("--config", help="YAML run configuration; options below override it")
    split.add_argument("--out", required=True, type=Path, help="split CSV to write")
    RunConfig.add_arguments(split, groups=("data",))
    split.add_argument("--seed", dest="seed", default=argparse.SUPPRESS, metavar="INT",
                       help="seed of the split (default: 0)")
    split.add_argument("--overwrite", action="store_true",
                       help="replace the split file --out (never a run's own split.csv)")
    split.set_defaults(func=cmd_split)

    check = commands.add_parser(
        "check-data", help="read every image and mask of a dataset; summary and problems")
    check.add_argument("--config", help="YAML run configuration; options below override it")
    RunConfig.add_arguments(check, groups=("data",))
    check.set_defaults(func=cmd_check_data)

    synth = commands.add_parser("synth", help="write a synthetic dataset in Severstal's layout")
    synth.add_argument("--out", required=True, type=Path)
    synth.add_argument("--n-pos", type=int, default=100)
    synth.add_argument("--n-neg", type=int, default=100)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--size", default="1600x256", type=_size,
                       help="WIDTHxHEIGHT, multiples of 8")
    synth.add_argument("--overwrite", action="store_true")
    synth.set_defaults(func=cmd_synth)

    demo = commands.add_parser(
        "quick-demo", help="3 runs: weak, mixed and full supervision on small synthetic images "
        "(make demo runs the 10-run demo batch)")
    demo.add_argument("--out", default="runs/demo", type=Path)
    demo.add_argument("--n-pos", type=int, default=DEMO_IMAGES)
    demo.add_argument("--n-neg", type=int, default=DEMO_IMAGES)
    demo.add_argument("--size", default=f"{DEMO_SHAPE[1]}x{DEMO_SHAPE[0]}", type=_size,
                      help="WIDTHxHEIGHT of the synthetic images")
    demo.add_argument("--epochs", type=int, default=10)
    demo.set_defaults(func=cmd_quick_demo)

    predict = commands.add_parser("predict", help="score a folder of images; masks and overlays")
    predict.add_argument("--checkpoint", required=True, type=Path, help="RUN/checkpoints/best.pt")
    predict.add_argument("--images", required=True, help="a folder, or a quoted glob pattern")
    predict.add_argument("--out", required=True, type=Path)
    predict.add_argument("--threshold", default="best", type=_threshold,
                         help="'best' (the validation threshold in best.pt) or a probability")
    predict.add_argument("--mask-threshold", type=float, default=0.5,
                         help="segmentation probability above which a pixel is in the mask")
    predict.add_argument("--batch-size", type=_at_least(1), default=8)
    predict.add_argument("--num-workers", type=_at_least(0), default=0,
                         help="image-decoding processes")
    predict.add_argument("--overwrite", action="store_true",
                         help="replace the results of an earlier prediction in --out")
    predict.add_argument("--device", default="auto", help="auto, cpu or cuda")
    predict.set_defaults(func=cmd_predict)

    export = commands.add_parser("export", help="write a checkpoint as ONNX (dynamic batch)")
    export.add_argument("--checkpoint", required=True, type=Path)
    export.add_argument("--onnx", required=True, type=Path)
    export.set_defaults(func=cmd_export)

    suggest = commands.add_parser(
        "suggest-labels", help="rank weakly labelled training positives for pixel labelling")
    suggest.add_argument("--run", required=True, type=Path)
    suggest.add_argument("--budget", required=True, type=_at_least(1),
                         help="how many images to suggest")
    suggest.add_argument("--out", type=Path, help="CSV (default RUN/label_suggestions.csv)")
    suggest.add_argument("--device", default="auto")
    suggest.set_defaults(func=cmd_suggest_labels)

    batch = commands.add_parser(
        "batch", help="execute a papermill batch (papermill_runs/*.yaml), then its reports")
    batch.add_argument("file", type=Path, help="batch file, e.g. papermill_runs/demo.yaml")
    batch.add_argument("--only", action="append", metavar="NAME",
                       help="run only the runs matching this name or shell pattern (repeatable); "
                       "with --reports-only, the reports so named")
    batch.add_argument("--dry-run", action="store_true", help="list the runs and stop")
    batch.add_argument("--reports-only", action="store_true",
                       help="render the reports from the runs finished so far; train nothing")
    batch.add_argument("--workers", type=_at_least(1),
                       help="parallel local runs (default: one per GPU)")
    batch.add_argument("--scheduler", metavar="ADDRESS",
                       help="Dask scheduler (tcp://host:8786) to run on instead of locally")
    batch.set_defaults(func=cmd_batch)

    summary = commands.add_parser(
        "summary", help="tabulate every finished run under a folder: tags, test metrics, time")
    summary.add_argument("runs", type=Path, help="a batch's runs_dir, e.g. runs/ksdd_ms")
    summary.add_argument("--out-dir", type=Path, help="also write NAME.csv and NAME.md here")
    summary.add_argument("--name", default="runs", help="file name of the table (default: runs)")
    summary.set_defaults(func=cmd_summary)

    companion = commands.add_parser(
        "companion", help="execute the numbered report notebooks in place from the committed "
        "run records (what a reader sees on the repository's pages)")
    companion.add_argument("notebooks", nargs="*", help="only these (default: 03, 04, 06, 05)")
    companion.set_defaults(func=cmd_companion)

    records = commands.add_parser(
        "records", help="copy finished runs' image-free records (config, split, history, "
        "metrics, predictions) for committing, e.g. runs/ksdd -> figures/ksdd/runs")
    records.add_argument("runs", type=Path, help="a batch's runs_dir")
    records.add_argument("dest", type=Path, help="where the records go (same relative paths)")
    records.set_defaults(func=cmd_records)

    bench = commands.add_parser("bench", help="time the paper's network against the original")
    bench.add_argument("--quick", action="store_true",
                       help="the same on quarter-size inputs, in less time per timing")
    bench.add_argument("--out", type=Path, help="also write bench.md and bench.csv here")
    bench.add_argument("--batch-size", type=int, default=1)
    bench.add_argument("--device", default="auto")
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.argv = argv
    show_messages()
    try:
        return args.func(args)
    # Bad input, an interrupt and the operating system's failures (a full disk, a read-only or
    # missing folder, a file in the way) are one line that says what to do; anything else is a
    # bug and keeps its traceback.
    except Interrupted as err:
        print(f"segdec {args.command}: {err}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"segdec {args.command}: interrupted", file=sys.stderr)
        return 130
    except SegdecError as err:
        print(f"segdec {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"segdec {args.command}: error: {os_error_line(err)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
