"""Media: faces in video (:mod:`.video`, :mod:`.tracking`), anonymisation of faces in photos and
video (:mod:`.anonymize`), deduplication of photo collections (:mod:`.dedup`); each module imports
its own dependencies.

Importing this package loads no model and no OpenCV; import the submodules for their API.
"""

from __future__ import annotations
