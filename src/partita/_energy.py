"""Energy and CO2 of a job, measured in its process (optional: the ``energy`` extra).

The job runner asks :func:`start` for a meter before the task runs and :meth:`Running.stop`
when it ends; the figures go to the job's environment record under ``"energy"``. Which meter:

- ``PARTITA_ENERGY=0``: none.
- ``PARTITA_ENERGY_METER=module``: that module's ``start(folder) -> meter``, where
  ``meter.stop()`` returns a dict with any of the keys of :data:`KEYS` (the interface any
  meter implements; the tests use a fake one).
- otherwise codecarbon, when it is installed (``pip install partita[energy]``), offline
  (no location lookup over the network, no file written: nothing outside the job folder).
  Otherwise nothing: no import, no thread, nothing printed, nothing waited for.

Accounting never fails a job: a meter that raises is recorded as ``{"error": ...}``.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

__all__ = ["KEYS", "Running", "start"]

#: What a meter reports: kWh, kg of CO2-equivalent, seconds, and where the figures come from.
KEYS = (
    "energy_kwh",
    "cpu_energy_kwh",
    "gpu_energy_kwh",
    "ram_energy_kwh",
    "emissions_kg",
    "duration_seconds",
    "country",
    "meter",
)


class Running:
    """A meter started for one job (in a thread: the task does not wait for it to start)."""

    def __init__(self, starter: Any, folder: str) -> None:
        self._meter: Any = None
        self._error: str | None = None
        self._thread = threading.Thread(
            target=self._start, args=(starter, folder), name="partita-energy", daemon=True
        )
        self._thread.start()

    def _start(self, starter: Any, folder: str) -> None:
        try:
            self._meter = starter(folder)
        except BaseException as exc:  # never fail a job over its accounting
            self._error = f"{type(exc).__name__}: {exc}"

    def stop(self) -> dict[str, Any]:
        """The figures of the meter (waits for it to have started)."""
        self._thread.join()
        if self._meter is None:
            return {"error": self._error or "the meter did not start"}
        try:
            figures = self._meter.stop()
        except BaseException as exc:
            return {"error": f"{type(exc).__name__}: {exc}"}
        if not isinstance(figures, dict):
            return {"error": f"the meter returned {type(figures).__name__}, not a dict"}
        out: dict[str, Any] = {}
        for key in KEYS:
            value = figures.get(key)
            if isinstance(value, bool) or value is None:
                continue
            if isinstance(value, int | float) and value == value:
                out[key] = float(value)
            elif isinstance(value, str):
                out[key] = value
        return out


#: Whether each meter package is installed, as a warm process (the fork server) found it
#: once for the jobs forked from it (:func:`probe`); a spawned job looks it up itself.
_probed: dict[str, bool] = {}


def probe() -> None:
    """Look up the installed meters now, once, for the jobs this process will fork."""
    _probed["codecarbon"] = _installed("codecarbon")


def _installed(name: str) -> bool:
    """Whether ``name`` can be imported, without importing it."""
    if name in sys.modules:
        return True
    from importlib.util import find_spec

    try:
        return find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _starter() -> Any:
    """The ``start(folder)`` function of the meter to use, or ``None``."""
    if os.environ.get("PARTITA_ENERGY", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    chosen = os.environ.get("PARTITA_ENERGY_METER")
    if chosen:

        def start_chosen(folder: str) -> Any:
            import importlib

            return importlib.import_module(chosen).start(folder)

        return start_chosen
    found = _probed.get("codecarbon")
    if found if found is not None else _installed("codecarbon"):
        return _codecarbon
    return None


def start(folder: str) -> Running | None:
    """Start measuring this process for the job in ``folder`` (``None``: no meter)."""
    starter = _starter()
    if starter is None:
        return None
    return Running(starter, folder)


class _CodeCarbon:
    def __init__(self, folder: str) -> None:
        import logging

        from codecarbon import OfflineEmissionsTracker  # type: ignore[import-not-found]

        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        options: dict[str, Any] = {
            "save_to_file": False,
            "save_to_logger": False,
            "save_to_prometheus": False,
            "output_dir": folder,
            "log_level": "error",
            "allow_multiple_runs": True,  # jobs run side by side: no lock file in /tmp
            "tracking_mode": "process",
        }
        country = os.environ.get("PARTITA_ENERGY_COUNTRY")
        if country:
            options["country_iso_code"] = country
        self.tracker = OfflineEmissionsTracker(**options)
        self.tracker.start()

    def stop(self) -> dict[str, Any]:
        import codecarbon

        emissions = self.tracker.stop()
        data = getattr(self.tracker, "final_emissions_data", None)
        out: dict[str, Any] = {
            "emissions_kg": emissions,
            "meter": f"codecarbon {getattr(codecarbon, '__version__', '?')}",
        }
        if data is not None:
            out.update(
                energy_kwh=getattr(data, "energy_consumed", None),
                cpu_energy_kwh=getattr(data, "cpu_energy", None),
                gpu_energy_kwh=getattr(data, "gpu_energy", None),
                ram_energy_kwh=getattr(data, "ram_energy", None),
                duration_seconds=getattr(data, "duration", None),
                country=getattr(data, "country_iso_code", None) or "world average",
            )
        return out


def _codecarbon(folder: str) -> _CodeCarbon:
    return _CodeCarbon(folder)
