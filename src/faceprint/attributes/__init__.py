"""Demographic attribute estimation (age, apparent gender): a face in, an :class:`AttributeEstimate` out.

The estimates are model outputs with a known error, not facts about a person. Their main use
is fairness evaluation of data sets without demographic labels
(``faceprint eval run --groups predicted-gender,predicted-age-band``); the report then says the
groups are predicted and states the attribute model's measured error.

Backends register in :data:`faceprint.registry.attribute_estimators`; the built-in one is
``"dlib-age-gender"`` (:mod:`.dlib_age_gender`, extra ``faceprint[attributes]``).
"""

from __future__ import annotations

from .base import AGE_BANDS, AttributeEstimate, AttributeEstimator, age_band

__all__ = ["AGE_BANDS", "AttributeEstimate", "AttributeEstimator", "age_band"]
