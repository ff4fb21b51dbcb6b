"""Mutations of session files and specs, shared by the property tests (tests/engine/test_fuzz.py) and the
larger fuzz benchmark (tests/bench/fuzz_sessions.py). Each takes a ``random.Random`` so a case replays."""
from __future__ import annotations

import copy
import hashlib
import io
import json
import random
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

Members = dict[str, bytes]


def members(data: bytes) -> Members:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def pack(m: Members, fix_sums: bool) -> bytes:
    """Members as a session zip; with ``fix_sums`` the manifest's checksums are made to match, so only the
    checks behind them can refuse it."""
    if fix_sums:
        manifest = json.loads(m["manifest.json"])
        if isinstance(manifest, dict):
            manifest["members"] = {n: {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d)}
                                   for n, d in m.items() if n != "manifest.json"}
            m = {**m, "manifest.json": json.dumps(manifest).encode()}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in m.items():
            zf.writestr(name, data)
    return buf.getvalue()


def json_value(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON-ish value, including what hostile files hold: huge ints, NaN, deep nesting."""
    kind = rng.randrange(12 if depth < 3 else 8)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice([0, -1, 1, 2, 7, 10**6, 2**31, 2**63, -(2**40)])
    if kind == 3:
        return rng.choice([0.0, -0.0, 1e-12, 0.5, -3.0, 1e300, float("nan"), float("inf"), float("-inf")])
    if kind == 4:
        return rng.choice(["", "x", "sgd", "relu", "toy2d", "circle", "../x", "\u0000", "9" * 50])
    if kind == 5:
        return 10 ** rng.choice([40, 300, 4400])
    if kind == 6:
        v: Any = []
        for _ in range(rng.choice([70, 300])):
            v = [v]
        return v
    if kind == 7:
        return str(rng.random())
    if kind in (8, 9):
        return [json_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(["kind", "lr", "units", "x", "step", "a"]): json_value(rng, depth + 1)
            for _ in range(rng.randrange(4))}


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside nested dicts and lists (the root excluded)."""
    out = []
    if isinstance(value, dict):
        for k, v in value.items():
            out.append((*prefix, k))
            out.extend(paths(v, (*prefix, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.append((*prefix, i))
            out.extend(paths(v, (*prefix, i)))
    return out


def mutate_json(rng: random.Random, doc: Any) -> Any:
    """Replace, delete or add one value somewhere in a JSON document."""
    doc = copy.deepcopy(doc)
    where = paths(doc)
    if not where:
        return json_value(rng)
    path = rng.choice(where)
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    action = rng.randrange(3)
    if action == 0 and isinstance(parent, dict):
        del parent[path[-1]]
    elif action == 1 and isinstance(parent, dict):
        parent[rng.choice(["extra", "kind", "lr", "step"])] = json_value(rng)
    else:
        parent[path[-1]] = json_value(rng)
    return doc


def dumps(doc: Any) -> bytes:
    try:
        return json.dumps(doc).encode()
    except (ValueError, RecursionError):
        return b"{"


# --- the mutators: each (rng, valid session bytes) -> mutated bytes -------------------------------------------

def flip_bytes(rng: random.Random, data: bytes) -> bytes:
    raw = bytearray(data)
    for _ in range(rng.randrange(1, 6)):
        raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
    return bytes(raw)


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[:rng.randrange(len(data))]


def splice(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data))
    return data[:at] + rng.randbytes(rng.randrange(1, 64)) + data[at + rng.randrange(0, 64):]


def zip_header(rng: random.Random, data: bytes) -> bytes:
    """Change one field of a local or central zip header: flags, method, sizes, CRC, name length."""
    raw = bytearray(data)
    sig = rng.choice([b"PK\x03\x04", b"PK\x01\x02"])
    starts = [i for i in range(len(raw) - 4) if raw[i:i + 4] == sig]
    if not starts:
        return data
    i = rng.choice(starts)
    fields = ({"flags": 6, "method": 8, "crc": 14, "csize": 18, "usize": 22, "namelen": 26} if sig == b"PK\x03\x04"
              else {"flags": 8, "method": 10, "crc": 16, "csize": 20, "usize": 24, "namelen": 28})
    name = rng.choice(list(fields))
    at = i + fields[name]
    width = 4 if name in ("crc", "csize", "usize") else 2
    value = rng.choice([0, 1, 8, 9, 12, 14, 99, 0xFFFF, 0xFFFFFFFF, rng.randrange(1 << (8 * width))])
    raw[at:at + width] = struct.pack("<I" if width == 4 else "<H", value % (1 << (8 * width)))
    return bytes(raw)


def manifest_value(rng: random.Random, data: bytes) -> bytes:
    m = members(data)
    m["manifest.json"] = dumps(mutate_json(rng, json.loads(m["manifest.json"])))
    return pack(m, fix_sums=False)


def tensor_member(rng: random.Random, data: bytes) -> bytes:
    """Change one tensor of one member (dtype, shape, values, a key), with the checksums fixed."""
    m = members(data)
    member = rng.choice([n for n in m if n.endswith(".safetensors")])
    tensors = dict(st_load(m[member]))
    if not tensors:
        return data
    key = rng.choice(sorted(tensors))
    t = tensors[key]
    action = rng.randrange(6)
    if action == 0:
        tensors[key] = t.to(rng.choice([torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.uint8,
                                         torch.float32, torch.bool]))
    elif action == 1:
        tensors[key] = t.flatten()[: max(0, t.numel() - rng.randrange(1, 3))].clone()
    elif action == 2:
        tensors[key] = torch.cat([t.flatten(), t.flatten()[:1]]).clone() if t.numel() else torch.zeros(1)
    elif action == 3 and t.is_floating_point():
        tensors[key] = t.clone().fill_(rng.choice([float("nan"), float("inf"), 1e30]))
    elif action == 4:
        del tensors[key]
    else:
        tensors[f"{rng.randrange(20)}.{rng.choice(['exp_avg', 'step', 'x'])}"] = torch.zeros(rng.randrange(4))
    m[member] = st_save(tensors)
    return pack(m, fix_sums=True)


MUTATORS: dict[str, Callable[[random.Random, bytes], bytes]] = {
    "flip_bytes": flip_bytes, "truncate": truncate, "splice": splice, "zip_header": zip_header,
    "manifest_value": manifest_value, "tensor_member": tensor_member,
}


def base_session(folder: Path) -> bytes:
    """A trained session with every member: Adam state, dropout, batch norm, early stopping's best weights."""
    from engine.check import parse_spec
    from engine.presets import mlp
    from engine.session import save_session
    from engine.train.trainer import Trainer
    from tests.conftest import spec_dict

    spec = parse_spec(spec_dict(
        "moons", model=mlp([5, 4], "relu", "sigmoid", dropout=0.1, batch_norm=True),
        optimizer={"kind": "adam", "lr": 0.01}, regularization={"early_stopping": {"patience": 5}},
        dataset={"samples": 120}))
    tr = Trainer(spec, probes=False)
    for _ in tr.run(steps=17):
        pass
    path = folder / "base.dlp"
    save_session(path, tr.spec, tr.checkpoint(), ui={"views": {"Output": True}, "tab": 0})
    return path.read_bytes()


def runs(path: Path, out: Path) -> None:
    """What every file that loads must do: train one step and save (and the save must load again)."""
    from engine.session import load_session, save_session
    from engine.train.trainer import Trainer

    s = load_session(path)
    tr = Trainer(s.spec, probes=False, checkpoint=s.checkpoint)
    for _ in tr.run(steps=1):
        pass
    save_session(out, tr.spec, tr.checkpoint(), ui=s.ui)
    load_session(out)
