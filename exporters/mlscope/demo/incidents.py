"""The demo's incidents: one registry of small objects, and the runner that schedules and injects them.

An :class:`Incident` names what it changes on the demo (``apply``/``revert``, each returning a line
saying what changed) and, optionally, its :class:`ScheduleEntry` (where it falls in the cycle, how long it
lasts, the calm after it). A capability adds its own with :func:`register` (pipelines, canaries,
generative endpoints...) without editing the schedule: :class:`IncidentRunner` reads the registry at
every cycle, ``mlscope demo inject NAME`` and ``POST /faults`` look names up in it, and every start and
end is one line on the console with the time.
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any


def positive_seconds(seconds: float) -> float:
    """``seconds`` if it is a finite number above 0, else a ValueError that says so."""
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"an incident lasts a positive number of seconds, got {seconds!r}")
    return seconds


@dataclass(frozen=True)
class ScheduleEntry:
    """Where an incident falls in the demo's cycle: ``order`` sorts the entries; each starts after the
    previous one's ``seconds`` and ``calm_s`` (so its start offset follows from those before it)."""

    order: float
    seconds: float
    calm_s: float = 60.0


@dataclass(frozen=True)
class Incident:
    """One injectable fault. ``apply``/``revert`` change the demo (any object the incident knows how to
    reach) and return what they changed, for the console line."""

    name: str
    description: str
    apply: Callable[[Any], str]
    revert: Callable[[Any], str]
    schedule: ScheduleEntry | None = None


class UnknownIncident(ValueError):
    """A name no incident is registered under; the message lists the registered ones."""


@dataclass
class IncidentRegistry:
    """Incidents by name (one registry, :data:`INCIDENTS`, serves the demo)."""

    _incidents: dict[str, Incident] = field(default_factory=dict)

    def register(self, incident: Incident, *, replace: bool = False) -> Incident:
        if incident.name in self._incidents and not replace:
            raise ValueError(f"an incident named {incident.name!r} is already registered")
        self._incidents[incident.name] = incident
        return incident

    def unregister(self, name: str) -> None:
        self._incidents.pop(name, None)

    def get(self, name: str) -> Incident:
        try:
            return self._incidents[name]
        except KeyError:
            raise UnknownIncident(f"unknown incident {name!r}; registered: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return sorted(self._incidents)

    def __iter__(self) -> Iterator[Incident]:
        return iter(list(self._incidents.values()))

    def plan(self) -> list[tuple[float, Incident]]:
        """One cycle: (start offset in seconds, incident) for every scheduled incident, in order."""
        offset, planned = 0.0, []
        entries = sorted(((i.schedule, i) for i in self if i.schedule), key=lambda e: (e[0].order, e[1].name))
        for entry, incident in entries:
            planned.append((offset, incident))
            offset += entry.seconds + entry.calm_s
        return planned


INCIDENTS = IncidentRegistry()
FIRST_CALM_S = 60.0  # a calm first minute: the baseline every panel compares with


def _clock(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s"


def schedule_summary(registry: IncidentRegistry = INCIDENTS, first_calm_s: float = FIRST_CALM_S) -> str:
    """The schedule as the console says it, from the registry: when each incident starts, how long a cycle is."""
    planned = registry.plan()
    if not planned:
        return "no scheduled incidents (inject one with `mlscope demo inject NAME`)"
    cycle = sum(i.schedule.seconds + i.schedule.calm_s for _, i in planned if i.schedule)
    starts = ", ".join(f"{incident.name} at {_clock(first_calm_s + offset)}" for offset, incident in planned)
    on_demand = sorted(i.name for i in registry if not i.schedule)
    return (f"{starts} after the start, then again every {_clock(cycle)}"
            + (f"; on demand: {', '.join(on_demand)}" if on_demand else ""))


def register(incident: Incident, *, replace: bool = False) -> Incident:
    """Add ``incident`` to the demo's registry (:data:`INCIDENTS`)."""
    return INCIDENTS.register(incident, replace=replace)


def console(message: str) -> None:
    """One ``mlscope:`` line on stdout, flushed."""
    print(f"mlscope: {message}", flush=True)


@dataclass
class IncidentRunner:
    """Starts incidents (on demand or on the registry's schedule), ends them on time, and says so."""

    target: Any
    registry: IncidentRegistry = field(default_factory=lambda: INCIDENTS)
    say: Callable[[str], None] = console
    first_calm_s: float = FIRST_CALM_S
    tick_s: float = 0.5
    _active: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def inject(self, name: str, seconds: float) -> None:
        """Start incident ``name`` now for ``seconds`` (it ends by itself); an active one is extended."""
        incident = self.registry.get(name)
        positive_seconds(seconds)
        with self._lock:
            if name in self._active:
                self._active[name] = time.monotonic() + seconds
                self._line(f"incident {name} extended: ends in {seconds:g}s")
                return
            changed = incident.apply(self.target)
            self._active[name] = time.monotonic() + seconds
        self._line(f"incident {name} started for {seconds:g}s: {incident.description} ({changed})")

    def active(self) -> dict[str, float]:
        """Incidents in progress and the seconds they have left."""
        now = time.monotonic()
        with self._lock:
            return {name: round(end - now, 1) for name, end in self._active.items()}

    def end_due(self) -> None:
        """Revert every incident whose time is up."""
        now = time.monotonic()
        with self._lock:
            due = [name for name, end in self._active.items() if end <= now]
            ended = [(name, self.registry.get(name).revert(self.target)) for name in due]
            for name in due:
                del self._active[name]
        for name, changed in ended:
            self._line(f"incident {name} ended ({changed})")

    def expire(self, stop: threading.Event) -> None:
        while not stop.wait(self.tick_s):
            self.end_due()

    def run_schedule(self, stop: threading.Event) -> None:
        """After the first calm, the registry's plan in a loop (re-read every cycle)."""
        if stop.wait(self.first_calm_s):
            return
        while not stop.is_set():
            planned = self.registry.plan()
            if not planned and stop.wait(self.tick_s):
                return
            for _, incident in planned:
                assert incident.schedule is not None
                self.inject(incident.name, incident.schedule.seconds)
                if stop.wait(incident.schedule.seconds + incident.schedule.calm_s):
                    return

    def _line(self, message: str) -> None:
        self.say(f"{time.strftime('%H:%M:%S')} {message}")


def setting(name: str, description: str, path: str, value: float, calm: float | str,
            schedule: ScheduleEntry | None = None) -> Incident:
    """An incident that sets the attribute at dotted ``path`` (from the demo) to ``value`` and back to
    ``calm`` (a number, or the dotted path of the demo attribute that holds the calm value)."""
    owner_path, _, attribute = path.rpartition(".")

    def put(demo: Any, new: float) -> str:
        where = _resolve(demo, owner_path)
        old = getattr(where, attribute)
        setattr(where, attribute, new)
        return f"{path} {old:g} -> {new:g}"

    def calm_value(demo: Any) -> float:
        if isinstance(calm, str):
            return float(_resolve(demo, calm))
        return calm

    return Incident(name, description, lambda demo: put(demo, value), lambda demo: put(demo, calm_value(demo)),
                    schedule)


def _resolve(demo: Any, path: str) -> Any:
    for part in path.split(".") if path else []:
        demo = getattr(demo, part)
    return demo


__all__ = ["Incident", "IncidentRegistry", "IncidentRunner", "INCIDENTS", "ScheduleEntry", "UnknownIncident",
           "console", "positive_seconds", "register", "setting"]
