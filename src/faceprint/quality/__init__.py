"""Face image quality (ISO/IEC 29794-5 style): the :class:`QualityAssessor` protocol and its backends.

- :mod:`.components`: the measured components (inter-eye distance, sharpness, exposure, pose,
  compression, noise, crop…), each a native value and a documented 0-100 mapping; pure functions.
- :mod:`.stability`: embedding stability under seeded perturbations (SER-FIQ-like).
- :mod:`.unified`: the small regressor from components (+ stability) to a unified 0-100 score,
  loaded from a JSON file shipped in the package.
- :mod:`.fiqa`: the built-in assessors ``"fiqa"`` and ``"fiqa-fast"``.
- :mod:`.select`: quality gates and best-shot selection helpers.
"""

from .base import QualityAssessor

__all__ = ["QualityAssessor"]
