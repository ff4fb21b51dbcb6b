"""The GUI-side owner of one session: its spec, its trainer, the training thread, the history views draw and
the probes the visible views ask for."""
from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from engine import Checkpoint, Configure, EditWeight, SessionSpec, Snapshot, Trainer
from engine.datasets import Dataset
from engine.head import output_activation
from engine.probes import ProbeRequest
from engine.spec import DatasetSpec, ModelSpec

from .history import RunHistory
from .worker import Job, TrainingThread

FRAME_S = 1 / 30  # views redraw at most this often
MAX_FRAME_S = 0.25  # and at least this often while training, whatever the budget says
GUI_BUDGET = 0.12  # while training, the share of the wall clock frames may spend in Python (ARCHITECTURE.md, "Frame budget")
# Image sets: their views (samples, saliency, confusion, features) change when probes arrive, about once a
# second, and only the curves move with every step; frames at ~9 a second show them as fresh, and training
# keeps ~0.9 of its headless speed instead of ~0.8 at GUI_BUDGET (digits-cnn, tests/bench/bench_app.py: 7.5 %
# gave 0.79-0.92 at 12-19 frames/s, too close to issue 13's 0.85 on a noisy machine).
IMAGE_GUI_BUDGET = 0.06
LIVE_FIELDS = tuple(f.name for f in dataclasses.fields(Configure))  # spec fields a run takes without a reset
STOPPED_BY_ITSELF = ("diverged", "early_stopped")  # statuses that end a run without the user pausing it
STATUS_TEXT = {"ready": "ready", "running": "training", "paused": "paused", "finished": "paused",
               "diverged": "diverged", "early_stopped": "stopped early"}


@dataclass(frozen=True)
class NodeSummary:
    """One node of the run's network, as views describe it."""

    op: str
    shape: tuple[int, ...]  # output shape per sample
    n_params: int


@dataclass(frozen=True)
class RunInfo:
    """What views know about the run they draw (published by the controller once per run; never the trainer)."""

    run_id: int
    steps_per_epoch: int
    task: str  # classification | regression | reconstruction | sequence (a class per token)
    output_activation: str
    dataset: DatasetSpec  # the run's dataset spec
    data: Dataset  # its arrays (points to draw), shared read-only with the trainer
    order: tuple[str, ...]  # node ids in topological order
    nodes: Mapping[str, NodeSummary]
    total_params: int
    probes: frozenset[str]  # the probes that apply to this run

    @property
    def classes(self) -> tuple[str, ...]:
        """The classes' names where the data set has them (image sets), else ()."""
        return tuple(self.data.meta.get("classes", ()))

    @property
    def has_validation(self) -> bool:
        """Whether the data keeps a validation set apart (image sets), which early stopping then watches."""
        return self.data.y_val is not None and len(self.data.y_val) > 0

    def class_name(self, k: int) -> str:
        names = self.classes
        return names[k] if 0 <= k < len(names) else str(k)

    def image_layers(self) -> list[str]:
        """The layers whose output is an image (C, H, W): the feature maps and Grad-CAM's choices."""
        return [n for n in self.order if len(self.nodes[n].shape) == 3 and self.nodes[n].op != "input"]

    @classmethod
    def of(cls, trainer: Trainer) -> RunInfo:
        info = trainer.info
        nodes = {n: NodeSummary(info.nodes[n].op, tuple(info.nodes[n].shape), info.nodes[n].n_params)
                 for n in info.order}
        return cls(trainer.run_id, trainer.steps_per_epoch, trainer.spec.dataset.task,
                   output_activation(trainer.spec), trainer.spec.dataset, trainer.data, tuple(info.order),
                   MappingProxyType(nodes), info.total_params, frozenset(trainer.applicable_probes))


class ProbeUser(Protocol):
    """A view as the controller sees it: the probes it draws and whether anyone can see it now."""

    probes: frozenset[str]

    def showing(self) -> bool: ...

    def refresh(self) -> None: ...  # draw what is new, if it shows


class Controller(QObject):
    """Runs the session. Views listen to `frame` and read `run_info`; panels change the spec through `set_spec`."""

    frame = Signal()  # a new snapshot is in `snapshot` and `history`: views redraw
    run_changed = Signal()  # a new run began: `run_info` describes it
    state_changed = Signal()  # playing/paused, or a new run
    spec_changed = Signal()  # the spec was replaced (panels refresh their controls)
    session_replaced = Signal()  # another session was opened (editors drop their undo history)
    modified_changed = Signal(bool)
    stopped = Signal(str, str)  # status, message: a run ended by itself (diverged, early stop)
    focus_changed = Signal()  # a view points at one neuron (hovered in the network view): `focus` names it
    sample_changed = Signal()  # another test image is selected (`sample`), or the samples' filter changed
    errored = Signal(str)

    def __init__(self, spec: SessionSpec, checkpoint: Checkpoint | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        # The trainer first: if the session does not build (EngineError), no thread has been started yet that
        # would abort the process when this half-made controller is destroyed.
        self.wanted: frozenset[str] = frozenset()  # the probes the visible views draw (the trainer runs these)
        self.trainer = Trainer(spec, probes=self.wanted, checkpoint=checkpoint)
        self.training = TrainingThread(self)
        self.worker = self.training.worker
        self.worker.snapshot_ready.connect(self._on_snapshot_ready)
        self.worker.idle.connect(self._on_idle)
        self.worker.errored.connect(self._on_worker_error)
        self._frame_timer = QTimer(self)
        self._frame_timer.setSingleShot(True)
        self._frame_timer.timeout.connect(self._draw)
        # Views are shown and hidden in bursts (a window appears, a tab switches): settle once per burst.
        self._probe_timer = QTimer(self)
        self._probe_timer.setSingleShot(True)
        self._probe_timer.setInterval(0)
        self._probe_timer.timeout.connect(self._on_views_changed)
        self._last_frame = 0.0
        self.frame_interval = FRAME_S  # stretched while the GUI thread is over its budget
        self.gui_load = 0.0  # the share of the wall clock the GUI thread was busy, smoothed over about a second
        self.draw_load = 0.0  # the share spent drawing frames (Python, holding the GIL), smoothed alike
        self._load_at = (time.perf_counter(), time.thread_time(), 0.0)
        self._draw_s = 0.0  # seconds spent in frames so far
        self._rate: deque[tuple[float, int]] = deque(maxlen=64)
        self._users: list[ProbeUser] = []
        self.frames_drawn = 0
        self.playing = False
        self.modified = False
        self.snapshot: Snapshot | None = None
        self.focus: tuple[str, int] | None = None  # (node id, unit) a view points at; others may show it big
        self.sample = 0  # the test image selected (image sets): saliency and the like explain this one
        self.sample_filter: tuple[int, int] | None = None  # (true, predicted) class: a confusion cell clicked
        self.probe_requests: dict[str, ProbeRequest] = {}  # what views ask probes about, kept across runs
        self.spec = checkpoint.spec if checkpoint is not None else spec
        self._new_run()
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
        trainer = Trainer(spec, probes=self.wanted, checkpoint=checkpoint)
        self.spec = checkpoint.spec if checkpoint is not None else spec
        self.trainer = trainer
        self.set_modified(False)
        self.blocked = None
        self.session_replaced.emit()
        self._new_run(spec_changed=True)

    def _new_run(self, spec_changed: bool = False) -> None:
        """Publish the new trainer's run and draw its starting point at once (its first boundary, say)."""
        self.run_info = RunInfo.of(self.trainer)
        self.snapshot = None  # views wait for the new run's first frame
        self.set_focus(None)
        self.sample = min(self.sample, max(len(self.trainer.data.y_test) - 1, 0))
        if self.sample_filter is not None and max(self.sample_filter) >= self.trainer.spec.dataset.n_classes:
            self.sample_filter = None  # a cell of another set's classes
        for name, request in self.probe_requests.items():
            if name in self.run_info.probes:
                self.trainer.set_probe_request(name, request)
        self.history = RunHistory(self.trainer.steps_per_epoch)
        self.run_changed.emit()
        if spec_changed:
            self.spec_changed.emit()
        self.worker.take()  # anything left over belongs to the previous run
        self._rate.clear()
        self._publish_now()
        self.state_changed.emit()

    def _publish_now(self) -> None:
        """Probe the model as it stands and draw it (between jobs, or while the worker only prepares)."""
        self.trainer.probe_now()
        self.worker.publish(self.trainer.snapshot())
        self._draw()

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
        if self.trainer.status == "diverged":
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
        self.frame_interval = FRAME_S  # the budget binds only while training
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

    def set_focus(self, focus: tuple[str, int] | None) -> None:
        """Point at one neuron (node id, unit), or at none: the output view then draws that neuron's map."""
        if focus != self.focus:
            self.focus = focus
            self.focus_changed.emit()

    def select_sample(self, index: int) -> None:
        """Select a test image (image sets): views that explain one image show this one."""
        index = max(0, min(int(index), len(self.trainer.data.y_test) - 1))
        if index != self.sample:
            self.sample = index
            self.sample_changed.emit()

    def set_sample_filter(self, cell: tuple[int, int] | None) -> None:
        """Show only the test images of one (true, predicted) pair of classes in the sample views, or all."""
        if cell != self.sample_filter:
            self.sample_filter = cell
            self.sample_changed.emit()

    def ask_probe(self, name: str, request: ProbeRequest) -> None:
        """Ask a probe about something else (a sample, a method) from now on; while paused it is computed and
        drawn at once, while training at the next probe round."""
        if self.probe_requests.get(name) == request:
            return
        self.probe_requests[name] = request
        if name not in self.run_info.probes:
            return
        self.trainer.set_probe_request(name, request)
        if self._preparing or not self.worker.busy:
            self._publish_now()

    def edit_weight(self, edit: EditWeight) -> None:
        """Set one weight by hand. While training it lands at the next step boundary; between jobs it is
        applied now and every view redraws from the edited model."""
        self.trainer.post(edit)
        if self._preparing or not self.worker.busy:
            self.trainer.apply_commands()
            self._publish_now()
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
        trainer = Trainer(spec, probes=self.wanted)  # may raise: the old run stays
        self.spec, self.trainer = spec, trainer
        self.set_modified(True)
        self._new_run(spec_changed=True)
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

    def status_text(self) -> str:
        """What training is doing, in words, for the toolbar."""
        snap = self.snapshot
        if self.playing:
            return STATUS_TEXT["running"]
        if snap is None or snap.step == 0:
            return "ready: press Space to train"
        return STATUS_TEXT.get(snap.status, snap.status)

    def shutdown(self) -> bool:
        """Stop training and end the thread (on close). True when it ended in time."""
        self._frame_timer.stop()
        self._probe_timer.stop()
        return self.training.shutdown()

    # --- probes for the views that can be seen -----------------------------------------------------

    def attach(self, view: ProbeUser) -> None:
        """Draw probes for this view while it shows (see `views_changed`)."""
        self._users.append(view)
        self.views_changed()

    def views_changed(self) -> None:
        """A view was shown or hidden (or the window minimised): once things settle, ask for the probes the
        visible views draw and let the views catch up."""
        self._probe_timer.start()

    @property
    def probes_pending(self) -> bool:
        """True until the probes of newly shown views have been asked for (and, between jobs, computed)."""
        return self._probe_timer.isActive()

    def _ask_probes(self) -> None:
        """Tell the trainer the probes the views that show now draw (it skips those that do not apply)."""
        wanted = frozenset().union(*(u.probes for u in self._users if u.showing()))
        if wanted != self.wanted:
            self.wanted = wanted
            self.trainer.want_probes(wanted)

    @Slot()
    def _on_views_changed(self) -> None:
        self._ask_probes()
        results, step = self.trainer.probes, self.trainer.step
        missing = any(n not in results or results[n].step != step for n in self.wanted & self.run_info.probes)
        # While training, the trainer's next probe round brings them; between jobs, compute them now. The
        # worker's first job only builds the optimizer and leaves the model alone, so that counts as between.
        if missing and (self._preparing or not self.worker.busy):
            self._publish_now()  # its frame lets every view catch up
        else:
            for user in self._users:
                user.refresh()

    # --- from the worker (queued into the GUI thread) ----------------------------------------------

    def _measure_load(self) -> None:
        """Update `gui_load` (this thread's CPU time per wall second: views' drawing, Qt's painting, other
        events) and `draw_load` (the frames' own time), and pace frames by the second: while training, frames
        over the budget come less often (down to 4 a second) rather than take the GIL from the training
        thread. Qt's painting is left out of the budget because it runs with the GIL released (plots paint
        in C++, see `plotting._QtPaint`; the network canvas renders its picture in its frame): it takes the
        other core, not the training thread's interpreter."""
        now, cpu, drawn = time.perf_counter(), time.thread_time(), self._draw_s
        (t0, c0, d0), self._load_at = self._load_at, (now, cpu, drawn)
        dt = now - t0
        if dt <= 0:
            return
        weight = min(1.0, dt)  # about a second's memory
        self.gui_load += weight * ((cpu - c0) / dt - self.gui_load)
        self.draw_load += weight * ((drawn - d0) / dt - self.draw_load)
        if self.playing:
            budget = IMAGE_GUI_BUDGET if self.run_info.classes else GUI_BUDGET
            target = self.frame_interval * self.draw_load / budget  # the interval that meets the budget
            self.frame_interval = min(MAX_FRAME_S, max(FRAME_S, 0.7 * self.frame_interval + 0.3 * target))
        else:
            self.frame_interval = FRAME_S

    @Slot()
    def _on_snapshot_ready(self) -> None:
        wait = self.frame_interval - (time.perf_counter() - self._last_frame)
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
        self._last_frame = start = time.perf_counter()
        self._measure_load()
        try:
            self._frame(snap)
        finally:
            self._draw_s += time.perf_counter() - start

    def _frame(self, snap: Snapshot) -> None:
        if self.snapshot is not None and snap.step != self.snapshot.step:
            self.set_modified(True)
        self.history.absorb(snap)
        previous, self.snapshot = self.snapshot, snap
        self._rate.append((snap.elapsed, snap.step / self.trainer.steps_per_epoch))
        while len(self._rate) > 2 and self._rate[-1][0] - self._rate[0][0] > 2.0:
            self._rate.popleft()
        self.frames_drawn += 1
        self._ask_probes()  # Qt rearranges docks without a word now and then: look again at every frame
        self.frame.emit()
        # Said once per stop: a later frame of the same step (probes for a view just shown) says nothing new.
        if snap.status in STOPPED_BY_ITSELF and (previous is None or (previous.step, previous.status)
                                                 != (snap.step, snap.status)):
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
