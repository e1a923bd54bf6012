"""Model files shipped with tfsal (see README.md in this folder)."""
