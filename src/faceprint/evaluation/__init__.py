"""Evaluation: protocols (which comparisons to make) and, later, ISO/IEC 19795-1 metrics."""

from .protocols import Pair, read_lfw_pairs

__all__ = ["Pair", "read_lfw_pairs"]
