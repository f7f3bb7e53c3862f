"""Explanations of a 1:1 comparison: where in two face chips the model's similarity comes from.

Methods (registry :data:`faceprint.registry.explainers`, names for ``faceprint explain --method``):

``occlusion`` (:mod:`.occlusion`)
    Model-agnostic sliding window: the drop in cosine similarity when each region of A (and of
    B) is hidden. All occluded chips go through the embedder in one batched call. The reference
    the other methods are checked against.
``xcos`` (:mod:`.xcos`)
    xCos-style patch similarity: cosines between the spatial feature vectors of the two chips at
    a late convolutional layer, weighted so that their sum approximates the final cosine, plus
    the strongest patch-to-patch correspondences. Needs an embedder that shows its feature maps
    (the dlib ResNet does, through :mod:`.features`).

:func:`faceprint.explain.pair.explain_pair` explains two detected faces and decides the pair;
faithfulness (deletion / insertion curves, the randomised-weights sanity check) is measured by
:mod:`faceprint.evaluation.faithfulness`. Gradient methods (FGGB, similarity Grad-CAM) are not
here: onnxruntime gives no gradients, and a second autodiff build of the network would be a
heavy dependency of the default install.

What a map means, and what it does not: :data:`LIMITS`.
"""

from __future__ import annotations

from .base import LIMITS, Correspondence, Explainer, Explanation, FeatureMapEmbedder, check_chip_pair

__all__ = ["LIMITS", "Correspondence", "Explainer", "Explanation", "FeatureMapEmbedder", "check_chip_pair"]
