"""What the alert receiver keeps and shows: the record of every alert and the receiver's pages.

``AlertStore`` (``record.py``, standard library only) is the one persistent record per alert fingerprint
that the receiver's JSON lines, its pages and later actions (incident snapshots, rollbacks) read;
``pages.py`` renders the index, each alert's page and serves the runbooks. The webhook receiver itself
(HTTP, commands, Loki shipping) is ``mlscope.stack.alertreceiver``.
"""
from __future__ import annotations

from .record import AlertRecord, AlertStore, Change, Seen

__all__ = ["AlertRecord", "AlertStore", "Change", "Seen"]
