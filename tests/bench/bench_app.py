"""Benchmark the window: epochs/s, frames/s and event-loop stalls while playing, and start-up time.

    python tests/bench/bench_app.py [--seconds 10]              # offscreen
    QT_QPA_PLATFORM=xcb python tests/bench/bench_app.py          # on a real (or Xvfb) screen

Prints figures and ratios against TensorFlow Playground in Chromium on this machine (59 epochs/s on its
default problem, 13 on spiral with six hidden layers of 8). Not a test: the machines are shared and noisy.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("DL_PLAYGROUND_HOME", tempfile.mkdtemp(prefix="dlp-bench-"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
from PySide6.QtCore import QElapsedTimer, QEventLoop, Qt, QTimer
from PySide6.QtWidgets import QApplication

from app.main import configure
from app.window import MainWindow
from tests.bench.bench_engine import cases

TFP = {"tfp-circle": 59.0, "spiral 8x6": 13.0}
TARGET = {"tfp-circle": 5.0, "spiral 8x6": 10.0}


class StallProbe:
    """A 1 ms timer; the gaps between its ticks beyond 1 ms are how long the event loop was busy."""

    def __init__(self) -> None:
        self.clock = QElapsedTimer()
        self.gaps: list[float] = []
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(1)
        self.timer.timeout.connect(self.tick)
        self.last = 0

    def start(self) -> None:
        self.clock.start()
        self.last = self.clock.nsecsElapsed()
        self.timer.start()

    def tick(self) -> None:
        now = self.clock.nsecsElapsed()
        self.gaps.append((now - self.last) / 1e6)
        self.last = now

    def stop(self) -> None:
        self.timer.stop()


def play(name: str, seconds: float) -> dict[str, float]:
    spec = cases()[name]
    window = MainWindow(spec)
    window.deck.show_all()
    window.show()
    app = QApplication.instance()
    for _ in range(20):
        app.processEvents()
    assert all(view.showing() for view in window.views.values())
    c = window.controller
    while c._preparing:  # steady state: the one-off import of torch's first optimizer is start-up's cost
        app.processEvents()
        time.sleep(0.01)
    probe = StallProbe()
    frames0 = c.frames_drawn
    probe.start()
    c.play()
    t0 = time.perf_counter()
    loop = QEventLoop()  # a local loop: QApplication.quit would close (and prompt for) the window
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()
    c.pause()
    wall = time.perf_counter() - t0
    probe.stop()
    out = {"epochs/s": c.trainer.epoch / wall, "frames/s": (c.frames_drawn - frames0) / wall,
           "p99 stall ms": float(np.percentile(probe.gaps, 99)) - 1.0, "max stall ms": max(probe.gaps) - 1.0}
    c.set_modified(False)
    window.close()
    return out


def startup(repeats: int = 3) -> tuple[float, float]:
    """Median wall time of importing torch + PySide6 (with a QApplication), and of the app's window being ready
    for input (when `--startup-time` prints; the process then still finishes the import torch's first
    optimizer needs, in its training thread)."""
    root = Path(__file__).resolve().parents[2]
    base_cmd = [sys.executable, "-c", "import torch; from PySide6.QtWidgets import QApplication; QApplication([])"]
    app_cmd = [sys.executable, "-m", "app", "--startup-time"]

    def base_run() -> float:
        t = time.perf_counter()
        subprocess.run(base_cmd, check=True, capture_output=True, cwd=root)
        return time.perf_counter() - t

    def app_run() -> float:
        t = time.perf_counter()
        with subprocess.Popen(app_cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                              cwd=root) as proc:
            for line in proc.stdout:  # type: ignore[union-attr]
                if line.startswith("window usable"):
                    ready = time.perf_counter() - t
                    break
            else:
                raise RuntimeError("the app never said it was ready")
            proc.wait(timeout=60)
        return ready

    base = statistics.median(base_run() for _ in range(repeats))
    full = statistics.median(app_run() for _ in range(repeats))
    return base, full


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    configure()
    print(f"platform: {app.platformName()}, {args.seconds:g} s of play per problem, every view visible")
    for name in cases():
        r = play(name, args.seconds)
        ratio = r["epochs/s"] / TFP[name]
        print(f"{name:11s} {r['epochs/s']:7.1f} epochs/s = {ratio:4.1f}× TensorFlow Playground "
              f"(target {TARGET[name]:g}×) | {r['frames/s']:5.1f} frames/s (target ≥ 30) | "
              f"p99 stall {r['p99 stall ms']:5.1f} ms (target ≤ 20), max {r['max stall ms']:.0f} ms")
    base, full = startup()
    print(f"start-up: import torch + PySide6 {base:.2f} s; window usable {full:.2f} s "
          f"= {full / base:.2f}× (target ≤ 1.5×)")


if __name__ == "__main__":
    main()
