"""Parameter types shared by the commands."""

from __future__ import annotations

import re

import click


class SizeType(click.ParamType):
    """``HxW`` (height x width), e.g. ``256x192``, as a tuple of two positive ints."""

    name = "HxW"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(value))
        if not match or min(int(match[1]), int(match[2])) < 16:
            self.fail(f"expected HxW with both sides at least 16, e.g. 256x192; got {value!r}", param, ctx)
        return int(match[1]), int(match[2])


SIZE = SizeType()
