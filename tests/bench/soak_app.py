"""Soak the window: play one preset live for N minutes with every view in sight and print, each minute, the
epochs trained, the resident memory and the history's size. Not a test: a long run on a shared machine.

    python tests/bench/soak_app.py [--minutes 30] [--preset spiral3]

Expected (issue 11): memory grows by under 50 MB over 30 minutes and epochs/s do not decay.
"""
from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--preset", default="spiral3")
    args = parser.parse_args()
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
        row = (now - start, epoch, rate, rss_mb(), h.step_loss.n + len(h.step_loss.folded))
        rows.append(row[:4] + (row[4],))
        print(f"{row[0] / 60:5.1f} min  epoch {epoch:8d}  {rate:6.1f} epochs/s  RSS {row[3]:7.1f} MB  "
              f"GUI history values {row[4]:,}  engine steps {c.trainer.step:,}", flush=True)
        if now - start >= args.minutes * 60:
            loop.quit()

    timer = QTimer()
    timer.timeout.connect(sample)
    timer.start(60_000)
    loop = QEventLoop()
    loop.exec()
    c.pause()
    first, final = rows[0], rows[-1]
    print(f"memory: {first[3]:.1f} MB after minute 1, {final[3]:.1f} MB at the end "
          f"(+{final[3] - first[3]:.1f} MB); epochs/s minute 1 {first[2]:.1f}, last minute {final[2]:.1f}")
    c.set_modified(False)
    window.close()


if __name__ == "__main__":
    main()
