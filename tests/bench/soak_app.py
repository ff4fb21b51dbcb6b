"""Soak the window: play one preset live for N minutes with every view in sight and print, each minute, the
epochs trained, the resident memory and the history's size. Not a test: a long run on a shared machine.

    python tests/bench/soak_app.py [--minutes 30] [--preset spiral3] [--headless]

Expected (issue 11): memory grows by under 50 MB over 30 minutes and epochs/s do not decay. ``--headless``
trains the same preset without a window, with every probe on, as the reference: whatever the engine itself
does with a long history shows there too.
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("DL_PLAYGROUND_HOME", tempfile.mkdtemp(prefix="dlp-soak-"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication

from app.main import configure
from app.window import MainWindow
from engine.presets import load_preset


def rss_mb() -> float:
    """Resident memory of this process, from /proc (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def live_mb() -> float:
    """Resident memory after a garbage collection and glibc's malloc_trim: what the process holds, without the
    free pages the allocator keeps (RSS alone saws up and down by tens of MB as histories fold)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: plain RSS
    return rss_mb()


def headless(preset: str, minutes: float) -> None:
    import torch

    from engine import Trainer

    torch.set_num_threads(1)  # as the app's training thread
    tr = Trainer(load_preset(preset), probes=True)
    start = last_t = time.perf_counter()
    last_e, first = 0, None
    for _ in tr.run(epochs=10**9):
        now = time.perf_counter()
        if now - last_t >= 60:
            rate = (tr.epoch - last_e) / (now - last_t)
            first = first if first is not None else (rate, rss_mb())
            print(f"{(now - start) / 60:5.1f} min  epoch {tr.epoch:8d}  {rate:6.1f} epochs/s  RSS {rss_mb():7.1f} MB  "
                  f"headless", flush=True)
            last_t, last_e = now, tr.epoch
            if now - start >= minutes * 60:
                break
    assert first is not None
    print(f"headless: epochs/s minute 1 {first[0]:.1f}, last minute {rate:.1f}; memory +{rss_mb() - first[1]:.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--preset", default="spiral3")
    parser.add_argument("--headless", action="store_true", help="the engine alone, every probe on")
    args = parser.parse_args()
    if args.headless:
        headless(args.preset, args.minutes)
        return
    app = QApplication.instance() or QApplication(sys.argv[:1])
    configure()
    window = MainWindow(load_preset(args.preset))
    window.deck.show_all()
    window.show()
    c = window.controller
    while c._preparing:
        app.processEvents()
        time.sleep(0.01)
    c.play()
    rows: list[tuple[float, int, float, int]] = []
    start = time.perf_counter()
    last = (start, 0)

    def sample() -> None:
        nonlocal last
        now = time.perf_counter()
        epoch = c.snapshot.epoch if c.snapshot else 0
        rate = (epoch - last[1]) / (now - last[0])
        last = (now, epoch)
        h = c.history
        raw = rss_mb()
        row = (now - start, epoch, rate, live_mb(), h.step_loss.n + len(h.step_loss.folded))
        rows.append(row)
        print(f"{row[0] / 60:5.1f} min  epoch {epoch:8d}  {rate:6.1f} epochs/s  RSS {raw:7.1f} MB, held "
              f"{row[3]:7.1f} MB  GUI history values {row[4]:,}  engine steps {c.trainer.step:,}", flush=True)
        if now - start >= args.minutes * 60 - 1:
            loop.quit()

    timer = QTimer()
    timer.timeout.connect(sample)
    timer.start(60_000)
    loop = QEventLoop()
    loop.exec()
    c.pause()
    first, final = rows[0], rows[-1]
    print(f"memory held: {first[3]:.1f} MB after minute 1, {final[3]:.1f} MB at the end "
          f"(+{final[3] - first[3]:.1f} MB); epochs/s minute 1 {first[2]:.1f}, last minute {final[2]:.1f}")
    c.set_modified(False)
    window.close()


if __name__ == "__main__":
    main()
