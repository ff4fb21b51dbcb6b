"""Benchmark the window against headless training in the same run: epochs/s of each, their ratio, frames/s,
event-loop stalls, the GUI thread's load and each view's frame cost, on a fresh session and on sessions with a
long recorded history (the frame cost must not grow with a curve's length). Then start-up time.

    QT_QPA_PLATFORM=xcb python tests/bench/bench_app.py   # on a real (or Xvfb) screen
    python tests/bench/bench_app.py --seconds 5 --history 0    # offscreen, fresh sessions only

Targets (issue 12): window / headless ≥ 0.85 on both problems at every history length, ≥ 30 frames/s,
event-loop p99 stall ≤ 20 ms and max ≤ 100 ms, start-up ≤ 1.5× importing torch + PySide6; issue 13: image
sessions ≥ 0.85 of headless with saliency refreshed ≥ 1/s ("probes/s": rounds of every wanted probe per
second, saliency among them; "probe ms": one round's time, which holds training, not the event loop); issue
14: the autoencoders (--problem digits-vae-2d digits-vae-8d) ≥ 0.85 with the latent views showing. Not a test: the
machines are shared and noisy, so each case alternates headless and window runs and prints medians; the
stalls come from one more window run with a 1 ms timer (that timer alone costs training a few percent).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("DL_PLAYGROUND_HOME", tempfile.mkdtemp(prefix="dlp-bench-"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import torch
from PySide6.QtCore import QElapsedTimer, QEventLoop, Qt, QTimer
from PySide6.QtWidgets import QApplication, QWidget

from app import controller as controller_module
from app.main import configure
from app.views.base import LiveView
from app.views.table import VIEWS
from app.window import MainWindow
from engine import Checkpoint, SessionSpec, Trainer
from engine.train.history import EPOCH_KEYS
from tests.bench.bench_engine import cases

TFP = {"tfp-circle": 59.0, "spiral 8x6": 13.0}  # TensorFlow Playground in Chromium on this machine, epochs/s


def app_cases() -> dict[str, SessionSpec]:
    """The engine bench's cases, the autoencoders, whose latent views (issue 14) must keep ≥ 0.85, and the
    sequence networks, whose attention, predictions and recurrent views (issue 15) must too."""
    from engine.presets import load_preset

    return cases() | {name: load_preset(name) for name in (
        "digits-vae-2d", "digits-vae-8d", "reverse-seq2seq-attention", "count-zeros-lstm", "shapes-vit")}


CENTRAL: str | None = None  # the central tab shown (--tab); None: the first that applies


def tfp_times(rate: float, name: str) -> str:
    """The window's speed as a multiple of TensorFlow Playground's on the same problem ("–" where it has none)."""
    return f"{rate / TFP[name]:.1f}×" if name in TFP else "–"


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




class FrameCost:
    """Per view: seconds in `draw` (data to items) and in painting its widgets, over a run."""

    def __init__(self) -> None:
        self.draw: dict[str, float] = defaultdict(float)
        self.paint: dict[str, float] = defaultdict(float)
        self.draws: dict[str, int] = defaultdict(int)
        self.owner: dict[int, str] = {}

    def install(self, views: dict[str, LiveView]) -> None:
        for name, view in views.items():
            inner = view.draw

            def timed(snap: Any, inner: Callable[[Any], None] = inner, name: str = name) -> None:
                t = time.perf_counter()
                inner(snap)
                self.draw[name] += time.perf_counter() - t
                self.draws[name] += 1

            view.draw = timed  # type: ignore[method-assign]
            for w in [view, *view.findChildren(QWidget)]:
                self.owner[id(w)] = name
    def uninstall(self) -> None:
        self.owner.clear()


def measure_paint(cost: FrameCost, views: dict[str, LiveView], repeats: int = 10) -> None:
    """Each view's full repaint, timed by repainting it at once ``repeats`` times after a run, booked as
    that view's paint per drawn frame (a frame repaints at most that much). Timing paint events as they come
    is not possible without Python in them: the plots paint in C++ so that Qt holds no GIL while it paints."""
    for name, view in views.items():
        t = time.perf_counter()
        for _ in range(repeats):
            view.repaint()
        cost.paint[name] = (time.perf_counter() - t) / repeats * cost.draws[name]


def with_history(spec: SessionSpec, steps: int) -> Checkpoint | None:
    """A checkpoint of a fresh run whose history already holds ``steps`` recorded steps (a long session)."""
    if steps == 0:
        return None
    tr = Trainer(spec, probes=False)
    c = tr.checkpoint()
    spe = tr.steps_per_epoch
    epochs = steps // spe
    steps = epochs * spe  # whole epochs: the file's step count must match its history
    rng = np.random.default_rng(0)
    decay = np.exp(-np.arange(steps) / (steps / 4))
    step_loss = 0.05 + 0.3 * decay * (1 + 0.3 * rng.standard_normal(steps))
    e = np.arange(epochs) * spe
    history = {"step_loss": step_loss, "epoch_train_loss": 0.05 + 0.3 * decay[e],
               "epoch_test_loss": 0.06 + 0.3 * decay[e], "epoch_train_accuracy": 1 - decay[e] / 2,
               "epoch_test_accuracy": 1 - decay[e] / 2, "epoch_val_loss": 0.055 + 0.3 * decay[e],
               "epoch_val_accuracy": 1 - decay[e] / 2, "epoch_recon_loss": 0.05 + 0.3 * decay[e],
               "epoch_kl": 0.01 + 0.1 * decay[e], "epoch_test_sequence_accuracy": 1 - decay[e],
               "epoch_long_loss": 2 + 0.3 * decay[e], "epoch_long_accuracy": 0.2 - 0.1 * decay[e],
               "epoch_long_sequence_accuracy": 0.01 * (1 - decay[e])}
    assert set(history) == {"step_loss", *EPOCH_KEYS}
    trainer = Trainer(spec, probes=False, checkpoint=dataclasses.replace(
        c, step=epochs * spe, epoch=epochs, history=history))  # folds what a long run folds
    return trainer.checkpoint()


def headless(spec: SessionSpec, checkpoint: Checkpoint | None, probes: frozenset[str], seconds: float) -> float:
    """Epochs/s of the engine alone, in a plain loop, with the probes the window's views ask for."""
    tr = Trainer(spec, probes=probes, checkpoint=checkpoint)
    e0 = tr.epoch
    t0 = time.perf_counter()
    for _ in tr.run(epochs=10**9):
        if time.perf_counter() - t0 >= seconds:
            break
    return (tr.epoch - e0 + tr.batch_index / tr.steps_per_epoch) / (time.perf_counter() - t0)


def window(spec: SessionSpec, checkpoint: Checkpoint | None, seconds: float, cost: FrameCost | None,
           stalls: bool = False) -> tuple[dict[str, float], frozenset[str]]:
    """Play in the window with every view visible. With ``stalls`` a 1 ms timer measures the event loop's
    stalls; it costs the GUI thread 3–4 % of a core and training about as much, so speed is measured in runs
    without it."""
    win = MainWindow(spec, checkpoint)
    win.resize(1600, 1000)
    win.deck.show_all()
    if CENTRAL is not None and win.tabs.isTabVisible(win.tabs.indexOf(win.views[CENTRAL])):
        win.tabs.setCurrentWidget(win.views[CENTRAL])
    win.show()
    app = QApplication.instance()
    assert app is not None
    c = win.controller
    while c._preparing or c.probes_pending:  # steady state: start-up's one-off imports are not play's cost
        app.processEvents()
        time.sleep(0.01)
    shown = [e.name for e in VIEWS if e.applies(spec) and (e.area is not None or win.views[e.name] is win.tabs.currentWidget())]
    assert all(win.views[name].showing() for name in shown)  # every dock that applies, and one central tab
    if cost is not None:
        cost.install(win.views)
    probe = StallProbe()
    frames0, e0 = c.frames_drawn, c.trainer.epoch
    rounds0, probe_s0 = c.trainer.prober.rounds, c.trainer.prober.seconds
    if stalls:
        probe.start()
    cpu0 = time.thread_time()
    c.play()
    t0 = time.perf_counter()
    loop = QEventLoop()  # a local loop: QApplication.quit would close (and prompt for) the window
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()
    c.pause()
    wall = time.perf_counter() - t0
    gui = (time.thread_time() - cpu0) / wall
    probe.stop()
    if cost is not None:
        measure_paint(cost, win.views)
        cost.uninstall()
    tr = c.trainer
    rounds = tr.prober.rounds - rounds0
    out = {"epochs/s": (tr.epoch - e0 + tr.batch_index / tr.steps_per_epoch) / wall,
           "frames/s": (c.frames_drawn - frames0) / wall, "gui": gui,
           # every wanted probe (saliency among them, for image sets) is recomputed each round
           "probes/s": rounds / wall, "probe ms": 1e3 * (tr.prober.seconds - probe_s0) / max(rounds, 1)}
    if stalls:
        out |= {"p99": float(np.percentile(probe.gaps, 99)) - 1.0, "max": max(probe.gaps) - 1.0}
    wanted = c.wanted
    c.set_modified(False)
    win.close()
    return out, wanted


def case(name: str, spec: SessionSpec, steps: int, seconds: float, rounds: int) -> FrameCost:
    ckpt = with_history(spec, steps)
    cost = FrameCost()
    w: list[dict[str, float]] = []
    h: list[float] = []
    wanted: frozenset[str] = frozenset()
    for r in range(rounds):  # alternate, so a slow spell of the shared machine hits both sides
        if r % 2 == 0:
            res, wanted = window(spec, ckpt, seconds, cost)
            w.append(res)
            h.append(headless(spec, ckpt, wanted, seconds))
        else:
            h.append(headless(spec, ckpt, wanted or frozenset({"boundary", "neurons", "weights", "grad_norms",
                                                              "dead_units"}), seconds))
            res, wanted = window(spec, ckpt, seconds, None)
            w.append(res)
    stall, _ = window(spec, ckpt, seconds, None, stalls=True)
    med = statistics.median
    win_rate, head_rate = med(r["epochs/s"] for r in w), med(h)
    ratio = med(a["epochs/s"] / b for a, b in zip(w, h, strict=True))
    print(f"{name:11s} {steps:>9,d} {head_rate:8.1f} {win_rate:8.1f} {ratio:6.2f} {tfp_times(win_rate, name):>6s} "
          f"{med(r['frames/s'] for r in w):7.1f} {med(r['gui'] for r in w):6.0%} "
          f"{stall['p99']:6.1f} {stall['max']:6.0f} {med(r['probes/s'] for r in w):8.1f} "
          f"{med(r['probe ms'] for r in w):8.1f}", flush=True)
    return cost


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
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds of play per run")
    parser.add_argument("--rounds", type=int, default=2, help="window and headless runs per case, alternated")
    parser.add_argument("--history", type=int, nargs="*", default=[0, 100_000, 1_000_000],
                        help="recorded steps preloaded before play (0: a fresh session)")
    parser.add_argument("--problem", choices=list(app_cases()), nargs="*", default=list(cases()))
    parser.add_argument("--no-startup", action="store_true")
    parser.add_argument("--tab", choices=[e.name for e in VIEWS if e.area is None],
                        help="the central view shown while playing (default: the first that applies)")
    parser.add_argument("--budget", type=float, default=None,
                        help="the GUI's frame budget, for every data set (default: the app's, lower for images)")
    args = parser.parse_args()
    global CENTRAL
    CENTRAL = args.tab
    app = QApplication.instance() or QApplication([])
    configure()
    torch.set_num_threads(1)  # as the app's training thread
    if args.budget is not None:
        controller_module.GUI_BUDGET = controller_module.IMAGE_GUI_BUDGET = args.budget
    print(f"platform: {app.platformName()}, {args.seconds:g} s per run, {args.rounds} rounds, medians; "
          "every view visible")
    print(f"{'problem':11s} {'history':>9s} {'headless':>8s} {'window':>8s} {'ratio':>6s} {'/TFP':>6s} "
          f"{'frames/s':>7s} {'GUI':>6s} {'p99 ms':>6s} {'max ms':>6s} {'probes/s':>8s} {'probe ms':>8s}")
    costs: dict[tuple[str, int], FrameCost] = {}
    for name in args.problem:
        for steps in args.history:
            costs[name, steps] = case(name, app_cases()[name], steps, args.seconds, args.rounds)
    print("\nper-view frame cost, ms per drawn frame (draw = data to items; paint = one full repaint of the view, after the run):")
    names = sorted({v for cost in costs.values() for v in (*cost.draw, *cost.paint)})
    print(f"{'problem':11s} {'history':>9s} " + " ".join(f"{n:>17s}" for n in names))
    for (name, steps), cost in costs.items():
        frames = max(cost.draws.values(), default=1) or 1
        cells = [f"{1e3 * cost.draw[n] / frames:7.2f} + {1e3 * cost.paint[n] / frames:7.2f}" for n in names]
        print(f"{name:11s} {steps:>9,d} " + " ".join(cells))
    if not args.no_startup:
        base, full = startup()
        print(f"\nstart-up: import torch + PySide6 {base:.2f} s; window usable {full:.2f} s "
              f"= {full / base:.2f}× (target ≤ 1.5×)")


if __name__ == "__main__":
    main()
