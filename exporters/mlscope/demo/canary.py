"""The demo's canary: version 1.1.0 of the demo classifier behind a traffic split, with a defect.

Registered on import as the ``canary-defect`` incident (scheduled after the standard four): the canary goes
live at 20 % of the traffic and fails 30 % of its requests; ``ModelCandidateWorseThanBaseline`` fires, the
alert receiver runs ``mlscope rollback`` against the demo's control endpoint (``/traffic``, bearer token in
the state folder's ``control-token``) and the canary's share drops to 0. The incident's end retires the canary
if the rollback has not (docs/versions.md#the-demo).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..versions import TrafficSplit
from .incidents import Incident, ScheduleEntry, register
from .workload import SyntheticService

CANARY = "1.1.0"
CANARY_SHARE = 0.2
DEFECT_ERROR_RATE = 0.3


@dataclass
class Canary:
    """The canary's service and the split that routes to it beside the ``stable`` version."""

    split: TrafficSplit
    service: SyntheticService
    stable: str
    version: str = CANARY

    def go_live(self) -> str:
        self.service.faults.error_rate = DEFECT_ERROR_RATE
        self.split.set_weights({self.stable: 1 - CANARY_SHARE, self.version: CANARY_SHARE},
                               reason="demo: the canary goes live")
        return f"{self.version} takes {CANARY_SHARE:.0%} of the traffic; {DEFECT_ERROR_RATE:.0%} of its requests fail"

    def retire(self) -> str:
        share = self.split.shares()[self.version]
        self.split.set_weights({self.stable: 1.0, self.version: 0.0}, reason="demo: the canary incident ends")
        self.service.faults.error_rate = 0.0
        return f"{self.version} share {share:g} -> 0" + (" (the rollback had already run)" if share == 0 else "")


INCIDENT = register(Incident(
    "canary-defect", f"canary {CANARY} goes live at {CANARY_SHARE:.0%} of the traffic and fails "
                     f"{DEFECT_ERROR_RATE:.0%} of its requests (the rollback sends its traffic back)",
    lambda demo: demo.canary.go_live(), lambda demo: demo.canary.retire(), ScheduleEntry(50, 120)))
