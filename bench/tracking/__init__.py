"""Experiment trackers (``--track tensorboard,mlflow``), fed from the sweep's progress events on the driver.

A tracker sees exactly what the progress display sees (``start``, ``epoch`` with the epoch's CSV row, ``end``
with the run's row), so no method or executor knows about it, and it works under every executor. A tracker that
fails (a server gone, a full disk) costs only the tracking: one warning line, then it is switched off and the
sweep and its CSV rows go on. Each tracker is an optional extra, imported only when asked for.
"""

from bench.tracking.base import Tracker, TrackingError, tracked_emit
from bench.tracking.choose import KINDS, open_trackers

__all__ = ["KINDS", "Tracker", "TrackingError", "open_trackers", "tracked_emit"]
