"""faceprint."""
