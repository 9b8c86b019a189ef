"""Session-wide settings of the test suite.

The emulated cluster runs at `MGHA_TIME_SCALE` (sim/timescale.py). The suite uses 0.25 unless the
environment says otherwise: every timing of the chart, of Kubernetes (probes, back-offs, node grace) and
of the emulators is a quarter of the real one, so their relations stay those of a real cluster, while a
scenario that takes 2 minutes at the chart's timings takes 30 s. Lower factors shrink the probe and lease
timings below what two shared cores answer in reliably (an agent's HTTP answer, a process start), which
is a cost of the machine, not of the timings. The published bench (`make bench`) runs at 1.0.
"""

from __future__ import annotations

import os

TEST_TIME_SCALE = "0.25"
os.environ.setdefault("MGHA_TIME_SCALE", TEST_TIME_SCALE)
