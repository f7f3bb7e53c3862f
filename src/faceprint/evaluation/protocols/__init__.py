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

from . import base, csvfile, folder, ijb, insightface, labels, lfw, matched, registry
from .base import *  # noqa: F403
from .csvfile import *  # noqa: F403
from .folder import *  # noqa: F403
from .ijb import *  # noqa: F403
from .insightface import *  # noqa: F403
from .labels import *  # noqa: F403
from .lfw import *  # noqa: F403
from .matched import *  # noqa: F403
from .registry import *  # noqa: F403
from .registry import protocol_kinds

#: every family module's public names (each module's ``__all__`` says what it offers)
__all__ = [
    *lfw.__all__,
    *base.__all__,
    *insightface.__all__,
    *ijb.__all__,
    *folder.__all__,
    *csvfile.__all__,
    *labels.__all__,
    *matched.__all__,
    *registry.__all__,
]


def __getattr__(name: str) -> Any:
    if name == "PROTOCOL_KINDS":  # a fixed tuple before 0.2; kinds are registered now
        warnings.warn(
            "PROTOCOL_KINDS is deprecated; use protocol_kinds() (registered kinds)", DeprecationWarning, stacklevel=2
        )
        return tuple(protocol_kinds())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
