"""The small trained networks of the teaching notebook: trained once on real KolektorSDD (or on the
synthetic set without it), loaded from their run directories after that."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from segdec.checkpoint import load_checkpoint, model_from_checkpoint
from segdec.config import RunConfig
from segdec.data.prepare import prepare_data
from segdec.data.synthetic import DEMO_IMAGES, synthesize
from segdec.errors import ConfigError
from segdec.model import SegDecNet
from segdec.paths import data_home
from segdec.train import train

# The networks the notebook compares: the paper's (A+T+W), the same with Božič's linear balance
# (for the loss curves), Božič's network as described (Table 2), with his linear balance, and
# that network with atrous kernels (T), which differs from it in the kernels alone (for the
# effective receptive field): name -> (run folder, settings).
NETWORKS = {
    "paper (A+T+W)": ("paper", {"attention": True, "atrous": True, "balance": "decay"}),
    "paper, linear balance (A+T)": ("paper-linear-balance",
                                    {"attention": True, "atrous": True, "balance": "linear"}),
    "Božič (none)": ("bozic", {"attention": False, "atrous": False, "balance": "linear"}),
    "atrous only (T)": ("atrous", {"attention": False, "atrous": True, "balance": "linear"}),
}
KOLEKTORSDD = ("download KolektorSDD from https://www.vicos.si/resources/kolektorsdd/ "
               "(CC BY-NC-SA 4.0) and pass its folder as data_root")


def kolektorsdd() -> Path:
    """Where the notebook looks for KolektorSDD when given no data_root: ksdd under the data
    folder (``paths.data_home``)."""
    return Path(data_home()) / "ksdd"


def teaching_data(data_root: str | Path | None, runs_dir: str | Path,
                  shape: tuple[int, int] = (264, 96), seed: int = 0) -> tuple[str, Path]:
    """(dataset format, folder): ``data_root`` read as one's own images (any folder layout); with
    None, the KolektorSDD beside the project if there is one; with ``"synthetic"`` or without
    KolektorSDD, a synthetic set of ``shape`` (H, W) written into ``runs_dir``."""
    if data_root is None and kolektorsdd().is_dir():
        return "folder", kolektorsdd()
    if data_root is None or data_root == "synthetic":
        root = Path(runs_dir) / "synthetic"
        if not (root / "train.csv").is_file():
            synthesize(root, n_pos=DEMO_IMAGES, n_neg=DEMO_IMAGES, seed=seed, shape=shape)
        return "severstal", root
    if not Path(data_root).is_dir():
        raise FileNotFoundError(f"data_root {data_root} does not exist; give a folder of images, "
                                "'synthetic', or None for KolektorSDD")
    return "folder", Path(data_root)


def describe_data(data_root: str | Path | None, dataset: str, root: Path) -> str:
    """The line the notebook prints first: which images the networks learn, and on the synthetic
    set (the only one ``teaching_data`` gives in the severstal format) a banner saying why and how
    to get KolektorSDD instead."""
    if dataset != "severstal":
        return f"Real images: {root} ({dataset} format)."
    why = ("data_root is 'synthetic'" if data_root == "synthetic"
           else f"no data_root given and no KolektorSDD at {kolektorsdd()}")
    rule = "!" * 79
    return (f"{rule}\nSYNTHETIC DATA ({why}): these networks learn made-up images, {root}, and\n"
            f"every figure of them says so in its title. For real defects, {KOLEKTORSDD}.\n{rule}")


def teaching_configs(dataset: str, data_root: str | Path, runs_dir: str | Path,
                     input_width: int, input_height: int, epochs: int,
                     seed: int = 0) -> dict[str, RunConfig]:
    """One fully supervised run configuration per network of ``NETWORKS``.

    Real images get the folder format's recipe (Božič's KSDD one); the synthetic set gets the
    demo's larger-momentum steps, which learn it in a few epochs.
    """
    common = {"dataset": dataset, "data_root": str(data_root), "n_all": None, "n_seg": None,
              "input_width": input_width, "input_height": input_height, "epochs": epochs,
              "validate_every": max(epochs // 3, 1), "seed": seed, "n_saved_maps": 4,
              "gradient_adjustment": True}  # the networks as the papers describe them
    if dataset == "severstal":
        common.update(n_test=30, n_val=20, batch_size=10, learning_rate=0.01, momentum=0.9)
    return {name: RunConfig(**common, **network, out_dir=str(Path(runs_dir) / folder))
            for name, (folder, network) in NETWORKS.items()}


def train_or_load(config: RunConfig, progress: bool = True) -> SegDecNet:
    """The best checkpoint of the run in ``config.out_dir``, trained first if unfinished."""
    run_dir = Path(config.out_dir)
    if (run_dir / "metrics.json").is_file():
        changed = sorted(config.differences(RunConfig.from_file(run_dir / "config.yaml")
                                            .to_dict()))
        if changed:
            raise ConfigError(f"{run_dir} holds a network trained with other settings "
                             f"({', '.join(changed)}); choose another runs_dir or delete it")
    else:
        train(config, resume=True, progress=progress)
    return model_from_checkpoint(load_checkpoint(run_dir / "checkpoints" / "best.pt"))


def run_summary(configs: dict[str, RunConfig]) -> pd.DataFrame:
    """Test AP, AUC and pixel AP of each finished run, with its training time."""
    rows = []
    for name, config in configs.items():
        run_dir = Path(config.out_dir)
        metrics = pd.read_json(run_dir / "metrics.json", typ="series")
        history = pd.read_csv(run_dir / "history.csv")
        rows.append({"network": name, "test_ap": metrics["ap"], "test_auc": metrics["auc"],
                     "pixel_ap": metrics.get("pixel_ap", np.nan),
                     "train_minutes": history["seconds"].sum() / 60})
    return pd.DataFrame(rows).set_index("network").round(3)


@dataclass
class SplitImages:
    """One subset of a run's split at the network's input size: names, images [N, C, H, W], labels
    and ground-truth masks [N, H, W] (undilated)."""

    names: list[str]
    images: torch.Tensor
    labels: np.ndarray
    masks: np.ndarray

    def show(self, index: int) -> np.ndarray:
        """Image ``index`` as a grey [H, W] array for plotting."""
        return self.images[index].mean(0).numpy()

    @property
    def clearest_defect(self) -> int:
        """The defective image with the largest defect area."""
        areas = np.where(self.labels == 1, self.masks.sum(axis=(1, 2)), -1)
        return int(areas.argmax())

    @property
    def first_clean(self) -> int:
        return int(np.flatnonzero(self.labels == 0)[0])


def split_images(config: RunConfig, subset: str = "test") -> SplitImages:
    """The images of one subset (train, val, test) of the run in ``config.out_dir``."""
    _, data = prepare_data(config, Path(config.out_dir) / "split.csv")
    dataset = getattr(data, subset)
    return SplitImages(
        names=[s.name for s in dataset.samples],
        images=torch.stack([dataset[i]["image"] for i in range(len(dataset))]),
        labels=np.array([s.label for s in dataset.samples]),
        masks=np.stack([dataset.input_mask(i) for i in range(len(dataset))]) > 0,
    )
