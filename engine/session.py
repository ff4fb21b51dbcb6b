"""Session files (.dlp): a zip of a JSON manifest and safetensors members. Never pickle.

Reading trusts nothing: member names come from a fixed list, sizes and compression ratios are
bounded before anything is read, and every member's SHA-256 is checked against the manifest.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import tempfile
import zipfile
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

from .check import parse_spec
from .errors import SessionFileError, SpecError
from .spec import SessionSpec, spec_to_dict
from .train.checkpoint import Checkpoint
from .train.history import HISTORY_KEYS

SESSION_FORMAT = 1
MANIFEST = "manifest.json"
TENSOR_MEMBERS = ("weights", "optimizer", "rng", "history", "best_weights")
ALLOWED = {MANIFEST, *(f"{m}.safetensors" for m in TENSOR_MEMBERS)}
MAX_MANIFEST = 16 << 20
MAX_MEMBER = 1 << 30
MAX_TOTAL = 2 << 30
MAX_RATIO = 200  # tensors are stored uncompressed; a member inflating more than this is a zip bomb
_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same session saves to the same bytes


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MemberInfo(_Strict):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0, le=MAX_MEMBER)


class RunState(_Strict):
    step: int = Field(ge=0)
    epoch: int = Field(ge=0)
    batch_index: int = Field(ge=0)
    elapsed: float = Field(ge=0)
    status: Literal["ready", "running", "paused", "finished", "diverged", "early_stopped"]
    message: str = Field(max_length=10_000)
    early_best: float | None  # None while no epoch has been scored
    early_best_epoch: int = Field(ge=0)
    early_wait: int = Field(ge=0)
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
            {k: torch.from_numpy(np.ascontiguousarray(checkpoint.history.get(k, np.zeros(0)), dtype=np.float64))
             for k in HISTORY_KEYS})
        if checkpoint.best_weights is not None:
            members["best_weights.safetensors"] = _tensors(checkpoint.best_weights)
        best = checkpoint.early["best"]
        state = RunState(
            step=checkpoint.step, epoch=checkpoint.epoch, batch_index=checkpoint.batch_index,
            elapsed=checkpoint.elapsed, status=checkpoint.status, message=checkpoint.message,
            early_best=best if math.isfinite(best) else None,
            early_best_epoch=int(checkpoint.early["best_epoch"]), early_wait=int(checkpoint.early["wait"]),
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


def atomic_write(path: Path, write: Callable[[io.BufferedWriter], None]) -> None:
    """Write via a temp file in the target folder, fsync, then os.replace; raise SessionFileError on failure."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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
        raise SessionFileError(path.name, f"cannot save ({exc.strerror or exc}); the previous file is unchanged") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


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
    """Read and verify a .dlp; raise SessionFileError (or SpecError) with a one-line reason."""
    path = Path(path)
    name = path.name
    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise SessionFileError(name, "no such file") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise SessionFileError(name, f"not a DL Playground session (unreadable zip: {exc})") from None
    with zf:
        raw = _read_members(zf, name)
    try:
        manifest_data = json.loads(raw.pop(MANIFEST).decode("utf-8"))
        manifest = Manifest.model_validate(manifest_data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SessionFileError(name, f"manifest.json is not valid JSON ({exc})") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise SessionFileError(name, f"manifest.json: {where}: {err['msg']}") from None
    if manifest.format_version > SESSION_FORMAT:
        raise SessionFileError(name, f"session format {manifest.format_version} is newer than this DL Playground "
                                     f"reads ({SESSION_FORMAT}); update it")
    if manifest.format_version < 1:
        raise SessionFileError(name, f"unknown session format {manifest.format_version}")
    for member, data in raw.items():
        expected = manifest.members.get(member)
        if expected is None:
            raise SessionFileError(name, f"member {member} is not listed in the manifest")
        if hashlib.sha256(data).hexdigest() != expected.sha256 or len(data) != expected.size:
            raise SessionFileError(name, f"member {member} is corrupt (checksum mismatch)")
    missing = sorted(set(manifest.members) - set(raw))
    if missing:
        raise SessionFileError(name, f"member {missing[0]} is listed in the manifest but missing")
    try:
        spec = parse_spec(manifest.spec)
    except SpecError as exc:
        raise SessionFileError(name, f"spec: {exc}") from None
    checkpoint = None
    if manifest.state is not None:
        checkpoint = _checkpoint(name, spec, manifest.state, raw)
    return Session(spec, checkpoint, manifest.ui)


def _read_members(zf: zipfile.ZipFile, name: str) -> dict[str, bytes]:
    infos = zf.infolist()
    seen: set[str] = set()
    total = 0
    for info in infos:
        member = info.filename
        if member.startswith(("/", "\\")) or ".." in member.replace("\\", "/").split("/") or ":" in member:
            raise SessionFileError(name, f"member {member!r} has an unsafe path")
        if member not in ALLOWED:
            raise SessionFileError(name, f"unexpected member {member!r} (a session holds only {', '.join(sorted(ALLOWED))})")
        if member in seen:
            raise SessionFileError(name, f"member {member} appears twice")
        seen.add(member)
        limit = MAX_MANIFEST if member == MANIFEST else MAX_MEMBER
        if info.file_size > limit:
            raise SessionFileError(name, f"member {member} is too large ({info.file_size:,} bytes; limit {limit:,})")
        if info.file_size > 1024 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise SessionFileError(name, f"member {member} is over-compressed "
                                         f"({info.file_size:,} bytes from {info.compress_size:,}); refusing to inflate it")
        total += info.file_size
        if total > MAX_TOTAL:
            raise SessionFileError(name, f"members add up to more than {MAX_TOTAL:,} bytes")
    if MANIFEST not in seen:
        raise SessionFileError(name, "not a DL Playground session (no manifest.json)")
    raw = {}
    for info in infos:
        try:
            with zf.open(info) as f:
                data = f.read(info.file_size + 1)  # never trust the header beyond its own claim
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            raise SessionFileError(name, f"member {info.filename} is unreadable ({exc})") from None
        if len(data) != info.file_size:
            raise SessionFileError(name, f"member {info.filename} is not the size its header says")
        raw[info.filename] = data
    return raw


def _load_tensors(name: str, member: str, raw: dict[str, bytes]) -> dict[str, torch.Tensor]:
    try:
        return st_load(raw[member])
    except (SafetensorError, ValueError, RuntimeError, TypeError) as exc:
        raise SessionFileError(name, f"member {member} is not a valid safetensors file ({exc})") from None


def _checkpoint(name: str, spec: SessionSpec, state: RunState, raw: dict[str, bytes]) -> Checkpoint:
    for member in ("weights", "optimizer", "rng", "history"):
        if f"{member}.safetensors" not in raw:
            raise SessionFileError(name, f"member {member}.safetensors is missing")
    opt_tensors = _load_tensors(name, "optimizer.safetensors", raw)
    opt_state: dict[int, dict[str, Any]] = {}
    try:
        for key, value in opt_tensors.items():
            pid, entry = key.split(".", 1)
            opt_state.setdefault(int(pid), {})[entry] = value
        for pid, entries in state.optimizer_scalars.items():
            opt_state.setdefault(int(pid), {}).update(entries)
    except ValueError:
        raise SessionFileError(name, "optimizer state has malformed keys") from None
    history = {k: v.numpy().astype(np.float64) for k, v in _load_tensors(name, "history.safetensors", raw).items()
               if k in HISTORY_KEYS}
    best = raw.get("best_weights.safetensors")
    return Checkpoint(
        spec=spec, step=state.step, epoch=state.epoch, batch_index=state.batch_index, elapsed=state.elapsed,
        status=state.status, message=state.message,
        weights=_load_tensors(name, "weights.safetensors", raw),
        optimizer={"state": opt_state, "param_groups": state.optimizer_groups},
        rng=_load_tensors(name, "rng.safetensors", raw),
        early={"best": math.inf if state.early_best is None else state.early_best,
               "best_epoch": state.early_best_epoch, "wait": state.early_wait},
        best_weights=None if best is None else _load_tensors(name, "best_weights.safetensors", raw),
        history=history,
    )
