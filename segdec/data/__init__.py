"""Datasets: readers for each on-disk format, splits, and the tensors training uses."""

from segdec.data.dagm import read_dagm
from segdec.data.dataset import DefectDataset, Sample, TargetOptions, downsample_mask
from segdec.data.folder import read_folder
from segdec.data.images import load_image
from segdec.data.ksdd import read_ksdd
from segdec.data.ksdd2 import read_ksdd2
from segdec.data.rle import RLEError, rle_decode, rle_encode
from segdec.data.severstal import read_severstal
from segdec.data.splits import load_split, make_split, save_split
from segdec.data.synthetic import synthesize
from segdec.errors import DataError

__all__ = [
    "DataError",
    "DefectDataset",
    "RLEError",
    "Sample",
    "TargetOptions",
    "downsample_mask",
    "load_image",
    "load_split",
    "make_split",
    "read_dagm",
    "read_folder",
    "read_ksdd",
    "read_ksdd2",
    "read_severstal",
    "rle_decode",
    "rle_encode",
    "save_split",
    "synthesize",
]
