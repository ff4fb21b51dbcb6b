"""The training thread: the engine's generator runs in a QThread worker (ARCHITECTURE.md, "Threads").

The GUI never calls into the worker through queued signals: a slot that loops never sees them. It sets
``threading.Event``s that the loop checks at every step boundary. Snapshots go the other way through a
locked latest-slot; the worker emits a payload-free ``snapshot_ready`` only when the slot goes from empty
to full, so a busy GUI throttles the producer instead of queueing frames.
"""
from __future__ import annotations

import threading
import traceback
import weakref
from dataclasses import dataclass

from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine import EngineError, Snapshot, Trainer


@dataclass(frozen=True)
class Job:
    """What the worker should do next: play until paused, one epoch or one batch."""

    kind: str  # play | epoch | batch | prepare (build the optimizer: torch's first one imports for ~2 s)


class TrainingWorker(QObject):
    """Lives in the training thread. Controlled only through `request`, `pause` and `quit`."""

    snapshot_ready = Signal()  # payload-free: the GUI takes the latest snapshot from `take()`
    errored = Signal(str)
    idle = Signal()  # a job ended (paused, finished, diverged, stopped early or failed)
    finished = Signal()  # the loop has ended; the thread may quit

    def __init__(self) -> None:
        super().__init__()
        self._slot_lock = threading.Lock()
        self._slot: Snapshot | None = None
        self._wake = threading.Event()
        self._pause = threading.Event()
        self._quit = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._job: Job | None = None
        self._trainer: Trainer | None = None

    # --- called from the GUI thread --------------------------------------------------------------

    def request(self, trainer: Trainer, job: Job) -> None:
        """Start a job on a trainer (the worker must be idle)."""
        self._trainer = trainer
        self._job = job
        self._pause.clear()
        self._idle.clear()
        self._wake.set()

    def pause(self, wait: float = 5.0) -> bool:
        """Ask the running job to stop at the next step boundary and wait until it has. True when idle."""
        self._pause.set()
        return self._idle.wait(wait)

    @property
    def busy(self) -> bool:
        return not self._idle.is_set()

    def quit(self) -> None:
        """End the loop (after the current step)."""
        self._quit.set()
        self._pause.set()
        self._wake.set()

    def take(self) -> Snapshot | None:
        """The latest snapshot (with every undrawn step's loss folded in), emptying the slot."""
        with self._slot_lock:
            snap, self._slot = self._slot, None
        return snap

    def publish(self, snap: Snapshot) -> None:
        """Put a snapshot in the slot (from either thread); signal only if the slot was empty."""
        with self._slot_lock:
            was_empty = self._slot is None
            self._slot = snap if was_empty else snap.absorb(self._slot)  # type: ignore[arg-type]
        if was_empty:
            self.snapshot_ready.emit()

    # --- the training thread ---------------------------------------------------------------------

    @Slot()
    def loop(self) -> None:
        """Wait for jobs and run them until `quit`. Exceptions become `errored`; `finished` always follows."""
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._quit.is_set():
                    break
                job, trainer = self._job, self._trainer
                if job is None or trainer is None:
                    continue
                self._job = None
                try:
                    self._run(trainer, job)
                except EngineError as exc:
                    self.errored.emit(str(exc))
                except Exception as exc:  # noqa: BLE001 (the app must keep running whatever the engine raises)
                    last = traceback.format_exception_only(exc)[-1].strip()
                    self.errored.emit(f"training stopped by an unexpected error: {last}")
                finally:
                    self._idle.set()  # only after the last snapshot is in the slot
                    self.idle.emit()
        finally:
            self._idle.set()
            self.finished.emit()

    def _run(self, trainer: Trainer, job: Job) -> None:
        if job.kind == "prepare":
            trainer.optimizer  # noqa: B018 (built here, off the GUI thread)
            return
        if job.kind == "batch":
            gen = trainer.run(steps=1, stop=self._pause)
        elif job.kind == "epoch":
            # Finish the epoch in progress (a batch step may have left one half done).
            left = trainer.steps_per_epoch - trainer.batch_index
            gen = trainer.run(steps=left, stop=self._pause)
        else:
            gen = trainer.run(stop=self._pause)
        for snap in gen:
            self.publish(snap)


LIVE: weakref.WeakSet[TrainingThread] = weakref.WeakSet()  # tests check that none is left running


class TrainingThread:
    """Owns the QThread and its worker; `shutdown` is the one safe way to end them (ARCHITECTURE.md, "Threads")."""

    def __init__(self, parent: QObject) -> None:
        LIVE.add(self)
        self.thread = QThread(parent)
        self.thread.setObjectName("training")
        self.worker = TrainingWorker()
        self.worker.moveToThread(self.thread)
        self.thread.started.connect(self.worker.loop)
        self.worker.finished.connect(self.thread.quit)
        self.thread.start()

    def shutdown(self, timeout_ms: int = 2000) -> bool:
        """Stop the job, end the loop, quit the thread and wait for it. True when the thread has ended."""
        self.worker.quit()
        self.thread.quit()
        if self.thread.wait(timeout_ms):
            return True
        # Only building the first optimizer (an import) cannot stop early; a QThread destroyed while it runs
        # aborts the process, so wait for it rather than lose everything.
        self.thread.wait()
        return False

    def running(self) -> bool:
        try:
            return self.thread.isRunning()
        except RuntimeError:  # the C++ QThread is gone, so it is not running
            return False
