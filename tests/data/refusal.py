"""One bad input file, refused as the standards ask: in one line, within 5 s, and without the
memory of the process that reads it growing by 300 MB (measured in a fresh process, whose peak
before the read is its imports)."""

import json
import os
import re
import subprocess
import sys

_REFUSAL = """
import json, resource, sys, time
from tfsal.data.image_io import read_image
from tfsal.errors import ImageReadError
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.monotonic()
try:
    read_image(sys.argv[1])
    message = None
except ImageReadError as exc:
    message = str(exc)
seconds = time.monotonic() - start
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps({"message": message, "seconds": seconds, "grown_mb": grown}))
"""


def refused_quickly(path, expected) -> dict:
    """Assert that reading ``path`` is refused with a message matching ``expected`` (a regular
    expression), in one line, under 5 s and 300 MB of peak-memory growth; the measurements."""
    done = subprocess.run([sys.executable, "-c", _REFUSAL, str(path)], capture_output=True, text=True, timeout=120,
                          env=os.environ.copy())
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["message"] is not None and re.search(expected, result["message"]), result
    assert "\n" not in result["message"] and result["seconds"] < 5 and result["grown_mb"] < 300, result
    return result
