from __future__ import annotations

import hashlib
import json
import pickle
import zipfile
from pathlib import Path

import pytest
from safetensors.torch import load as st_load

from engine.errors import EngineError, SessionFileError
from engine.presets import load_preset
from engine.session import load_session, save_session
from engine.train.trainer import Trainer


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    spec = load_preset("moons")
    tr = Trainer(spec, probes=False)
    for _ in tr.run(steps=60):
        pass
    path = tmp_path_factory.mktemp("s") / "moons.dlp"
    save_session(path, tr.spec, tr.checkpoint(), ui={"open_views": ["output", "curves"]})
    return tr, path


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def rewrite(src: Path, dst: Path, change) -> Path:
    """Copy a session, letting `change` edit its members dict; the manifest's hashes are kept as they were."""
    m = members(src)
    change(m)
    with zipfile.ZipFile(dst, "w") as zf:
        for name, data in m.items():
            zf.writestr(name, data)
    return dst


def test_save_load_save_is_identical_in_every_tensor_and_byte(trained, tmp_path):
    tr, path = trained
    loaded = load_session(path)
    assert loaded.ui == {"open_views": ["output", "curves"]}
    assert loaded.spec == tr.spec and loaded.checkpoint.step == 60
    again = tmp_path / "again.dlp"
    save_session(again, loaded.spec, loaded.checkpoint, ui=loaded.ui)
    a, b = members(path), members(again)
    assert a.keys() == b.keys()
    for name in a:
        if name.endswith(".safetensors"):
            ta, tb = st_load(a[name]), st_load(b[name])
            assert ta.keys() == tb.keys()
            for k in ta:
                assert ta[k].dtype == tb[k].dtype and ta[k].numpy().tobytes() == tb[k].numpy().tobytes(), (name, k)
    assert path.read_bytes() == again.read_bytes()


def test_spec_only_session(tmp_path):
    p = tmp_path / "spec.dlp"
    save_session(p, load_preset("xor"))
    s = load_session(p)
    assert s.checkpoint is None and s.spec == load_preset("xor")


def test_manifest_lists_checksums(trained):
    _, path = trained
    m = members(path)
    manifest = json.loads(m["manifest.json"])
    assert manifest["format_version"] == 1 and manifest["kind"] == "dl-playground-session"
    for name, info in manifest["members"].items():
        assert hashlib.sha256(m[name]).hexdigest() == info["sha256"]
    assert not any(name.endswith((".pt", ".pkl", ".pth")) for name in m)


def expect_error(path, match):
    with pytest.raises(SessionFileError, match=match) as info:
        load_session(path)
    assert "\n" not in str(info.value)
    return info.value


def test_truncated_zip(trained, tmp_path):
    _, path = trained
    bad = tmp_path / "cut.dlp"
    bad.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    expect_error(bad, "unreadable|not a DL Playground|corrupt")


def test_not_a_zip(tmp_path):
    bad = tmp_path / "x.dlp"
    bad.write_text("hello")
    expect_error(bad, "not a DL Playground session")


def test_missing_file(tmp_path):
    expect_error(tmp_path / "nope.dlp", "no such file")


def test_bad_manifest_json(trained, tmp_path):
    _, path = trained
    bad = rewrite(path, tmp_path / "b.dlp", lambda m: m.update({"manifest.json": b"{not json"}))
    expect_error(bad, "manifest.json: not valid JSON")


def test_manifest_wrong_types(trained, tmp_path):
    _, path = trained

    def change(m):
        d = json.loads(m["manifest.json"])
        d["state"]["step"] = "many"
        m["manifest.json"] = json.dumps(d).encode()
    expect_error(rewrite(path, tmp_path / "t.dlp", change), r"manifest.json: state.step")


def test_invalid_spec_inside_session_names_the_field(trained, tmp_path):
    _, path = trained

    def change(m):
        d = json.loads(m["manifest.json"])
        d["spec"]["model"]["nodes"][1]["op"] = "teleport"
        m["manifest.json"] = json.dumps(d).encode()
    err = expect_error(rewrite(path, tmp_path / "u.dlp", change), r"spec: model.nodes\[1\].op: unknown op 'teleport'")
    assert err.what == str(tmp_path / "u.dlp")  # the path as given


def test_newer_format_is_refused(trained, tmp_path):
    _, path = trained

    def change(m):
        d = json.loads(m["manifest.json"])
        d["format_version"] = 99
        m["manifest.json"] = json.dumps(d).encode()
    expect_error(rewrite(path, tmp_path / "v.dlp", change), "newer than this DL Playground reads")


def test_checksum_mismatch(trained, tmp_path):
    _, path = trained

    def change(m):
        data = bytearray(m["weights.safetensors"])
        data[-1] ^= 0xFF
        m["weights.safetensors"] = bytes(data)
    expect_error(rewrite(path, tmp_path / "c.dlp", change), "weights.safetensors is corrupt")


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/passwd", "a/../../b"])
def test_unsafe_member_paths(trained, tmp_path, name):
    _, path = trained
    expect_error(rewrite(path, tmp_path / "p.dlp", lambda m: m.update({name: b"x"})), "unsafe path")


def test_unexpected_member(trained, tmp_path):
    _, path = trained
    expect_error(rewrite(path, tmp_path / "e.dlp", lambda m: m.update({"notes.txt": b"x"})), "unexpected member")


def test_oversized_member_is_refused_from_its_header(trained, tmp_path, monkeypatch):
    _, path = trained
    monkeypatch.setattr("engine.session.MAX_MEMBER", 1000)
    expect_error(path, "too large")


def test_over_compressed_member(trained, tmp_path):
    _, path = trained

    def change(m):
        m["history.safetensors"] = b"\0" * (20 << 20)  # 20 MiB of zeros deflates to ~20 KiB
    bad = tmp_path / "bomb.dlp"
    m = members(path)
    change(m)
    with zipfile.ZipFile(bad, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in m.items():
            zf.writestr(name, data)
    expect_error(bad, "over-compressed")


class _Marker:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.write_text, (Path(self.path), "pwned"))


@pytest.mark.parametrize("member", ["weights.safetensors", "data.pkl"])
def test_pickle_member_never_executes(trained, tmp_path, member):
    _, path = trained
    marker = tmp_path / "marker.txt"
    payload = pickle.dumps(_Marker(str(marker)))

    def change(m):
        m[member] = payload
        if member == "weights.safetensors":  # make the checksum match so only the format stops it
            d = json.loads(m["manifest.json"])
            d["members"][member] = {"sha256": hashlib.sha256(payload).hexdigest(), "size": len(payload)}
            m["manifest.json"] = json.dumps(d).encode()
    bad = rewrite(path, tmp_path / "pk.dlp", change)
    with pytest.raises(EngineError):
        load_session(bad)
    assert not marker.exists()


def test_weights_that_do_not_fit_the_network(trained, tmp_path):
    _, path = trained
    other = Trainer(load_preset("tfp-circle"), probes=False)
    p = tmp_path / "mix.dlp"
    save_session(p, other.spec, other.checkpoint())
    tiny = members(p)["weights.safetensors"]

    def change(m):
        m["weights.safetensors"] = tiny
        d = json.loads(m["manifest.json"])
        d["members"]["weights.safetensors"] = {"sha256": hashlib.sha256(tiny).hexdigest(), "size": len(tiny)}
        m["manifest.json"] = json.dumps(d).encode()
    # Refused when the file is read, not when it is first trained: a file that loads is a file that runs.
    expect_error(rewrite(path, tmp_path / "w.dlp", change), r"weights.safetensors: layers.dense_1.bias is "
                 r"torch.float32 \(4,\), the network needs torch.float32 \(8,\)")


def test_failed_save_leaves_the_previous_file_intact(trained, tmp_path, monkeypatch):
    tr, path = trained
    target = tmp_path / "keep.dlp"
    target.write_bytes(path.read_bytes())
    before = target.read_bytes()

    def boom(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr("engine.session.os.fsync", boom)
    with pytest.raises(SessionFileError, match="No space left on device.*previous file is unchanged"):
        save_session(target, tr.spec, tr.checkpoint())
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.dlp"]  # no temp file left behind


def test_save_into_missing_folder_is_a_clear_error(trained, tmp_path):
    tr, _ = trained
    with pytest.raises(SessionFileError, match="cannot save"):
        save_session(tmp_path / "no" / "such" / "x.dlp", tr.spec, tr.checkpoint())
