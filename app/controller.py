"""The GUI-side owner of one session: its spec, its trainer, the training thread and the history views draw."""
from __future__ import annotations

import time
from collections import deque

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from engine import Checkpoint, Configure, SessionSpec, Snapshot, Trainer
from engine.spec import ModelSpec

from .history import RunHistory
from .worker import Job, TrainingThread

FRAME_S = 1 / 30  # views redraw at most this often
LIVE_FIELDS = ("optimizer", "schedule", "regularization")


class Controller(QObject):
    """Runs the session. Views listen to `frame`; panels change the spec through `set_spec`."""

    frame = Signal()  # a new snapshot is in `snapshot` and `history`: views redraw
    state_changed = Signal()  # playing/paused, or a new run
    spec_changed = Signal()  # the spec was replaced (panels refresh their controls)
    session_replaced = Signal()  # another session was opened (editors drop their undo history)
    modified_changed = Signal(bool)
    stopped = Signal(str, str)  # status, message: a run ended by itself (diverged, early stop)
    errored = Signal(str)

    def __init__(self, spec: SessionSpec, checkpoint: Checkpoint | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.training = TrainingThread(self)
        self.worker = self.training.worker
        self.worker.snapshot_ready.connect(self._on_snapshot_ready)
        self.worker.idle.connect(self._on_idle)
        self.worker.errored.connect(self._on_worker_error)
        self._frame_timer = QTimer(self)
        self._frame_timer.setSingleShot(True)
        self._frame_timer.timeout.connect(self._draw)
        self._last_frame = 0.0
        self._rate: deque[tuple[float, int]] = deque(maxlen=64)
        self.frames_drawn = 0
        self.playing = False
        self.modified = False
        self.snapshot: Snapshot | None = None
        self.trainer = Trainer(spec, checkpoint=checkpoint)
        self.spec = checkpoint.spec if checkpoint is not None else spec
        self.history = RunHistory(self.trainer.steps_per_epoch)
        self._show_initial()
        # The first torch optimizer imports torch._dynamo (~2 s): do that in the training thread so the
        # window is usable at once; a play pressed meanwhile starts when it is done.
        self._queued: str | None = None
        self._preparing = True
        self.blocked: str | None = None  # why training is refused (the graph editor holds an invalid draft)
        self.worker.request(self.trainer, Job("prepare"))

    # --- the run ---------------------------------------------------------------------------------

    def load(self, spec: SessionSpec, checkpoint: Checkpoint | None = None) -> None:
        """Replace the session (raises EngineError and keeps the current one if it does not build)."""
        self.pause()
        trainer = Trainer(spec, checkpoint=checkpoint)
        self.spec = checkpoint.spec if checkpoint is not None else spec
        self.trainer = trainer
        self.snapshot = None  # views wait for the new run's first frame
        self.history = RunHistory(trainer.steps_per_epoch)
        self.set_modified(False)
        self.blocked = None
        self.session_replaced.emit()
        self.spec_changed.emit()
        self._show_initial()

    def _show_initial(self) -> None:
        """Probe the model as it stands and draw it: a new run shows its starting boundary at once."""
        self.worker.take()  # anything left over belongs to the previous run
        self.trainer.probe_now()
        self.snapshot = None
        self._rate.clear()
        self.worker.publish(self.trainer.snapshot())
        self.state_changed.emit()

    def play(self) -> None:
        self._start("play")

    def step_epoch(self) -> None:
        self._start("epoch")

    def step_batch(self) -> None:
        self._start("batch")

    def toggle(self) -> None:
        if self.playing:
            self.pause()
        else:
            self.play()

    def _start(self, kind: str) -> None:
        if self._preparing:
            self._queued = kind
            self.playing = kind == "play"
            self.state_changed.emit()
            return
        if self.worker.busy:
            if kind == "play":
                return
            self.pause()
        if self.blocked is not None:
            self.errored.emit(f"The network cannot train yet: {self.blocked}. Fix it in the graph editor.")
            return
        if self.trainer.status in ("diverged",):
            self.errored.emit("This run diverged. Press Reset (R) to start over, after lowering the learning rate.")
            return
        self.playing = kind == "play"
        self._rate.clear()
        self.worker.request(self.trainer, Job(kind))
        self.state_changed.emit()

    def pause(self) -> None:
        """Stop at the next step boundary and wait for it (a step of these networks takes microseconds)."""
        self._queued = None
        if self.worker.busy:
            self.worker.pause()
            self._draw()  # show where it stopped now, not after the queued signals arrive
        if self.playing:
            self.playing = False
            self.state_changed.emit()

    def reset(self, same_weights: bool = True) -> None:
        """Start the run over; with `same_weights` off, a new seed draws new initial weights."""
        was_playing = self.playing
        self.pause()
        spec = self.spec
        if not same_weights:
            seed = (spec.training.seed + 1) % (2**32)
            spec = spec.model_copy(update={"training": spec.training.model_copy(update={"seed": seed})})
        self._rebuild(spec, was_playing)

    def set_spec(self, spec: SessionSpec) -> None:
        """Apply an edited spec: optimizer, schedule and regularization live; anything else resets the run
        (same seed). Raises EngineError, keeping the current spec, when the new one does not build."""
        if spec == self.spec:
            return
        changed = {f for f in SessionSpec.model_fields if getattr(spec, f) != getattr(self.spec, f)}
        if changed <= set(LIVE_FIELDS):
            self.trainer.post(Configure(**{f: getattr(spec, f) for f in changed}))
            self.spec = spec
            self.set_modified(True)
            self.spec_changed.emit()
            return
        self._rebuild(spec, self.playing)

    def set_layout(self, model: ModelSpec) -> None:
        """Take new block positions for the same network: saved with the session, training goes on."""
        if model == self.spec.model:
            return
        self.trainer.set_layout(model)
        self.spec = self.spec.model_copy(update={"model": model})
        self.set_modified(True)

    def set_blocked(self, reason: str | None) -> None:
        """Refuse training, with the reason, while the edited graph is invalid (None lifts it)."""
        if reason is not None:
            self.pause()
        if reason != self.blocked:
            self.blocked = reason
            self.state_changed.emit()

    def _rebuild(self, spec: SessionSpec, resume: bool) -> None:
        self.pause()
        trainer = Trainer(spec)  # may raise: the old run stays
        self.spec, self.trainer = spec, trainer
        self.snapshot = None  # views wait for the new run's first frame
        self.history = RunHistory(trainer.steps_per_epoch)
        self.set_modified(True)
        self.spec_changed.emit()
        self._show_initial()
        if resume:
            self.play()

    def checkpoint(self) -> Checkpoint:
        """A consistent copy of the run between two steps; training may go on meanwhile."""
        return self.trainer.checkpoint()

    def set_modified(self, value: bool) -> None:
        if value != self.modified:
            self.modified = value
            self.modified_changed.emit(value)

    def epochs_per_second(self) -> float:
        if len(self._rate) < 2:
            return 0.0
        (t0, e0), (t1, e1) = self._rate[0], self._rate[-1]
        return (e1 - e0) / (t1 - t0) if t1 > t0 else 0.0

    def shutdown(self) -> bool:
        """Stop training and end the thread (on close). True when it ended in time."""
        self._frame_timer.stop()
        return self.training.shutdown()

    # --- from the worker (queued into the GUI thread) ----------------------------------------------

    @Slot()
    def _on_snapshot_ready(self) -> None:
        wait = FRAME_S - (time.perf_counter() - self._last_frame)
        if wait <= 0:
            self._draw()
        elif not self._frame_timer.isActive():
            self._frame_timer.start(max(1, int(wait * 1000)))

    @Slot()
    def _draw(self) -> None:
        snap = self.worker.take()
        if snap is None:
            return
        if snap.run_id != self.trainer.run_id:
            return  # from a run that was reset or replaced
        self._last_frame = time.perf_counter()
        if self.snapshot is not None and snap.step != self.snapshot.step:
            self.set_modified(True)
        self.history.absorb(snap)
        self.snapshot = snap
        self._rate.append((snap.elapsed, snap.step / self.trainer.steps_per_epoch))
        while len(self._rate) > 2 and self._rate[-1][0] - self._rate[0][0] > 2.0:
            self._rate.popleft()
        self.frames_drawn += 1
        self.frame.emit()
        if snap.status in ("diverged", "early_stopped") and snap.run_id == self.trainer.run_id:
            self.stopped.emit(snap.status, snap.message)

    @Slot()
    def _on_idle(self) -> None:
        if self.worker.busy:
            return  # a newer job already runs
        if self._preparing:
            self._preparing = False
            queued, self._queued = self._queued, None
            if queued is not None:
                self.playing = False
                self._start(queued)
            return
        self._draw()
        if self.playing:
            self.playing = False
            self.state_changed.emit()

    @Slot(str)
    def _on_worker_error(self, message: str) -> None:
        self.playing = False
        self.state_changed.emit()
        self.errored.emit(message)
