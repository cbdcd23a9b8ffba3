"""gridsvc."""

import time

STARTED = time.monotonic()
"""When this process imported gridsvc (``gridsvc pair --budget`` counts its own start-up)."""
