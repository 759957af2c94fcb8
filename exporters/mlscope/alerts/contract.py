"""The contract of a per-alert command (``alert_commands`` of the alert receiver), shared by the receiver and
the actions mlscope ships (``mlscope rollback``).

What the command receives: the alert as JSON on stdin (``labels``, ``annotations``, ``fingerprint``,
``startsAt``...), and in its environment ``MLSCOPE_ALERTNAME``, ``MLSCOPE_ALERT_STATUS``,
``MLSCOPE_FINGERPRINT``, ``MLSCOPE_STARTS_AT`` and ``MLSCOPE_LABEL_<NAME>`` for each label (upper case).
What it answers: its exit status, :data:`DONE`, :data:`NOT_APPLICABLE` or anything else (failed). It must be
idempotent: the receiver runs it once per alert state change (not while the same command still runs for the same
alert, its labels: that notification is counted ``skipped_running``), and an operator may run it again
by hand.
"""
from __future__ import annotations

DONE = 0            # the action took effect, or its effect was already in place
FAILED = 1          # any status but DONE and NOT_APPLICABLE counts as failed
NOT_APPLICABLE = 3  # nothing to do for this alert (not the action's kind, an unknown model or version)

#: The ``result`` label of mlscope_alert_commands_total for each outcome; ``skipped_running``: not started, the
#: same command was still running for the same alert (the same labels: what the command is given).
RESULTS = ("done", "not_applicable", "failed", "timeout", "skipped_running")


def result_of(exit_status: int) -> str:
    """The result a command's exit status stands for."""
    return {DONE: "done", NOT_APPLICABLE: "not_applicable"}.get(exit_status, "failed")
