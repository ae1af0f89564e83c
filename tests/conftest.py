"""Suite-wide settings.

Hypothesis runs *derandomized* here: the property and fuzz tests explore the same examples on
every run, so the CI gate is deterministic and a red run always reproduces. To explore new
inputs (and find new bugs), run with ``HYPOTHESIS_PROFILE=explore``; a failure it finds is
kept as an ``@example`` in the test before the fix lands.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("default", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
