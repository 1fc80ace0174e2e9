"""Training and evaluation of one run, writing a self-describing run directory.

The run directory holds ``config.yaml`` (resolved), ``split.csv``, ``history.csv``,
``metrics.json``, ``predictions.csv``, ``segmentation_maps.npz`` and ``checkpoints/{best,last}.pt``.
Every file is written atomically; ``last.pt`` carries the optimiser, sampler and random-number
states, so a resumed run ends exactly where an uninterrupted one would (on CPU).
"""

from __future__ import annotations

import dataclasses
import math
import pickle
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm

from segdec import __version__
from segdec.config import RunConfig
from segdec.data.catalogue import DEFAULT_SIZES, load_samples
from segdec.data.dataset import PREPROCESSING, DefectDataset, TargetOptions
from segdec.data.images import DataError, image_shape, load_image, resize
from segdec.data.splits import load_split, make_split, save_split, subset
from segdec.evaluate import image_metrics, pixel_metrics, predict
from segdec.io import atomic_write, write_json
from segdec.loss import LossTerms, SegDecLoss, loss_weights
from segdec.model import ModelConfig, SegDecNet

CHECKPOINT_FORMAT = 1
# Keys of the run configuration that may differ between an interrupted run and its resumption.
RESUME_MAY_CHANGE = {"device", "num_workers", "out_dir", "notes"}
EpochCallback = Callable[[int, dict], None]
LOSS_COLUMNS = ("loss_seg", "loss_dec", "loss_total")


# ---- devices and precision --------------------------------------------------------------------
def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} was asked for but CUDA is not available")
    return device


def cpu_has_fast_bf16() -> bool:
    """AMX tiles make bf16 convolutions several times faster than fp32; without them (AVX2, plain
    AVX-512) oneDNN's bf16 path is emulated and far slower than fp32 (``segdec bench`` shows it)."""
    return torch.backends.mkldnn.is_available() and torch.cpu._is_amx_tile_supported()


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of a precision setting; ``None`` runs in fp32.

    "auto" is the fastest precision that keeps accuracy (``benchmarks/results.md``): bf16 on
    CUDA where supported (else fp16) and on CPUs with AMX, fp32 elsewhere.
    """
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if device.type == "cpu" and cpu_has_fast_bf16() else None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


# ---- sampling -----------------------------------------------------------------------------------
class NegativeSampler:
    """Božič's frequency-of-use sampling: negatives seen least are drawn most."""

    def __init__(self, n_negatives: int, seed: int) -> None:
        self.counts = np.zeros(n_negatives, dtype=np.int64)
        self.rng = np.random.default_rng(seed)

    def probabilities(self) -> np.ndarray:
        n = len(self.counts)
        if self.counts.max() == 0:
            return np.full(n, 1.0 / n)
        p = 1.0 - self.counts / self.counts.max()
        p = p - np.median(p) + 1.0
        p = np.maximum(p, 1e-12) ** (4.0 * math.log(max(n, 2)))
        return p / p.sum()

    def draw(self, k: int) -> np.ndarray:
        """``k`` distinct negatives (all of them when fewer exist)."""
        k = min(k, len(self.counts))
        probabilities = self.probabilities()
        nonzero = int(np.count_nonzero(probabilities))
        if nonzero < k:  # too peaked to draw k without replacement: top up by least used
            probabilities = np.full(len(self.counts), 1.0 / len(self.counts))
        chosen = self.rng.choice(len(self.counts), size=k, replace=False, p=probabilities)
        self.counts[chosen] += 1
        return chosen

    def state_dict(self) -> dict:
        return {"counts": self.counts.tolist(), "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.counts = np.asarray(state["counts"], dtype=np.int64)
        self.rng.bit_generator.state = state["rng"]


# ---- data ---------------------------------------------------------------------------------------
@dataclass
class RunData:
    split: pd.DataFrame
    train: DefectDataset
    val: DefectDataset
    test: DefectDataset


def input_size(config: RunConfig, first_image: str) -> tuple[int, int]:
    """(H, W): the configured size, else the dataset's usual one (KolektorSDD: Božič's), else the
    first image's size rounded down to a multiple of 8."""
    height, width = config.input_height, config.input_width
    if not (height and width):
        usual = DEFAULT_SIZES.get(config.dataset)
        native = usual or tuple(side // 8 * 8 for side in image_shape(first_image))
        height, width = height or native[0], width or native[1]
    if min(height, width) < SegDecNet.min_size:
        raise DataError(f"input size {width}x{height} (from {first_image} or the configuration) is "
                        f"below the network's {SegDecNet.min_size}x{SegDecNet.min_size}; set "
                        "input_height/input_width")
    return height, width


def prepare_data(config: RunConfig, run_split: Path | None = None) -> tuple[RunConfig, RunData]:
    """Read the dataset, take the split (a run's own ``run_split``, else ``config.split_csv``,
    else a new one), and resolve the input size into the config. Writes nothing."""
    samples = load_samples(config)
    if run_split is not None:
        split = load_split(run_split, samples)
    elif config.split_csv:
        split = load_split(config.split_csv, samples)
    else:
        split = make_split(samples, config.n_all, config.n_seg, config.seed, config.n_test,
                           config.n_val, config.n_train_negatives)
    if config.split_csv:
        config = _counts_of_split(split, config, run_split or config.split_csv)
    parts = {name: subset(split, samples, name) for name in ("train", "val", "test")}
    height, width = input_size(config, parts["train"][0][0].image)
    config = config.replace(input_height=height, input_width=width)
    options = TargetOptions(
        size=(height, width), channels=config.in_channels, dilate=config.dilate_masks,
        distance_transform=config.distance_transform, dt_power=config.dt_power,
        dt_max_weight=config.dt_max_weight,
    )
    datasets = {name: DefectDataset(s, flags, options) for name, (s, flags) in parts.items()}
    return config, RunData(split=split, **datasets)


def _counts_of_split(split: pd.DataFrame, config: RunConfig, path: str | Path) -> RunConfig:
    """A given split must hold the n_all and n_seg that config.yaml will record: those left
    null are resolved from it, explicit ones must agree."""
    train = split[split["subset"] == "train"]
    positives = train[train["label"].astype(bool)]
    counts = {"n_all": len(positives), "n_seg": int(positives["has_pixel_label"].sum())}
    for name, count in counts.items():
        wanted = getattr(config, name)
        if wanted is not None and wanted != count:
            raise DataError(
                f"split file {path} has {count} training positives"
                f"{' with pixel labels' if name == 'n_seg' else ''}, but {name}={wanted}; set "
                f"{name} to {count} (or to null) to train on that split, or drop split_csv"
            )
    return config.replace(**counts)


class EpochOrder(Sampler[int]):
    """The current epoch's training order, set each epoch, so that one loader serves all epochs
    and its worker processes keep their caches of decoded images."""

    def __init__(self) -> None:
        self.order: list[int] = []

    def __iter__(self) -> Iterator[int]:
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)


def loader(dataset: DefectDataset, config: RunConfig, device: torch.device,
           order: Sequence[int] | Sampler[int] | None = None) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=order,
        num_workers=config.num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=config.num_workers > 0,
    )


# ---- checkpoints --------------------------------------------------------------------------------
def model_config(config: RunConfig) -> ModelConfig:
    """The architecture switches of a run (RunConfig holds them flat, under the same names)."""
    return ModelConfig(**{f.name: getattr(config, f.name) for f in dataclasses.fields(ModelConfig)})


def save_checkpoint(path: Path, model: SegDecNet, config: RunConfig, **extra) -> None:
    """Plain tensors and Python values only, so ``torch.load(weights_only=True)`` reads it."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "segdec_version": __version__,
        "model_config": model.config.to_dict(),
        "input_size": [config.input_height, config.input_width],
        "preprocessing": PREPROCESSING,
        "run_config": config.to_dict(),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **extra,
    }
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        # torch's own text suggests weights_only=False, which would run the file's code.
        raise ValueError(
            f"{path} was refused: it holds objects other than tensors and plain values, which a "
            "segdec checkpoint never does. Do not load it unless you trust where it came from"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise ValueError(
            f"{path} cannot be read as a checkpoint ({type(err).__name__}): it is truncated, "
            "empty or not a segdec checkpoint. Use another copy, or last.pt/best.pt of the run"
        ) from None
    version = state.get("format") if isinstance(state, dict) else None
    if version is None:
        raise ValueError(f"{path} is not a segdec checkpoint")
    missing = sorted({"model", "model_config"} - set(state))
    if missing:
        raise ValueError(f"{path} is a segdec checkpoint without {', '.join(missing)}; it cannot "
                         "rebuild the network. Use the run's best.pt or last.pt")
    if version > CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path} has checkpoint format {version}, newer than this segdec reads "
            f"({CHECKPOINT_FORMAT}); upgrade segdec"
        )
    # Format-1 checkpoints written before this key existed used today's preprocessing.
    if state.get("preprocessing", PREPROCESSING) != PREPROCESSING:
        raise ValueError(
            f"{path} was trained on images prepared as {state['preprocessing']}, but this segdec "
            f"prepares them as {PREPROCESSING}; use the segdec version that trained it"
        )
    return state


def best_checkpoint(run_dir: str | Path) -> Path:
    """``best.pt`` of a run, or ``last.pt`` when no validation has happened yet."""
    checkpoints = Path(run_dir) / "checkpoints"
    best = checkpoints / "best.pt"
    return best if best.exists() else checkpoints / "last.pt"


def model_from_checkpoint(state: dict, device: torch.device | str = "cpu") -> SegDecNet:
    model = SegDecNet(ModelConfig(**state["model_config"]))
    model.load_state_dict(state["model"])
    return model.to(device).eval()


# ---- training -----------------------------------------------------------------------------------
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
        raise ValueError(
            f"cannot resume from {path}: the configuration differs in {', '.join(changed)}; "
            "use a new out_dir for a different run"
        )


def _remove_stale_temporaries(run_dir: Path) -> None:
    """Atomic writes leave ``.NAME.*.tmp`` only when killed mid-write; nothing else uses them."""
    for stale in [*run_dir.glob(".*.tmp"), *run_dir.glob("checkpoints/.*.tmp")]:
        stale.unlink(missing_ok=True)


def train(
    config: RunConfig,
    resume: bool = False,
    callbacks: Sequence[EpochCallback] = (),
    progress: bool = True,
) -> dict:
    """Train one run into ``config.out_dir``, then evaluate its best checkpoint on the test set."""
    run_dir = Path(config.out_dir)
    last_path, best_path = run_dir / "checkpoints" / "last.pt", run_dir / "checkpoints" / "best.pt"
    if not resume and last_path.exists():
        raise FileExistsError(
            f"{run_dir} already holds a run; pass resume=True (--resume) or choose another out_dir"
        )
    resuming = resume and last_path.exists()
    device = resolve_device(config.device)
    # Everything is checked before anything is written: a refused resumption leaves the run
    # directory as it was. A new run (also after an attempt that never reached a checkpoint)
    # makes its split afresh; only a resumed run reuses the split it trained on.
    state = load_checkpoint(last_path) if resuming else None
    config, data = prepare_data(config, run_dir / "split.csv" if resuming else None)
    if state is not None:
        _check_resumable(state["run_config"], config, last_path)
    _remove_stale_temporaries(run_dir)
    config.save(run_dir / "config.yaml")
    save_split(data.split, run_dir / "split.csv")

    torch.manual_seed(config.seed)
    model = SegDecNet(model_config(config)).to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.learning_rate,
                                momentum=config.momentum)
    criterion = SegDecLoss(config.seg_loss, config.delta)
    labels = data.train.labels()
    positives, negatives = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    sampler = NegativeSampler(len(negatives), config.seed)
    order_rng = np.random.default_rng(config.seed + 1)
    history: list[dict] = []
    best = {"ap": -1.0, "epoch": -1}
    start_epoch = 0

    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        sampler.load_state_dict(state["sampler"])
        order_rng.bit_generator.state = state["order_rng"]
        torch.set_rng_state(state["torch_rng"])
        history, best, start_epoch = state["history"], state["best"], state["epoch"] + 1

    step = torch.compile(model) if config.compile else model
    dtype = autocast_dtype(config.precision, device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    epoch_order = EpochOrder()
    train_loader = loader(data.train, config, device, epoch_order)
    val_loader = loader(data.val, config, device)
    for epoch in range(start_epoch, config.epochs):
        started = time.perf_counter()
        w_seg, w_dec = loss_weights(config.balance, epoch, config.epochs, config.beta)
        order = np.concatenate([positives, negatives[sampler.draw(len(positives))]])
        order = order[order_rng.permutation(len(order))].tolist()
        epoch_order.order = order
        model.train()
        sums = torch.zeros(len(LOSS_COLUMNS), dtype=torch.float64, device=device)
        batches = tqdm(train_loader, disable=not progress,
                       desc=f"epoch {epoch + 1}/{config.epochs}", leave=False)
        for batch in batches:
            terms = training_step(step, optimizer, scaler, criterion, batch, (w_seg, w_dec),
                                  device, dtype, config.channels_last)
            n = len(batch["label"])
            losses = torch.stack([terms.seg, terms.dec, terms.total.detach()]).double()
            sums += losses * sums.new_tensor([n, n, 1])
        means = (sums / len(order)).tolist()  # one device sync per epoch, not three per batch
        row = {"epoch": epoch, "w_seg": w_seg, "w_dec": w_dec,
               **dict(zip(LOSS_COLUMNS, means, strict=True)), "val_ap": float("nan")}
        if (epoch + 1) % config.validate_every == 0 or epoch + 1 == config.epochs:
            scores, _ = predict(model, val_loader, device, dtype)
            val = image_metrics(data.val.labels(), scores)
            row["val_ap"] = val["ap"]
            if val["ap"] > best["ap"]:
                best = {"ap": val["ap"], "epoch": epoch}
                save_checkpoint(best_path, model, config, epoch=epoch, val_ap=val["ap"],
                                threshold=val["threshold"])
        row["seconds"] = time.perf_counter() - started
        history.append(row)
        _write_history(run_dir, history)
        save_checkpoint(
            last_path, model, config, epoch=epoch, history=history, best=best,
            optimizer=optimizer.state_dict(), sampler=sampler.state_dict(),
            order_rng=order_rng.bit_generator.state, torch_rng=torch.get_rng_state(),
        )
        for callback in callbacks:
            callback(epoch, row)
    return evaluate_run(run_dir, device=device, data=data, config=config)


def evaluate_run(
    run_dir: str | Path,
    device: str | torch.device = "auto",
    data: RunData | None = None,
    config: RunConfig | None = None,
) -> dict:
    """Test the best checkpoint; write metrics, predictions and a few segmentation maps."""
    run_dir = Path(run_dir)
    config = config or RunConfig.from_file(run_dir / "config.yaml")
    device = resolve_device(device) if isinstance(device, str) else device
    if data is None:
        config, data = prepare_data(config, run_dir / "split.csv")
    checkpoint = best_checkpoint(run_dir)
    model = model_from_checkpoint(load_checkpoint(checkpoint, device), device)
    dtype = autocast_dtype(config.precision, device)
    labels = data.test.labels()
    # Figure 9 shows positives, and the pixel metrics score them: their maps come first.
    positives_first = np.argsort(-labels, kind="stable")
    n_positives = int(labels.sum())
    keep = min(config.n_saved_maps, len(labels))
    scores, _ = predict(model, loader(data.test, config, device), device, dtype)
    mapped = positives_first[:max(keep, n_positives)].tolist()
    _, maps = predict(model, loader(data.test, config, device, mapped), device, dtype,
                      len(mapped))
    metrics = image_metrics(labels, scores)
    masks = [_input_mask(data.test, i) for i in mapped[:n_positives]]
    metrics.update(pixel_metrics(maps[:n_positives], masks))
    metrics["checkpoint"] = checkpoint.name
    names = [s.name for s in data.test.samples]
    write_json(run_dir / "metrics.json", metrics)
    predictions = pd.DataFrame({"image": names, "score": scores, "label": labels})
    atomic_write(run_dir / "predictions.csv", lambda tmp: predictions.to_csv(tmp, index=False))
    _save_maps(run_dir / "segmentation_maps.npz", data.test, mapped[:keep], maps[:keep], scores)
    return metrics


def _input_mask(dataset: DefectDataset, index: int) -> np.ndarray:
    """The undilated ground-truth mask of one image at the network's input size."""
    sample = dataset.samples[index]
    return resize(sample.mask(image_shape(sample.image)), dataset.options.size, mask=True)


def _save_maps(path: Path, dataset: DefectDataset, shown: list[int], maps: list[np.ndarray],
               scores: np.ndarray) -> None:
    """Images, ground-truth masks (input size) and predicted maps (1/8) of a few test images."""
    size = dataset.options.size
    images = [resize(load_image(dataset.samples[i].image, dataset.options.channels), size)
              for i in shown]
    masks = [_input_mask(dataset, i) for i in shown]

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez_compressed(
                handle,
                names=np.array([dataset.samples[i].name for i in shown], dtype=str),
                images=np.array(images, dtype=np.uint8),
                masks=np.array(masks, dtype=np.uint8),
                seg_maps=np.array(maps, dtype=np.float32),
                scores=scores[shown].astype(np.float32),
                labels=dataset.labels()[shown],
            )

    atomic_write(path, write)
