"""The eval framework lives in `eval/` at the repository root and installs as
`sgl_conveyor.eval`; the tests import it by that name. Only the eval's own test workload needs a
path: tiny_workload, next to this file."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # tiny_workload, the eval's own test workload
