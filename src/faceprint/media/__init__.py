"""Media: video, anonymisation of faces in photos and video, deduplication of photo collections."""
