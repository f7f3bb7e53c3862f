"""Verification and identification protocols: which images to compare and what the truth is.

Every reader returns one common representation (:mod:`.base`), so the runner and the metrics
never care where a protocol came from. One module per dataset family; each registers a
protocol kind (:mod:`.registry`), and :func:`open_protocol` is the one way in from user data
(``faceprint eval run --protocol KIND``):

==========  ==================  ==============================================================
kind        module              reads
==========  ==================  ==============================================================
``lfw``     :mod:`.lfw`         LFW View 1 ``pairsDevTrain.txt`` / ``pairsDevTest.txt``, View 2
                                ``pairs.txt`` (10 folds)
``bin``     :mod:`.insightface` InsightFace ``lfw.bin``, ``cfp_fp.bin``, ``agedb_30.bin``…
``ijb``     :mod:`.ijb`         IJB-B / IJB-C 1:1 template pairs and 1:N galleries and probes
``folder``  :mod:`.folder`      one folder per identity, mated + sampled non-mated pairs
``csv``     :mod:`.csvfile`     ``image_a,image_b,mated[,fold][,group]`` CSV
==========  ==================  ==============================================================

Group labels for per-group error rates: :mod:`.labels`. Users bring the data; nothing is
downloaded.
"""

from __future__ import annotations

import warnings
from typing import Any

from .base import (
    PREALIGNED_TEMPLATES,
    SINGLE_FACE_SELECTIONS,
    IdentificationProtocol,
    ImageRef,
    TemplateSet,
    VerificationProtocol,
    aggregate_templates,
    kfold_ids,
)
from .csvfile import read_csv_protocol
from .folder import IMAGE_EXTENSIONS, folder_protocol
from .ijb import read_ijb_identification, read_ijb_verification
from .insightface import read_insightface_bin
from .labels import apply_labels, read_labels
from .lfw import Pair, read_lfw_pairs, read_lfw_protocol
from .registry import ProtocolKind, ProtocolSource, open_protocol, protocol_kinds, register_protocol_kind

__all__ = [
    "Pair",
    "read_lfw_pairs",
    "ImageRef",
    "TemplateSet",
    "VerificationProtocol",
    "IdentificationProtocol",
    "PREALIGNED_TEMPLATES",
    "SINGLE_FACE_SELECTIONS",
    "IMAGE_EXTENSIONS",
    "read_lfw_protocol",
    "read_insightface_bin",
    "read_ijb_verification",
    "read_ijb_identification",
    "aggregate_templates",
    "folder_protocol",
    "read_csv_protocol",
    "kfold_ids",
    "read_labels",
    "apply_labels",
    "ProtocolSource",
    "ProtocolKind",
    "register_protocol_kind",
    "protocol_kinds",
    "open_protocol",
]


def __getattr__(name: str) -> Any:
    if name == "PROTOCOL_KINDS":  # a fixed tuple before 0.2; kinds are registered now
        warnings.warn(
            "PROTOCOL_KINDS is deprecated; use protocol_kinds() (registered kinds)", DeprecationWarning, stacklevel=2
        )
        return tuple(protocol_kinds())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
