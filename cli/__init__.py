"""The ``tfsal`` command line (installed as ``tfsal.cli``)."""
