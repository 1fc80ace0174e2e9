"""segdec: segmentation-based decision networks for surface-defect detection (Bi et al., 2022)."""

import torch

from segdec.runtime import check_torch

__version__ = "0.1.0"

# Before any module of the package is used: an older torch fails here, saying what to do,
# rather than with a TypeError in the middle of training.
check_torch(torch.__version__)
