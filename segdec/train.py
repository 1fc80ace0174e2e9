"""Training of one run, writing a self-describing run directory.

The run directory holds ``config.yaml`` (resolved), ``split.csv``, ``history.csv``,
``metrics.json``, ``predictions.csv``, ``segmentation_maps.npz``, ``checkpoints/{best,last}.pt``
``runtime.json`` (the device, precision, atrous gradient path, CPU and threads it ran with) and
``timing.json`` (the duration estimated before the first epoch and the actual one, and with a
time budget its plan).
The run records these names in ``.segdec-train.json`` (``segdec.outputs``) and holds the folder's
lock while it trains. A new run starts only in a folder holding none of them, or only those of an
attempt of its own that never reached a checkpoint: a finished run's records (``segdec records``
copies them without checkpoints) are never overwritten.
Every file is written atomically; ``last.pt`` carries the optimiser, loss-scaler, sampler and
random-number states and the precision, so a resumed run ends exactly where an uninterrupted one
would: on a CPU of the same kind with the same thread count; on a GPU only with
``deterministic: true`` and the same GPU, CUDA and cuDNN (runtime.json records them).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from segdec.augment import flips_for_epoch
from segdec.budget import at_input_size, plan_run
from segdec.checkpoint import (
    checkpoint_precision,
    last_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from segdec.config import BUDGET_FIELDS, RunConfig
from segdec.data.check import check_samples
from segdec.data.prepare import RunData, loader, prepare_data
from segdec.data.splits import (
    check_unchanged,
    save_split,
    split_digest,
    with_image_hashes,
)
from segdec.errors import ConfigError, OutputExistsError
from segdec.evaluate import evaluate_best, predict_loader
from segdec.io import atomic_write, write_json
from segdec.loss import LossTerms, SegDecLoss, loss_weights
from segdec.memory import check_training_memory
from segdec.messages import above_progress_bars
from segdec.metrics import image_metrics
from segdec.model import SegDecNet, atrous_weight_gradient, use_space_to_batch
from segdec.outputs import FolderLock, manifest_path, record
from segdec.runtime import Runtime, can_compute
from segdec.sampling import EpochOrder, NegativeSampler
from segdec.timing import (
    ESTIMATE_STEPS,
    RunEstimate,
    median_seconds_of,
    record_actual,
    record_estimate,
    run_progress,
)

# Keys of the run configuration that may differ between an interrupted run and its resumption.
RESUME_MAY_CHANGE = {"device", "num_workers", "out_dir", "notes", "estimate", "splits_root"}
# What a run writes in its folder: all of it, and nothing else, is the run's.
TRAIN_OUTPUTS = ("config.yaml", "split.csv", "history.csv", "metrics.json", "predictions.csv",
                 "segmentation_maps.npz", "errors.png", "runtime.json", "timing.json",
                 "checkpoints")
EpochCallback = Callable[[int, dict], None]
LOSS_COLUMNS = ("loss_seg", "loss_dec", "loss_total")

logger = logging.getLogger(__name__)


def training_step(
    model: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    criterion: SegDecLoss,
    batch: dict[str, torch.Tensor],
    weights: tuple[float, float],
    device: torch.device,
    dtype: torch.dtype | None,
    channels_last: bool = False,
) -> LossTerms:
    """One SGD step on one batch: what training runs and what ``segdec bench`` times."""
    images = batch["image"].to(device, non_blocking=True)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        decision, seg = model(images)
    terms = criterion(
        decision, seg, *(batch[k].to(device, non_blocking=True)
                         for k in ("label", "seg_target", "seg_weight", "has_pixel_label")),
        *weights,
    )
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(terms.total).backward()
    scaler.step(optimizer)
    scaler.update()
    return terms


def train_one_epoch(
    model: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    criterion: SegDecLoss,
    batches: DataLoader,
    weights: tuple[float, float],
    device: torch.device,
    dtype: torch.dtype | None,
    channels_last: bool = False,
    progress: str | bool = False,
    augment: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None,
) -> list[float]:
    """One pass over ``batches``; the mean segmentation, decision and total loss per image.
    ``progress`` is the bar's label (or False for none); ``augment`` changes each batch first
    (``segdec.augment``)."""
    model.train()
    sums = torch.zeros(len(LOSS_COLUMNS), dtype=torch.float64, device=device)
    images = 0
    for batch in tqdm(batches, disable=not progress, desc=progress or None, leave=False):
        if augment is not None:
            batch = augment(batch)
        terms = training_step(model, optimizer, scaler, criterion, batch, weights, device, dtype,
                              channels_last)
        n = len(batch["label"])
        images += n
        # Python scalars, not a tensor built from a list: that would be a host-to-device copy,
        # and a sync with the GPU, every step.
        sums += torch.stack([terms.seg.double() * n, terms.dec.double() * n,
                             terms.total.detach().double()])
    return (sums / max(images, 1)).tolist()  # the one device sync of the epoch


def epoch_line(row: dict, epochs: int) -> str:
    """What an epoch did, in one line: both losses, their weights and the validation AP. The
    decision loss moves only once w_dec has grown (and the segmentation has settled)."""
    validation = "" if np.isnan(row["val_ap"]) else (
        f", validation AP {row['val_ap']:.3f} (log loss {row['val_loss']:.3f})")
    return (f"epoch {row['epoch'] + 1}/{epochs}: segmentation loss {row['loss_seg']:.4f} "
            f"(w {row['w_seg']:.2f}), decision loss {row['loss_dec']:.4f} (w {row['w_dec']:.2f})"
            f"{validation}, {row['seconds']:.0f} s")


def _improves(val: dict, best: dict, tie_break: str) -> bool:
    """A higher validation AP, or (``tie_break="loss"``) the same AP at a lower log loss."""
    if val["ap"] != best["ap"]:
        return val["ap"] > best["ap"]
    return tie_break == "loss" and val["log_loss"] < best.get("loss", math.inf)


def _write_history(run_dir: Path, history: list[dict]) -> None:
    atomic_write(run_dir / "history.csv",
                 lambda tmp: pd.DataFrame(history).to_csv(tmp, index=False))


def _comparable(config: RunConfig) -> dict:
    """A configuration as resuming compares it: paths resolved, so that ``data`` and
    ``/abs/path/data`` are the same folder."""
    values = config.to_dict()
    for name in ("data_root", "split_csv"):
        if values[name] is not None:
            values[name] = str(Path(values[name]).resolve())
    return values


def _check_resumable(saved: dict, config: RunConfig, path: Path) -> None:
    # Read through RunConfig so that fields added since the run started take their defaults.
    before, now = _comparable(RunConfig.from_dict(saved)), _comparable(config)
    changed = sorted(k for k, v in now.items() if k not in RESUME_MAY_CHANGE and before[k] != v)
    if changed:
        raise ConfigError(
            f"cannot resume from {path}: the configuration differs in {', '.join(changed)}; "
            "use a new out_dir for a different run"
        )


def _check_same_data(saved: dict, config: RunConfig, path: Path) -> None:
    """Before the data are read: a resumption reading another data folder would fail on its
    first image as "not in the dataset", which does not say why."""
    before, now = _comparable(RunConfig.from_dict(saved)), _comparable(config)
    if (before["dataset"], before["data_root"]) != (now["dataset"], now["data_root"]):
        raise ConfigError(
            f"cannot resume from {path}: the data folder differs from the run's ({now['dataset']}"
            f" at {now['data_root']} here, {before['dataset']} at {before['data_root']} in the "
            "run); resume with the run's own data (without --config, the run's config.yaml), or "
            "start a new run in another out_dir")


def _check_new_run_folder(run_dir: Path) -> None:
    """A new run overwrites only its own earlier attempt's files: one that stopped before its
    first checkpoint, recorded in the run's manifest. Anything else under its names (a finished
    run's records, someone's config.yaml) is kept and the run refused."""
    present = [name for name in TRAIN_OUTPUTS if (run_dir / name).exists()]
    if not present or (manifest_path(run_dir, "train").is_file()
                       and "metrics.json" not in present):
        return
    what = ("a finished run's records" if "metrics.json" in present
            else "files that no segdec train recorded writing")
    raise OutputExistsError(
        f"{run_dir} holds {what} ({', '.join(present)}) and no checkpoints/last.pt to continue "
        "from; a new run there would overwrite them: choose another --out-dir (out_dir), or move "
        "them away")


def _resumed_precision(state: dict, precision: str, device: torch.device, path: Path) -> str:
    """The precision a resumed run continues in: the one it started in (changing the arithmetic
    mid-way would make it a run of neither precision), or a clear refusal where this device
    cannot compute it."""
    trained = checkpoint_precision(state)
    if trained == precision:
        return precision
    if not can_compute(trained, device):
        raise ConfigError(
            f"cannot resume from {path} on {device}: the run trained in {trained}, which this "
            "device cannot compute (TF32, and bf16 on a GPU, need compute capability 8.0 or "
            "newer); resume it on a device like the one it started on, or train anew in "
            "another out_dir")
    logger.info("resuming in %s, the precision the run started in (%s here)", trained, precision)
    return trained


def _finished(state: dict, run_dir: Path) -> bool:
    """Every epoch trained (or stopped early) and the test evaluated: resuming it must leave the
    folder as it is (``runtime.json`` gains no stretch, metrics are not recomputed)."""
    trained = state["epoch"] + 1 >= state["run_config"]["epochs"] or "stopped" in state
    return trained and (run_dir / "metrics.json").is_file()


def _stale_validations(history: list[dict], best_epoch: int, epochs: int) -> int:
    """Validations without a better AP since the best one, counted from half the epochs on.
    Before then the decision loss weight is still growing (the "linear" balance reaches half its
    final w_dec exactly there), so a flat AP says little; half the epochs holds for every balance
    schedule and beta, where a threshold on w_dec would not be reached by a slow decay at all."""
    return sum(not math.isnan(row["val_ap"]) and row["epoch"] > best_epoch
               and row["epoch"] >= epochs // 2 for row in history)


def _rehearse(config: RunConfig, data: RunData, parts: tuple, scaler: torch.amp.GradScaler,
              runtime: Runtime, start_epoch: int) -> RunEstimate:
    """The run's expected duration (its estimate, and what a time budget plans from), from
    ``ESTIMATE_STEPS`` timed steps and one timed scoring batch of its own datasets, run on copies
    of its network, optimiser and loss scaler with the random-number states restored afterwards:
    the run then trains exactly as it would without. It reads the datasets through loaders of
    its own: the run's, whose workers persist, would draw their workers' seeds from torch's
    generator here, inside the restored state, not where a run without the rehearsal draws
    them."""
    model, optimizer, criterion = parts
    device, dtype = runtime.device, runtime.autocast_dtype
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        net, opt, scale = copy.deepcopy((model, optimizer, scaler))
        net.train()
        runnable = torch.compile(net) if config.compile else net
        order = np.resize(np.arange(len(data.train)), config.batch_size * (1 + ESTIMATE_STEPS))
        batches = iter(loader(data.train, config, device, order.tolist()))
        weights = loss_weights(config.balance, start_epoch, config.epochs, config.beta)

        def train_step() -> None:
            training_step(runnable, opt, scale, criterion, next(batches), weights, device, dtype,
                          config.channels_last)
            if device.type == "cuda":
                torch.cuda.synchronize(device)

        step_s = median_seconds_of(train_step, ESTIMATE_STEPS)
        scored = data.val if len(data.val) else data.test
        batch = next(iter(loader(scored, config, device)))
        image_s = median_seconds_of(lambda: predict_loader(runnable, [batch], device, dtype),
                                    1) / len(batch["label"])
    return RunEstimate.of_run(config, data, start_epoch, step_s, image_s)


def _record_runtime(run_dir: Path, start_epoch: int, runtime: dict) -> None:
    """``runtime.json``: how each stretch of the run was computed (a resumed run appends one)."""
    path = run_dir / "runtime.json"
    stretches = json.loads(path.read_text()) if start_epoch > 0 and path.is_file() else []
    write_json(path, [*stretches, {"from_epoch": start_epoch, **runtime}])


def _remove_stale_temporaries(run_dir: Path) -> None:
    """Atomic writes leave ``.NAME.*.tmp`` only when killed mid-write; nothing else uses them."""
    for stale in [*run_dir.glob(".*.tmp"), *run_dir.glob("checkpoints/.*.tmp")]:
        stale.unlink(missing_ok=True)


def training_parts(config: RunConfig, runtime: Runtime
                   ) -> tuple[SegDecNet, torch.optim.SGD, SegDecLoss]:
    """The network (seeded, on the runtime's atrous path, in the configured memory format), its
    SGD optimiser and the loss, as a run builds them; the benchmarks build theirs here too, to
    time what runs do."""
    torch.manual_seed(config.seed)
    model = SegDecNet(config.model_config()).to(runtime.device)
    use_space_to_batch(model, runtime.space_to_batch)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.learning_rate,
                                momentum=config.momentum)
    return model, optimizer, SegDecLoss(config.seg_loss, config.delta)


def train(
    config: RunConfig,
    resume: bool = False,
    callbacks: Sequence[EpochCallback] = (),
    progress: bool = True,
) -> dict:
    """Train one run into ``config.out_dir``, then evaluate its best checkpoint on the test set;
    the run's folder is locked while it does (a second writer is refused). ``progress`` shows
    the epochs' bars and logs the run's notes (the time budget's plan, the estimate, each
    epoch's losses and the run's progress)."""
    with FolderLock(config.out_dir, "train", what="the run (out_dir)"), above_progress_bars():
        return _train_locked(config, resume, callbacks, progress)


def _train_locked(config: RunConfig, resume: bool, callbacks: Sequence[EpochCallback],
                  progress: bool) -> dict:
    """``train``, in a run folder this process holds the lock of."""
    run_dir = Path(config.out_dir)
    last_path, best_path = last_checkpoint(run_dir), run_dir / "checkpoints" / "best.pt"
    if not resume and last_path.exists():
        raise OutputExistsError(
            f"{run_dir} already holds a run; pass resume=True or choose another out_dir")
    resuming = resume and last_path.exists()
    runtime = Runtime.of_run(config)
    runtime.apply()
    # Everything is checked before anything is written: a refused resumption leaves the run
    # directory as it was. A new run (also after an attempt that never reached a checkpoint)
    # makes its split afresh; only a resumed run reuses the split it trained on.
    state = load_checkpoint(last_path) if resuming else None
    if state is None:
        _check_new_run_folder(run_dir)
    else:
        _check_same_data(state["run_config"], config, last_path)
    config, data = prepare_data(config, run_dir / "split.csv" if resuming else None)
    used = {s.name: s for part in (data.train, data.val, data.test) for s in part.samples}
    if state is not None:
        check_unchanged(data.split, list(used.values()), run_dir / "split.csv")
    check_samples(used.values()).raise_for_problems(f"the {len(used)} images of the split")
    check_training_memory(config, runtime.device, runtime.autocast_dtype)
    if state is not None:
        if config.time_budget is not None:  # a resumed run keeps the plan it started with
            config = config.replace(**{k: state["run_config"][k] for k in BUDGET_FIELDS})
        _check_resumable(state["run_config"], config, last_path)
        if _finished(state, run_dir):
            if progress:
                logger.info("%s is a finished run (%d of %d epochs, tested): nothing to resume, "
                            "nothing changed", run_dir, state["epoch"] + 1, config.epochs)
            return json.loads((run_dir / "metrics.json").read_text())
        precision = _resumed_precision(state, runtime.precision, runtime.device, last_path)
        if precision != runtime.precision:
            runtime = dataclasses.replace(runtime, precision=precision)
            runtime.apply()
    # The network, optimiser and loss scaler the run trains with, built once: the plan's and the
    # estimate's timed steps run on copies of them. A plan leaves them as they are: it sets the
    # input size, epochs and beta, none of which they depend on.
    parts = training_parts(config, runtime)
    model, optimizer, criterion = parts
    scaler = runtime.loss_scaler()
    plan = None
    if config.time_budget is not None:
        if state is None:
            plan = plan_run(config, data, _rehearse(config, data, parts, scaler, runtime, 0))
            if progress:
                logger.info(plan.line())
            config = config.replace(**plan.fields())
        data = at_input_size(data, config)
    split = with_image_hashes(data.split, list(used.values()))
    trained_on = split_digest(split)  # checkpoints record it: evaluate checks the split against it
    _remove_stale_temporaries(run_dir)
    record(run_dir, "train", TRAIN_OUTPUTS)
    config.save(run_dir / "config.yaml")
    save_split(split, run_dir / "split.csv")

    device, dtype = runtime.device, runtime.autocast_dtype
    labels = data.train.labels()
    positives, negatives = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    sampler = NegativeSampler(len(negatives), config.seed)
    order_rng = np.random.default_rng(config.seed + 1)
    history: list[dict] = []
    best = {"ap": -1.0, "loss": math.inf, "epoch": -1}
    start_epoch = 0
    stopped: dict | None = None  # where and why a run with patience ended early

    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        sampler.load_state_dict(state["sampler"])
        order_rng.bit_generator.state = state["order_rng"]
        torch.set_rng_state(state["torch_rng"])
        history, best, start_epoch = state["history"], state["best"], state["epoch"] + 1
        stopped = state.get("stopped")

    runnable = torch.compile(model) if config.compile else model  # the model as training calls it
    if state is not None and state.get("scaler"):  # fp16's loss scale; {} when disabled
        scaler.load_state_dict(state["scaler"])
    _record_runtime(run_dir, start_epoch, runtime.describe(
        atrous_weight_gradient(model, device.type, dtype is not None)))
    epoch_order = EpochOrder()
    train_loader = loader(data.train, config, device, epoch_order)
    val_loader = loader(data.val, config, device)
    end_epoch = start_epoch if stopped else config.epochs
    estimating = time.perf_counter()
    estimate = None
    if config.estimate:
        estimate = _rehearse(config, data, parts, scaler, runtime, start_epoch)
        if progress:
            logger.info(estimate.line(f"{runtime.threads} threads, {device}, "
                                      f"{runtime.precision}"))
    record_estimate(run_dir, start_epoch, estimate, time.perf_counter() - estimating,
                    plan.record() if plan else None)
    run_started = time.perf_counter()
    for epoch in range(start_epoch, end_epoch):
        started = time.perf_counter()
        w_seg, w_dec = loss_weights(config.balance, epoch, config.epochs, config.beta)
        order = np.concatenate([positives, negatives[sampler.draw(len(positives))]])
        order = order[order_rng.permutation(len(order))].tolist()
        epoch_order.order = order
        means = train_one_epoch(runnable, optimizer, scaler, criterion, train_loader,
                                (w_seg, w_dec), device, dtype, config.channels_last,
                                progress and f"epoch {epoch + 1}/{config.epochs}",
                                flips_for_epoch(config.flips, config.seed, epoch))
        row = {"epoch": epoch, "w_seg": w_seg, "w_dec": w_dec,
               **dict(zip(LOSS_COLUMNS, means, strict=True)), "val_ap": float("nan"),
               "val_loss": float("nan")}
        if (epoch + 1) % config.validate_every == 0 or epoch + 1 == config.epochs:
            scores, _ = predict_loader(model, val_loader, device, dtype)
            val = image_metrics(data.val.labels(), scores)
            row["val_ap"], row["val_loss"] = val["ap"], val["log_loss"]
            if _improves(val, best, config.tie_break):
                best = {"ap": val["ap"], "loss": val["log_loss"], "epoch": epoch}
                save_checkpoint(best_path, model, config, epoch=epoch, val_ap=val["ap"],
                                threshold=val["threshold"], precision=runtime.precision,
                                split_digest=trained_on)
        row["seconds"] = time.perf_counter() - started
        history.append(row)
        if progress:
            logger.info(epoch_line(row, config.epochs))
            logger.info(run_progress([r["seconds"] for r in history], config.epochs))
        stale = _stale_validations(history, best["epoch"], config.epochs)
        if config.patience and epoch + 1 < config.epochs and stale >= config.patience:
            stopped = {"stopped_epoch": epoch, "stopped_reason": (
                f"validation AP not improved for {config.patience} validations since epoch "
                f"{best['epoch'] + 1} (AP {best['ap']:.4f})")}
        _write_history(run_dir, history)
        save_checkpoint(
            last_path, model, config, epoch=epoch, history=history, best=best,
            precision=runtime.precision, optimizer=optimizer.state_dict(),
            scaler=scaler.state_dict(), sampler=sampler.state_dict(),
            order_rng=order_rng.bit_generator.state, torch_rng=torch.get_rng_state(),
            split_digest=trained_on,
            **({"stopped": stopped} if stopped else {}),
        )
        for callback in callbacks:
            callback(epoch, row)
        if stopped:
            if progress:
                logger.info("stopped after epoch %d: %s", epoch + 1, stopped["stopped_reason"])
            break
    metrics = evaluate_best(run_dir, config, data.test, device, stopped=stopped)
    record_actual(run_dir, time.perf_counter() - run_started, stopped)
    return metrics
