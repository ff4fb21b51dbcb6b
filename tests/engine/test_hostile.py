"""Files and specs from a hostile or careless user: only the engine's own error comes out, and a file that
loads is a file that runs (one step and a save succeed)."""
from __future__ import annotations

import hashlib
import json
import os
import struct
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from engine.check import parse_spec
from engine.errors import EngineError, SessionFileError, SpecError
from engine.presets import load_preset
from engine.session import TEMP_SUFFIX, load_session, save_session
from engine.train.trainer import Trainer
from tests.conftest import spec_dict


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """A trained moons session with Adam state, dropout and batch norm: every kind of member."""
    from engine.presets import mlp

    spec = parse_spec(spec_dict("moons", model=mlp([6, 6], "relu", "sigmoid", dropout=0.1, batch_norm=True),
                                optimizer={"kind": "adam", "lr": 0.01}))
    tr = Trainer(spec, probes=False)
    for _ in tr.run(steps=37):  # mid-epoch: the permutation is saved too
        pass
    path = tmp_path_factory.mktemp("hostile") / "moons.dlp"
    save_session(path, tr.spec, tr.checkpoint(), ui={"views": {"Output": True}})
    return path


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def write(dst: Path, m: dict[str, bytes], fix_sums: bool = True) -> Path:
    """Write members as a session; with ``fix_sums`` the manifest's checksums and sizes are made to match, so
    only the checks behind them can refuse the file."""
    if fix_sums:
        manifest = json.loads(m["manifest.json"])
        manifest["members"] = {n: {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d)}
                               for n, d in m.items() if n != "manifest.json"}
        m = {**m, "manifest.json": json.dumps(manifest).encode()}
    with zipfile.ZipFile(dst, "w") as zf:
        for name, data in m.items():
            zf.writestr(name, data)
    return dst


def edit_manifest(saved: Path, dst: Path, change: Any) -> Path:
    m = members(saved)
    manifest = json.loads(m["manifest.json"])
    change(manifest)
    m["manifest.json"] = json.dumps(manifest).encode()
    return write(dst, m, fix_sums=False)


def edit_tensors(saved: Path, dst: Path, member: str, change: Any) -> Path:
    m = members(saved)
    tensors = dict(st_load(m[member]))
    change(tensors)
    m[member] = st_save(tensors)
    return write(dst, m)


def refused(path: Path, match: str) -> SessionFileError:
    with pytest.raises(SessionFileError, match=match) as info:
        load_session(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    return info.value


def runs(path: Path, tmp_path: Path) -> None:
    """The property every loadable file has: it trains one step and saves."""
    s = load_session(path)
    tr = Trainer(s.spec, probes=False, checkpoint=s.checkpoint)
    for _ in tr.run(steps=1):
        pass
    save_session(tmp_path / "again.dlp", tr.spec, tr.checkpoint(), ui=s.ui)
    load_session(tmp_path / "again.dlp")


# --- the zip container ------------------------------------------------------------------------------

def test_encrypted_member_is_refused(saved, tmp_path):
    raw = bytearray(saved.read_bytes())
    for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # local and central headers' flag bits
        i = raw.find(sig)
        while i != -1:
            raw[i + flag_at] |= 0x1
            i = raw.find(sig, i + 4)
    bad = tmp_path / "enc.dlp"
    bad.write_bytes(bytes(raw))
    refused(bad, "encrypted")


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA, 99])
def test_only_stored_and_deflate_are_read(saved, tmp_path, method):
    raw = bytearray(saved.read_bytes())
    i = raw.find(b"PK\x01\x02")  # the first central-directory entry: its method field
    raw[i + 10:i + 12] = struct.pack("<H", method)
    bad = tmp_path / "method.dlp"
    bad.write_bytes(bytes(raw))
    refused(bad, "compression method")


def test_corrupt_deflate_data(saved, tmp_path):
    m = members(saved)
    bad = tmp_path / "deflate.dlp"
    with zipfile.ZipFile(bad, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in m.items():
            zf.writestr(name, data)
    raw = bytearray(bad.read_bytes())
    start = raw.find(b"manifest.json") + len("manifest.json")
    for k in range(start + 10, start + 40):
        raw[k] ^= 0x5A
    bad.write_bytes(bytes(raw))
    refused(bad, "unreadable|corrupt|not valid")


def test_a_member_larger_than_this_network_can_need_is_not_inflated(saved, tmp_path):
    m = members(saved)
    m["history.safetensors"] = os.urandom(8 << 20)  # incompressible: passes the ratio check, not the cap
    refused(write(tmp_path / "big.dlp", m), "history.safetensors is 8,388,608 bytes; this network's state takes at most")


def test_folder_and_text_file_named_dlp(tmp_path):
    refused(tmp_path, "is a folder")
    text = tmp_path / "bad.dlp"
    text.write_text("hello")
    refused(text, "not a DL Playground session")


# --- the manifest ------------------------------------------------------------------------------------

def test_json_nested_deep_is_refused_before_parsing(saved, tmp_path):
    m = members(saved)
    m["manifest.json"] = b"[" * 100_000 + b"]" * 100_000
    refused(write(tmp_path / "deep.dlp", m, fix_sums=False), "manifest.json: nested 100000 levels deep")


def test_huge_integer_is_refused(saved, tmp_path):
    m = members(saved)
    text = m["manifest.json"].decode()
    m["manifest.json"] = text.replace('"step":', '"step": ' + "9" * 5000 + ', "x":', 1).encode()
    refused(write(tmp_path / "int.dlp", m, fix_sums=False), "an integer of 5,000 digits")


@pytest.mark.parametrize(("where", "value", "match"), [
    ("elapsed", float("inf"), "state.elapsed"),
    ("elapsed", float("nan"), "state.elapsed"),
    ("step", "12", "state.step"),
    ("step", True, "state.step"),
])
def test_run_state_values_are_checked(saved, tmp_path, where, value, match):
    bad = edit_manifest(saved, tmp_path / "state.dlp", lambda d: d["state"].__setitem__(where, value))
    refused(bad, match)


def test_ui_that_could_not_be_saved_again_is_refused(saved, tmp_path):
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(200):
        node["a"] = {}
        node = node["a"]
    refused(edit_manifest(saved, tmp_path / "ui.dlp", lambda d: d.__setitem__("ui", deep)), "manifest.json")
    refused(edit_manifest(saved, tmp_path / "ui2.dlp", lambda d: d.__setitem__("ui", {"x": float("inf")})),
            "ui.x: must be a finite number")


def test_optimizer_groups_come_from_the_spec(saved, tmp_path):
    def tamper(d: dict[str, Any]) -> None:
        group = d["state"]["optimizer_groups"][0]
        group["amsgrad"] = not group["amsgrad"]
        group["betas"] = 0.9
        group["params"] = list(reversed(group["params"]))
    bad = edit_manifest(saved, tmp_path / "groups.dlp", tamper)
    runs(bad, tmp_path)  # loads, trains and saves: the spec decides the groups


def test_optimizer_state_of_another_optimizer_is_refused(saved, tmp_path):
    bad = edit_tensors(saved, tmp_path / "opt.dlp", "optimizer.safetensors",
                       lambda t: [t.pop(k) for k in [k for k in t if k.endswith("exp_avg_sq")]])
    refused(bad, r"optimizer state for parameter 0 holds \['exp_avg', 'step'\], but the spec's optimizer keeps")


@pytest.mark.parametrize("change", ["shape", "dtype"])
def test_optimizer_state_of_the_wrong_shape_or_dtype(saved, tmp_path, change):
    def tamper(t: dict[str, torch.Tensor]) -> None:
        t["0.exp_avg"] = torch.zeros(3, 3) if change == "shape" else t["0.exp_avg"].double()
    refused(edit_tensors(saved, tmp_path / "o.dlp", "optimizer.safetensors", tamper), "optimizer state 0.exp_avg")


def test_float_permutation_is_refused(saved, tmp_path):
    bad = edit_tensors(saved, tmp_path / "perm.dlp", "rng.safetensors",
                       lambda t: t.__setitem__("perm", t["perm"].double()))
    refused(bad, "perm is not an order")


def test_bf16_history_is_refused(saved, tmp_path):
    bad = edit_tensors(saved, tmp_path / "hist.dlp", "history.safetensors",
                       lambda t: t.__setitem__("step_loss", t["step_loss"].bfloat16()))
    refused(bad, "history.safetensors: step_loss is torch.bfloat16")


def test_non_finite_weights_load_and_training_reports_the_divergence(saved, tmp_path):
    def tamper(t: dict[str, torch.Tensor]) -> None:
        key = min(k for k in t if k.endswith("weight"))
        t[key] = t[key].clone().fill_(float("nan"))
    bad = edit_tensors(saved, tmp_path / "nan.dlp", "weights.safetensors", tamper)
    runs(bad, tmp_path)  # a run's own state may overflow; the next step says so instead of crashing
    s = load_session(bad)
    tr = Trainer(s.spec, probes=False, checkpoint=s.checkpoint)
    for _ in tr.run(steps=1):
        pass
    assert tr.status == "diverged" and "the loss became nan" in tr.message


# --- temp files ----------------------------------------------------------------------------------------

def test_stale_temp_files_of_dead_saves_are_removed(saved, tmp_path):
    path = tmp_path / "s.dlp"
    path.write_bytes(saved.read_bytes())
    dead = tmp_path / f".s.dlp.{2**22 + 12345}.abcd{TEMP_SUFFIX}"  # above Linux's default pid_max: no such process
    mine = tmp_path / f".s.dlp.{os.getpid()}.efgh{TEMP_SUFFIX}"  # a save of this process may be under way
    other = tmp_path / f".other.dlp.{2**22 + 12345}.ijkl{TEMP_SUFFIX}"  # another file's: not ours to judge
    for f in (dead, mine, other):
        f.write_bytes(b"partial")
    load_session(path)
    assert not dead.exists() and mine.exists() and other.exists()
    mine.unlink()
    dead.write_bytes(b"partial")
    s = load_session(path)
    save_session(path, s.spec, s.checkpoint, s.ui)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".other.dlp." + other.name.split(".", 3)[3], "s.dlp"])


def test_a_failed_save_leaves_no_temp_file(saved, tmp_path, monkeypatch):
    s = load_session(saved)

    def boom(*args: Any) -> bytes:
        raise OSError(28, "No space left on device")
    monkeypatch.setattr("engine.session._tensors", boom)
    with pytest.raises((EngineError, OSError)):
        save_session(tmp_path / "x.dlp", s.spec, s.checkpoint, s.ui)
    assert list(tmp_path.iterdir()) == []


# --- strict specs --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "match"), [
    (lambda d: d["model"]["nodes"][1]["params"].__setitem__("units", True), r"model.nodes\[1\].params.units"),
    (lambda d: d["optimizer"].__setitem__("lr", "0.03"), "optimizer.*lr"),
    (lambda d: d["model"]["nodes"][0].__setitem__("position", [float("nan"), float("inf")]),
     r"model.nodes\[0\].position\[\d\]: must be a finite number"),
    (lambda d: d.setdefault("regularization", {}).__setitem__("early_stopping", {"min_delta": float("inf")}),
     "regularization.early_stopping.min_delta"),
    (lambda d: d["training"].__setitem__("seed", 10 ** 5000), "training.seed: an integer of more than 40 digits"),
    (lambda d: d["dataset"].__setitem__("samples", 500.0), "dataset.*samples"),
])
def test_specs_are_strict(change, match):
    d = spec_dict("tfp-circle")
    change(d)
    with pytest.raises(SpecError, match=match):
        parse_spec(d)


def test_a_spec_nested_100000_deep_is_a_clear_error(tmp_path):
    from engine.check import load_spec_json

    p = tmp_path / "deep.json"
    p.write_text('{"name": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(SpecError, match=r"nested 10000\d levels deep"):
        load_spec_json(p)
    d: dict[str, Any] = {"name": "x"}
    for _ in range(100_000):
        d = {"description": d}
    with pytest.raises(SpecError, match="nested more than"):
        parse_spec(d)


def test_the_presets_still_parse_strictly():
    from engine.presets import preset_names

    for name in preset_names():
        assert load_preset(name).name == name
