"""Media: faces in video (:mod:`.video`, :mod:`.tracking`); each module imports its own dependencies.

Importing this package loads no model and no OpenCV; import the submodules for their API.
"""

from __future__ import annotations
