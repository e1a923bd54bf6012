"""Public names of a package imported on first use (PEP 562), so importing the package stays cheap."""

from __future__ import annotations

import importlib

__all__ = ["lazy_getattr"]


def lazy_getattr(package: str, names: dict[str, str], namespace: dict, before=None):
    """A module ``__getattr__`` for ``package`` that imports ``names`` (public name -> defining
    module) on first access and keeps each in ``namespace`` (the package's ``globals()``);
    ``before()``, when given, runs before each such import (e.g. a quiet TensorFlow import). A
    name that maps to ``package.name`` itself is that submodule (``tfsal.plots``)."""
    def __getattr__(name):
        if name in names:
            if before is not None:
                before()
            module = importlib.import_module(names[name])
            value = module if names[name] == f"{package}.{name}" else getattr(module, name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
