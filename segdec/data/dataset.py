"""The one dataset class training uses, whatever the on-disk format.

Readers turn a dataset into a list of ``Sample`` records; a split picks which samples train,
validate and test; ``DefectDataset`` turns samples into tensors: the image, the segmentation
target at 1/8 resolution (soft values, as in Božič et al.), its pixel weights and the labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch.utils.data import Dataset, get_worker_info

from segdec.data.images import image_shape, load_image, load_mask, resize
from segdec.data.rle import RLEError, rle_decode
from segdec.errors import DataError
from segdec.model import SegDecNet


@dataclass(frozen=True)
class Sample:
    """One image of a dataset: where it is, whether it is defective, where its mask comes from."""

    name: str
    image: str
    label: int
    rles: tuple[str, ...] = ()  # Severstal: run-length strings of each defect class
    classes: tuple[int, ...] = ()  # Severstal: the ClassId of each run-length string
    rle_rows: tuple[int, ...] = ()  # Severstal: the CSV row of each, for error messages
    mask_path: str | None = None  # image-mask datasets
    source: str = ""  # where the mask is described (file and row), for error messages
    group: str = ""  # items that must stay in one split (KolektorSDD)
    fixed_subset: str = ""  # "train" or "test" where the dataset fixes it (DAGM, KSDD2, a fold)

    @classmethod
    def from_mask(cls, name: str, image: Path, mask: Path, **fields) -> Sample:
        """An image-mask sample, labelled by whether its mask has a defect pixel.

        The mask is read once here, so a mask of the wrong size or an unreadable one is reported
        while the dataset is read, not in the middle of training.
        """
        label = int(load_mask(mask, image_shape(image)).any())
        return cls(name=name, image=str(image), label=label, mask_path=str(mask),
                   source=str(mask), **fields)

    @property
    def has_mask(self) -> bool:
        """Whether pixel labels exist, so the sample can be one of the n_seg labelled ones."""
        return self.mask_path is not None or bool(self.rles)

    def mask(self, shape: tuple[int, int]) -> np.ndarray:
        """Binary mask at the image's ``shape``: the union of every defect class."""
        if self.mask_path is not None:
            return load_mask(self.mask_path, shape)
        mask = np.zeros(shape, dtype=np.uint8)
        for class_mask in self.class_masks(shape).values():
            mask |= class_mask
        return mask

    def class_masks(self, shape: tuple[int, int]) -> dict[int, np.ndarray]:
        """One binary mask per defect class (run-length datasets)."""
        masks: dict[int, np.ndarray] = {}
        rows = self.rle_rows or (None,) * len(self.rles)
        for class_id, rle, row in zip(self.classes, self.rles, rows, strict=True):
            try:
                masks[class_id] = masks.get(class_id, 0) | rle_decode(rle, shape)
            except RLEError as err:
                where = f"{self.source or self.name}" + (f" row {row}" if row else "")
                raise DataError(f"{where} (ClassId {class_id}): {err}; fix or drop that "
                                "row") from None
        return masks


# A split (segdec.data.splits, segdec.data.bozic): one row per image the run uses, with its subset
# (train, val, test), label and whether its pixel labels train.
SPLIT_COLUMNS = ["image", "subset", "label", "has_pixel_label"]

# What ``resize`` + ``image_tensor`` do to an image; checkpoints record it so that a later change
# cannot silently feed an old model differently prepared pixels.
PREPROCESSING = {"resize": "stretch-bilinear", "scale": 1 / 255}


def image_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 [H, W] or [H, W, 3] -> float [C, H, W] in [0, 1]: the network's only preprocessing.

    Training, ``segdec predict`` and the ONNX model's documented input all go through this.
    """
    pixels = torch.from_numpy(image.astype(np.float32))  # a copy: PIL's arrays are read-only
    pixels = pixels[None] if pixels.ndim == 2 else pixels.permute(2, 0, 1)
    return pixels.div_(255.0)


def downsample_mask(mask: torch.Tensor) -> torch.Tensor:
    """[N, 1, H, W] -> [N, 1, H/8, W/8] soft values: reflection-pad 8, average-pool 17, stride 8."""
    padded = F.pad(mask, (8, 8, 8, 8), mode="reflect")
    return F.avg_pool2d(padded, kernel_size=17, stride=SegDecNet.output_stride)


def distance_weights(mask: np.ndarray, power: float, max_weight: float) -> np.ndarray:
    """Božič's weighting: defect pixels by (distance to the border / max) ** power * max_weight."""
    weights = np.ones(mask.shape, dtype=np.float32)
    if mask.any():
        distance = ndimage.distance_transform_edt(mask)
        weights[mask > 0] = ((distance / distance.max()) ** power * max_weight)[mask > 0]
    return weights


@dataclass(frozen=True)
class TargetOptions:
    size: tuple[int, int]  # (H, W), multiples of 8
    channels: int = 1
    bit_depth: int | None = None  # the run's, by which grey images deeper than 8 bits are scaled
    dilate: int = 0
    distance_transform: bool = True
    dt_power: float = 2.0
    dt_max_weight: float = 1.0


class DefectDataset(Dataset):
    """Tensors for training and evaluation; decoded samples are cached in memory (uint8), in the
    main process only: each DataLoader worker holds a copy of the dataset, so caching there
    would keep the decoded set once per worker and loader (host memory growing with both),
    while the workers decode in parallel with training anyway."""

    def __init__(
        self,
        samples: list[Sample],
        has_pixel_label: list[bool],
        options: TargetOptions,
        cache: bool = True,
    ) -> None:
        if len(samples) != len(has_pixel_label):
            raise ValueError("one has_pixel_label flag per sample is needed")
        self.samples = samples
        self.has_pixel_label = has_pixel_label
        self.options = options
        self.cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = (
            {} if cache else None
        )

    def __len__(self) -> int:
        return len(self.samples)

    def labels(self) -> np.ndarray:
        return np.array([s.label for s in self.samples], dtype=np.int64)

    def input_image(self, index: int, channels: int | None = None) -> np.ndarray:
        """One image at the network's input size, read at the run's bit depth as the network read
        it (a figure by another scaling would show a dark image brighter than the network saw
        it); grey with ``channels=1``, else in the dataset's channels."""
        sample, options = self.samples[index], self.options
        image = load_image(sample.image, channels or options.channels, options.bit_depth)
        return resize(image, options.size)

    def input_mask(self, index: int) -> np.ndarray:
        """The undilated ground-truth mask of one image at the network's input size."""
        sample = self.samples[index]
        return resize(sample.mask(image_shape(sample.image)), self.options.size, mask=True)

    def _decode(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(image uint8 [H, W(, C)], seg target [1, h, w], pixel weights [1, h, w])."""
        sample, opts = self.samples[index], self.options
        image = load_image(sample.image, opts.channels, opts.bit_depth)
        native = image.shape[:2]
        image = resize(image, opts.size)
        h, w = (side // SegDecNet.output_stride for side in opts.size)
        if not (sample.label and self.has_pixel_label[index]):
            # Negatives are fully labelled by definition; weak positives have gamma = 0.
            return image, np.zeros((1, h, w), np.float32), np.ones((1, h, w), np.float32)
        mask = resize(sample.mask(native), opts.size, mask=True)
        if opts.dilate > 1:
            mask = ndimage.binary_dilation(mask, np.ones((opts.dilate, opts.dilate))).astype(
                np.uint8
            )
        weights = (
            distance_weights(mask, opts.dt_power, opts.dt_max_weight)
            if opts.distance_transform
            else np.ones(mask.shape, np.float32)
        )
        stacked = torch.from_numpy(np.stack([mask.astype(np.float32), weights])[:, None])
        target, weight = downsample_mask(stacked).numpy()
        return image, target, weight

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if self.cache is not None and index in self.cache:
            image, target, weight = self.cache[index]
        else:
            image, target, weight = self._decode(index)
            if self.cache is not None and get_worker_info() is None:
                self.cache[index] = (image, target, weight)
        return {
            "image": image_tensor(image),
            "seg_target": torch.from_numpy(target),
            "seg_weight": torch.from_numpy(weight),
            "label": torch.tensor(self.samples[index].label, dtype=torch.float32),
            "has_pixel_label": torch.tensor(
                bool(self.has_pixel_label[index]) or not self.samples[index].label
            ),
            "index": torch.tensor(index),
        }


def split_folders(root: Path, train: str, test: str) -> list[tuple[Path, str]]:
    """A dataset's own train and test folders with the ``fixed_subset`` of their samples.

    A copy that holds only one of them has no fixed subsets: it is split like any other dataset.
    """
    found = [(root / name, subset) for name, subset in ((train, "train"), (test, "test"))
             if (root / name).is_dir()]
    if not found:
        raise DataError(f"{root} has neither a {train} nor a {test} folder; check data_root")
    return found if len(found) == 2 else [(found[0][0], "")]
