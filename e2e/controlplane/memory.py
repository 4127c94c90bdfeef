"""Sample the resident memory of the control-plane processes while something runs.

Called by ``pytest_plugin`` (peak over a whole test session, printed in the summary) and
``bench`` (peak during a Deployment roll-out). Summing ``VmRSS`` of all components every
``interval`` seconds gives the simultaneous peak; each process's own ``VmHWM`` is kept as well.
"""

from __future__ import annotations

import threading

from e2e.controlplane import launcher, readiness

SAMPLE_SECONDS = 0.25


class PeakSampler:
    """A background thread recording the largest sum of RSS seen across all components."""

    def __init__(self, plane: launcher.ControlPlane, interval: float = SAMPLE_SECONDS) -> None:
        self._plane = plane
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self.peak_total_bytes = 0
        self.peak_per_component: dict[str, int] = {}

    def _sample(self) -> None:
        usage = self._plane.memory()
        self.peak_total_bytes = max(self.peak_total_bytes, usage.current_total)
        for name, (_, peak) in usage.per_component.items():
            self.peak_per_component[name] = max(self.peak_per_component.get(name, 0), peak)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._sample()
            except readiness.ControlPlaneError:
                return

    def start(self) -> PeakSampler:
        self._sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sampling (takes a last sample first if the plane is still up)."""
        self._stop.set()
        self._thread.join(timeout=5)
        if self._plane.info is not None:
            self._sample()
