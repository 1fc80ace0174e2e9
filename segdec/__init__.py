"""segdec: segmentation-based decision networks for surface-defect detection (Bi et al., 2022)."""

__version__ = "0.1.0"
