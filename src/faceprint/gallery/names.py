"""Subject names: the one rule the CLI and the REST service accept, and the looser one the library keeps.

A name is an identifier, not a path: it is checked and then kept verbatim, never normalised
(``"./bob"`` is not ``"bob"``). The CLI and the service accept names matching
:data:`SUBJECT_NAME_PATTERN` — a letter or digit, then up to 127 letters, digits, ``_``, ``.``,
``@`` or ``-`` — checked by :func:`check_subject_name`. The library API itself takes any
non-empty string of up to 512 characters (:func:`check_stored_name`),
so galleries made with it keep working.
"""

from __future__ import annotations

import re

from ..errors import ConfigurationError

__all__ = ["SUBJECT_NAME_PATTERN", "check_subject_name", "check_stored_name", "MAX_STORED_NAME"]

#: Subject names the CLI and the service accept (the service's path pattern).
SUBJECT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$"
_SUBJECT_NAME = re.compile(SUBJECT_NAME_PATTERN)
#: Longest name the library stores.
MAX_STORED_NAME = 512


def check_subject_name(name: object) -> str:
    """``name`` itself when it is a valid subject name for the CLI and the service, else
    :class:`~faceprint.errors.ConfigurationError` saying what is allowed."""
    if not isinstance(name, str) or _SUBJECT_NAME.fullmatch(name) is None:
        raise ConfigurationError(
            f"invalid subject name {name!r}: use 1–128 letters, digits, '_', '.', '@' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_stored_name(name: object) -> str:
    """``name`` itself when the library can store it (non-empty, ≤ 512 characters)."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigurationError(f"a subject name must be a non-empty string, got {name!r}")
    if len(name) > MAX_STORED_NAME:
        raise ConfigurationError(f"subject names are limited to {MAX_STORED_NAME} characters, got {len(name)}")
    return name
