"""Session files (.dlp): a zip of a JSON manifest and safetensors members. Never pickle.

Reading trusts nothing: member names come from a fixed list, sizes and compression ratios are
bounded before anything is read, and every member's SHA-256 is checked against the manifest.
"""
from __future__ import annotations

import copy
import glob
import hashlib
import io
import json
import math
import os
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from . import safejson
from .check import parse_spec
from .errors import EngineError, SessionFileError, SpecError
from .fit import RNG_STATE, Reference, check_optimizer, check_rng, check_tensors, reference
from .head import Head
from .schema import validate_strict
from .spec import SessionSpec, spec_to_dict
from .train.checkpoint import Checkpoint
from .train.history import BUCKET, FOLDED, HISTORY_KEYS, OPTIONAL_KEYS

SESSION_FORMAT = 1
MANIFEST = "manifest.json"
TENSOR_MEMBERS = ("weights", "optimizer", "rng", "history", "best_weights")
ALLOWED = {MANIFEST, *(f"{m}.safetensors" for m in TENSOR_MEMBERS)}
MAX_MANIFEST = 16 << 20
MAX_MEMBER = 1 << 30
MAX_TOTAL = 2 << 30
MAX_RATIO = 200  # tensors are stored uncompressed; a member inflating more than this is a zip bomb
CHUNK = 1 << 20  # members inflate in chunks of this size, counted against their declared size
_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same session saves to the same bytes


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class MemberInfo(_Strict):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0, le=MAX_MEMBER)


class RunState(_Strict):
    step: int = Field(ge=0, le=10**12)
    epoch: int = Field(ge=0, le=10**12)
    batch_index: int = Field(ge=0)
    elapsed: float = Field(ge=0)
    status: Literal["ready", "running", "paused", "finished", "diverged", "early_stopped"]
    message: str = Field(max_length=10_000)
    early_best: float | None  # None while no epoch has been scored
    early_best_epoch: int = Field(ge=0)
    early_wait: int = Field(ge=0)
    epoch_correct: int = Field(0, ge=0)  # image sets: training samples stepped on correctly so far this epoch
    epoch_parts: tuple[float, float] = (0.0, 0.0)  # autoencoders: Σ reconstruction loss, Σ KL so far this epoch
    optimizer_groups: list[dict[str, Any]]
    optimizer_scalars: dict[str, dict[str, Any]]  # non-tensor per-parameter optimizer state


class Manifest(_Strict):
    format_version: int
    kind: Literal["dl-playground-session"]
    spec: dict[str, Any]
    state: RunState | None = None
    ui: dict[str, Any] = Field(default_factory=dict)  # the app's open views and layout; the engine ignores it
    members: dict[str, MemberInfo]


@dataclass(frozen=True)
class Session:
    """A loaded session: its spec, the run to continue (None for a spec alone) and the app's UI state."""

    spec: SessionSpec
    checkpoint: Checkpoint | None
    ui: dict[str, Any]


# --- saving ----------------------------------------------------------------------------------------

def save_session(path: str | Path, spec: SessionSpec, checkpoint: Checkpoint | None = None,
                 ui: dict[str, Any] | None = None) -> None:
    """Write a session atomically: temp file in the same folder, fsync, rename. A failure keeps the old file.

    With a checkpoint, its own spec (which holds any live changes) is the one saved; `spec` is for a spec alone.
    """
    path = Path(path)
    members: dict[str, bytes] = {}
    state = None
    if checkpoint is not None:
        spec = checkpoint.spec
        groups, scalars, opt_tensors = _split_optimizer(checkpoint.optimizer)
        members["weights.safetensors"] = _tensors(checkpoint.weights)
        members["optimizer.safetensors"] = _tensors(opt_tensors)
        members["rng.safetensors"] = _tensors(checkpoint.rng)
        members["history.safetensors"] = _tensors(
            {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float64)) for k, v in checkpoint.history.items()})
        if checkpoint.best_weights is not None:
            members["best_weights.safetensors"] = _tensors(checkpoint.best_weights)
        best = checkpoint.early["best"]
        state = RunState(
            step=checkpoint.step, epoch=checkpoint.epoch, batch_index=checkpoint.batch_index,
            elapsed=checkpoint.elapsed, status=checkpoint.status, message=checkpoint.message,
            early_best=best if math.isfinite(best) else None,
            early_best_epoch=int(checkpoint.early["best_epoch"]), early_wait=int(checkpoint.early["wait"]),
            epoch_correct=checkpoint.epoch_correct, epoch_parts=checkpoint.epoch_parts,
            optimizer_groups=groups, optimizer_scalars=scalars,
        )
    manifest = Manifest(
        format_version=SESSION_FORMAT, kind="dl-playground-session", spec=spec_to_dict(spec), state=state,
        ui=ui or {}, members={n: MemberInfo(sha256=hashlib.sha256(b).hexdigest(), size=len(b))
                              for n, b in members.items()},
    )
    manifest_bytes = json.dumps(manifest.model_dump(mode="json"), indent=1, allow_nan=False).encode()

    def write(f: io.BufferedWriter) -> None:
        with zipfile.ZipFile(f, "w") as zf:
            _add(zf, MANIFEST, manifest_bytes, zipfile.ZIP_DEFLATED)
            for name, data in members.items():
                _add(zf, name, data, zipfile.ZIP_STORED)

    atomic_write(path, write)


def _add(zf: zipfile.ZipFile, name: str, data: bytes, compression: int) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = compression
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


def _tensors(tensors: dict[str, torch.Tensor]) -> bytes:
    return st_save({k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()})


TEMP_SUFFIX = ".dlp-tmp"


def temp_prefix(path: Path) -> str:
    """Temp files beside ``path`` are named ``.NAME.PID.RANDOM.dlp-tmp``: recognisable, and their writer known."""
    return f".{path.name}.{os.getpid()}."


def atomic_write(path: Path, write: Callable[[io.BufferedWriter], None]) -> None:
    """Write via a temp file in the target folder, fsync, then os.replace; raise SessionFileError on failure.
    The temp file is removed on every failure path (an interrupt too); a kill -9 leaves one behind, which the
    next open or save of the same file removes."""
    tmp = None
    clean_stale_temps(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=TEMP_SUFFIX, dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(path.parent)
    except OSError as exc:
        raise SessionFileError(str(path), f"cannot save ({exc.strerror or exc}); the previous file is unchanged") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def clean_stale_temps(path: Path) -> int:
    """Remove temp files beside ``path`` left by saves whose process is gone; returns how many."""
    removed = 0
    try:
        candidates = list(path.parent.glob(f".{glob.escape(path.name)}.*{TEMP_SUFFIX}"))
    except OSError:
        return 0
    for tmp in candidates:
        pid = tmp.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            try:
                tmp.unlink()
                removed += 1
            except OSError:
                pass
    return removed


def _alive(pid: int) -> bool:
    """True when a process with this id exists (then its save may still be under way)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True
    return True


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # not every platform opens folders
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _split_optimizer(state: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], dict[str, torch.Tensor]]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, entries in state["state"].items():
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{pid}.{name}"] = value
            else:
                scalars.setdefault(str(pid), {})[name] = value
    groups = json.loads(json.dumps(state["param_groups"]))  # tuples become lists; values must be plain JSON
    return groups, scalars, tensors


# --- loading ---------------------------------------------------------------------------------------

def is_session_file(path: str | Path) -> bool:
    """True for a file that starts like a zip (a .dlp); specs are JSON."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def load_session(path: str | Path) -> Session:
    """Read and verify a .dlp; raise SessionFileError (naming the file, the member and the field) whatever it
    holds. Limits are checked before work is done, and everything the next step and save use is checked."""
    path = Path(path)
    name = str(path)
    clean_stale_temps(path)
    try:
        return _load(path, name)
    except EngineError:
        raise
    except MemoryError:
        raise SessionFileError(name, "too large to read into memory") from None
    except Exception as exc:  # noqa: BLE001 — the loader's promise: only the engine's own error comes out
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise SessionFileError(name, f"unreadable ({type(exc).__name__}{': ' + why if why else ''})") from None


def _load(path: Path, name: str) -> Session:
    if path.is_dir():
        raise SessionFileError(name, "is a folder, not a session file")
    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise SessionFileError(name, "no such file") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise SessionFileError(name, f"not a DL Playground session (unreadable zip: {exc})") from None
    with zf:
        infos = _check_infos(zf, name)
        manifest = _manifest(zf, infos[MANIFEST], name)
        for member in infos:
            if member != MANIFEST and member not in manifest.members:
                raise SessionFileError(name, f"member {member} is not listed in the manifest")
        missing = sorted(set(manifest.members) - set(infos))
        if missing:
            raise SessionFileError(name, f"member {missing[0]} is listed in the manifest but missing")
        try:
            spec = parse_spec(manifest.spec)
        except SpecError as exc:
            raise SessionFileError(name, f"spec: {exc}") from None
        if manifest.state is None:
            return Session(spec, None, manifest.ui)
        ref = reference(spec)
        caps = _member_caps(ref, manifest.state)
        raw = {}
        for member, info in infos.items():
            if member == MANIFEST:
                continue
            listed = manifest.members[member]
            if info.file_size != listed.size:
                raise SessionFileError(name, f"member {member} is corrupt (its size differs from the manifest's)")
            if info.file_size > caps[member]:
                raise SessionFileError(name, f"member {member} is {info.file_size:,} bytes; this network's state "
                                             f"takes at most {caps[member]:,}")
            data = _inflate(zf, info, name)
            if hashlib.sha256(data).hexdigest() != listed.sha256:
                raise SessionFileError(name, f"member {member} is corrupt (checksum mismatch)")
            raw[member] = data
    return Session(spec, _checkpoint(name, spec, ref, manifest.state, raw), manifest.ui)


def _check_infos(zf: zipfile.ZipFile, name: str) -> dict[str, zipfile.ZipInfo]:
    """Member names, methods and declared sizes, checked from the headers before anything is inflated."""
    infos: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in zf.infolist():
        member = info.filename
        if member.startswith(("/", "\\")) or ".." in member.replace("\\", "/").split("/") or ":" in member:
            raise SessionFileError(name, f"member {member!r} has an unsafe path")
        if member not in ALLOWED:
            raise SessionFileError(name, f"unexpected member {member!r} (a session holds only {', '.join(sorted(ALLOWED))})")
        if member in infos:
            raise SessionFileError(name, f"member {member} appears twice")
        if info.flag_bits & 0x1:
            raise SessionFileError(name, f"member {member} is encrypted; sessions are never encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise SessionFileError(name, f"member {member} uses compression method {info.compress_type}; sessions "
                                         "use only stored or deflate")
        limit = MAX_MANIFEST if member == MANIFEST else MAX_MEMBER
        if info.file_size > limit:
            raise SessionFileError(name, f"member {member} is too large ({info.file_size:,} bytes; limit {limit:,})")
        if info.file_size > 1024 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise SessionFileError(name, f"member {member} is over-compressed "
                                         f"({info.file_size:,} bytes from {info.compress_size:,}); refusing to inflate it")
        total += info.file_size
        if total > MAX_TOTAL:
            raise SessionFileError(name, f"members add up to more than {MAX_TOTAL:,} bytes")
        infos[member] = info
    if MANIFEST not in infos:
        raise SessionFileError(name, "not a DL Playground session (no manifest.json)")
    return infos


def _inflate(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> bytes:
    """A member's bytes, inflated in chunks and never past the size its header declares."""
    chunks, got = [], 0
    try:
        with zf.open(info) as f:
            while True:
                chunk = f.read(min(CHUNK, info.file_size + 1 - got))
                if not chunk:
                    break
                got += len(chunk)
                if got > info.file_size:
                    raise SessionFileError(name, f"member {info.filename} inflates past the size its header says")
                chunks.append(chunk)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as exc:
        raise SessionFileError(name, f"member {info.filename} is unreadable ({exc})") from None
    if got != info.file_size:
        raise SessionFileError(name, f"member {info.filename} is not the size its header says")
    return b"".join(chunks)


def _manifest(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> Manifest:
    try:
        data = safejson.loads(_inflate(zf, info, name), MANIFEST, SessionFileError)
    except SessionFileError as exc:
        if exc.what != MANIFEST:
            raise
        raise SessionFileError(name, f"manifest.json: {exc.why}") from None
    if not isinstance(data, dict):
        raise SessionFileError(name, "manifest.json must hold a JSON object")
    try:
        manifest = validate_strict(Manifest, data)
        safejson.check_tree(manifest.ui, "ui", SessionFileError)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise SessionFileError(name, f"manifest.json: {where}: {err['msg']}") from None
    except SessionFileError as exc:
        raise SessionFileError(name, f"manifest.json: {exc.what}: {exc.why}") from None
    if manifest.format_version > SESSION_FORMAT:
        raise SessionFileError(name, f"session format {manifest.format_version} is newer than this DL Playground "
                                     f"reads ({SESSION_FORMAT}); update it")
    if manifest.format_version < 1:
        raise SessionFileError(name, f"unknown session format {manifest.format_version}")
    return manifest


def _member_caps(ref: Reference, state: RunState) -> dict[str, int]:
    """The largest each member can be for this network and run: nothing bigger is inflated (zip bombs)."""
    slack = 1 << 16  # safetensors' JSON header: names, shapes and offsets
    weights = ref.weight_bytes() + slack
    return {
        "weights.safetensors": weights, "best_weights.safetensors": weights,
        "optimizer.safetensors": ref.state_bytes() + slack + 256 * len(ref.state),
        "rng.safetensors": 2 * RNG_STATE.numel() + 8 * ref.n_train + slack,
        "history.safetensors": 8 * (state.step + (len(HISTORY_KEYS) - 1) * state.epoch) + len(HISTORY_KEYS) * slack,
    }


def _load_tensors(name: str, member: str, raw: dict[str, bytes]) -> dict[str, torch.Tensor]:
    try:
        return st_load(raw[member])
    except (SafetensorError, ValueError, RuntimeError, TypeError, OverflowError) as exc:
        raise SessionFileError(name, f"member {member} is not a valid safetensors file ({exc})") from None


def _history(name: str, state: RunState, stored: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Each series: its exact values and, for a long run, its folded (min, max) pairs; lengths add up to the
    run's steps (step_loss) or epochs (the rest)."""
    allowed = {*HISTORY_KEYS, *(k + FOLDED for k in HISTORY_KEYS)}
    required = [k for k in HISTORY_KEYS if k not in OPTIONAL_KEYS]
    if not set(required) <= set(stored) <= allowed:
        raise SessionFileError(name, f"member history.safetensors must hold {', '.join(required)} (and their "
                                     f"{FOLDED} parts)")
    out = {}
    for key in HISTORY_KEYS:
        if key in OPTIONAL_KEYS and key not in stored:
            if key + FOLDED in stored:
                raise SessionFileError(name, f"member history.safetensors: {key + FOLDED} without {key}")
            out[key] = np.full(state.epoch, np.nan)  # a file from before this series: its run had no such set
            continue
        exact, folded = stored[key], stored.get(key + FOLDED, torch.zeros(0, dtype=torch.float64))
        want = state.step if key == "step_loss" else state.epoch
        for part, t in ((key, exact), (key + FOLDED, folded)):
            if t.dtype not in (torch.float64, torch.float32) or t.dim() != 1:
                raise SessionFileError(name, f"member history.safetensors: {part} is {t.dtype} {tuple(t.shape)}; "
                                             "a series is a 1-D float64 array")
        if len(folded) % 2 or len(folded) // 2 * BUCKET + len(exact) != want:
            raise SessionFileError(name, f"member history.safetensors: {key} holds {len(exact)} values and "
                                         f"{len(folded) // 2} folded buckets; the run's {state.step} steps and "
                                         f"{state.epoch} epochs need {want} in all")
        out[key] = exact.numpy().astype(np.float64)
        if len(folded):
            out[key + FOLDED] = folded.numpy().astype(np.float64)
    return out


def _checkpoint(name: str, spec: SessionSpec, ref: Reference, state: RunState, raw: dict[str, bytes]) -> Checkpoint:
    for member in ("weights", "optimizer", "rng", "history"):
        if f"{member}.safetensors" not in raw:
            raise SessionFileError(name, f"member {member}.safetensors is missing")
    if state.batch_index >= ref.steps_per_epoch:
        raise SessionFileError(name, f"manifest.json: state.batch_index {state.batch_index} is outside an epoch "
                                     f"of {ref.steps_per_epoch} steps")
    if state.early_best_epoch > state.epoch or state.early_wait > state.epoch:
        raise SessionFileError(name, "manifest.json: state.early_best_epoch and early_wait cannot pass the epoch")
    tokens = Head.of(spec).tokens  # a per-token task counts each sample's tokens
    if state.epoch_correct > state.batch_index * spec.training.batch_size * tokens:
        raise SessionFileError(name, f"manifest.json: state.epoch_correct {state.epoch_correct} cannot come from "
                                     f"{state.batch_index} steps of {spec.training.batch_size}"
                                     + (f" samples of {tokens} tokens" if tokens > 1 else ""))
    if any(v < 0 or (v and not state.batch_index) for v in state.epoch_parts):
        raise SessionFileError(name, f"manifest.json: state.epoch_parts {list(state.epoch_parts)} must be sums of "
                                     f"losses (≥ 0) of the {state.batch_index} steps of this epoch")
    weights = _load_tensors(name, "weights.safetensors", raw)
    check_tensors(name, "weights.safetensors", weights, ref.weights)
    best = None
    if "best_weights.safetensors" in raw:
        best = _load_tensors(name, "best_weights.safetensors", raw)
        check_tensors(name, "best_weights.safetensors", best, ref.weights)
    opt_state: dict[int, dict[str, Any]] = {}
    for key, value in _load_tensors(name, "optimizer.safetensors", raw).items():
        pid, _, entry = key.partition(".")
        if not pid.isdigit() or len(pid) > 9 or not entry:
            raise SessionFileError(name, f"member optimizer.safetensors: malformed key {key!r}")
        opt_state.setdefault(int(pid), {})[entry] = value
    for pid, entries in state.optimizer_scalars.items():
        if not pid.isdigit() or len(pid) > 9:
            raise SessionFileError(name, f"manifest.json: state.optimizer_scalars: malformed key {pid!r}")
        opt_state.setdefault(int(pid), {}).update(entries)
    check_optimizer(name, ref, opt_state)
    rng = _load_tensors(name, "rng.safetensors", raw)
    check_rng(name, ref, rng)
    history = _history(name, state, _load_tensors(name, "history.safetensors", raw))
    return Checkpoint(
        spec=spec, step=state.step, epoch=state.epoch, batch_index=state.batch_index, elapsed=state.elapsed,
        # A file saved while training holds "running"; opened, that run is paused until someone presses play.
        status="paused" if state.status == "running" else state.status, message=state.message, weights=weights,
        # Groups follow from the spec (hyper-parameters, torch's flags), so the reference's are used: a file's
        # own could flip amsgrad or hold a scalar where torch wants a pair, and crash the next step.
        optimizer={"state": opt_state, "param_groups": copy.deepcopy(ref.groups)},
        rng=rng,
        early={"best": math.inf if state.early_best is None else state.early_best,
               "best_epoch": state.early_best_epoch, "wait": state.early_wait},
        best_weights=best, history=history, epoch_correct=state.epoch_correct, epoch_parts=state.epoch_parts,
    )
