"""``python -m tfsal``: the ``tfsal`` command."""

from tfsal.cli.main import main

if __name__ == "__main__":
    main()
