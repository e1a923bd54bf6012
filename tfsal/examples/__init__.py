"""Synthetic example mammograms shipped with tfsal for ``tfsal explain --demo`` (see README.md here)."""
