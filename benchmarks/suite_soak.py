"""Suite `soak`: the demo with incidents off and a wine-classifier service, 30 minutes of normal traffic on a
real Prometheus and Alertmanager (fast profile) from a first start: alerts raised besides the Watchdog."""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from common import Row

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.soak import Soak, describe  # the tests' support package, once on sys.path


def suite_soak(quick: bool) -> list[Row]:
    # MLSCOPE_SOAK_MINUTES sets the length (e.g. 10); otherwise 30, or 3 with --quick.
    minutes = float(os.environ.get("MLSCOPE_SOAK_MINUTES") or (3 if quick else 30))
    with tempfile.TemporaryDirectory(prefix="mlscope-soak-") as tmp:
        soak = Soak(Path(tmp)).start()
        try:
            time.sleep(minutes * 60)
            raised, notified = soak.firing(), soak.notified()
            watchdog = soak.watchdog_arrived()
        finally:
            soak.stop()
    print(f"soak {minutes:g} min: firing besides the Watchdog: {describe(raised)}; "
          f"notified: {describe([a['labels'] for a in notified])}; Watchdog delivered: {watchdog}", flush=True)
    names = sorted({a["alertname"] for a in raised} | {a["labels"]["alertname"] for a in notified})
    case = (f"alerts raised besides the Watchdog over {minutes:g} min (demo without incidents + wine service, "
            "fast profile, from a first start)" + (": " + ", ".join(names) if names else ""))
    target = "0 (Watchdog delivered)" if watchdog else "0; the Watchdog was NOT delivered"
    return [Row("soak", case, float(len(names)), "alerts", target=target)]
