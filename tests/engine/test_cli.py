"""The command line contract, run as a user would: ``python -m engine ...`` in a subprocess."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import main
from tests.conftest import spec_dict

ROOT = Path(__file__).resolve().parents[2]


def run(*args, check_rc=None):
    p = subprocess.run([sys.executable, "-m", "engine", *map(str, args)], cwd=ROOT, capture_output=True, text=True, check=False,
                       timeout=300)
    if check_rc is not None:
        assert p.returncode == check_rc, p.stderr
    return p


class Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def run_inprocess(capsys, *args):
    """The same entry point without a new interpreter (torch imports once): for the many error cases."""
    try:
        rc = main([str(a) for a in args])
    except SystemExit as exc:
        rc = exc.code
    out = capsys.readouterr()
    return Result(rc, out.out, out.err)


def assert_one_line_error(p, rc=2):
    assert p.returncode == rc, (p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    assert "Traceback" not in p.stderr


def test_presets_lists_names():
    p = run("presets", check_rc=0)
    names = p.stdout.split()
    assert "tfp-circle" in names and "spiral" in names and names == sorted(names)


def test_ops_lists_every_op_with_its_parameters():
    from engine.ops import OPS

    lines = run("ops", check_rc=0).stdout.splitlines()
    assert sorted(line.split()[1] for line in lines) == sorted(OPS)
    conv = next(line for line in lines if line.split()[1] == "conv2d")
    assert conv.startswith("convolution") and "[filters, kernel, stride, padding, dilation, groups" in conv


def test_info_json_of_a_preset():
    d = json.loads(run("info", "tfp-circle", "--json", check_rc=0).stdout)
    assert d["epochs"] == 0 and d["steps"] == 0 and d["dataset"]["name"] == "circle"
    assert d["optimizer"] == {"kind": "sgd", "lr": 0.03} and d["parameters"] == 25
    assert d["train_loss"] is None and "test_accuracy" in d


def test_train_save_continue_and_metrics(tmp_path):
    out, metrics = tmp_path / "c.dlp", tmp_path / "m.json"
    p = run("train", "tfp-circle", "--epochs", 3, "--out", out, "--metrics-json", metrics, check_rc=0)
    assert "epoch" in p.stderr  # the progress bar
    m = json.loads(metrics.read_text())
    assert m["epochs"] == 3 and m["steps"] == 75 and m["wall_seconds"] > 0
    assert set(m) >= {"train_loss", "test_loss", "train_accuracy", "test_accuracy", "history"}
    assert len(m["history"]["step_loss"]) == 75 and len(m["history"]["epoch_test_loss"]) == 3

    # continue from the file, quietly, and check the totals and info
    out2, metrics2 = tmp_path / "c2.dlp", tmp_path / "m2.json"
    p = run("train", out, "--steps", 10, "--out", out2, "--metrics-json", metrics2, "--quiet", check_rc=0)
    assert p.stdout == "" and p.stderr == ""
    m2 = json.loads(metrics2.read_text())
    assert m2["steps"] == 85 and m2["history"]["step_loss"][:75] == m["history"]["step_loss"]
    d = json.loads(run("info", out2, "--json", check_rc=0).stdout)
    assert d["steps"] == 85 and d["epochs"] == 3 and d["test_loss"] == m["history"]["epoch_test_loss"][-1]
    assert "progress   epoch 3, step 85" in run("info", out2, check_rc=0).stdout


def test_regression_metrics_have_no_accuracy(tmp_path, capsys):
    metrics = tmp_path / "m.json"
    assert run_inprocess(capsys, "train", "plane", "--epochs", 1, "--metrics-json", metrics, "--quiet").returncode == 0
    m = json.loads(metrics.read_text())
    assert "test_accuracy" not in m and "train_accuracy" not in m and m["test_loss"] is not None


def test_seed_changes_the_run(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    run_inprocess(capsys, "train", "xor", "--steps", 5, "--seed", 1, "--metrics-json", a, "--quiet")
    run_inprocess(capsys, "train", "xor", "--steps", 5, "--seed", 2, "--metrics-json", b, "--quiet")
    assert json.loads(a.read_text())["history"]["step_loss"] != json.loads(b.read_text())["history"]["step_loss"]


def test_diverged_run_exits_3_and_keeps_history(tmp_path):
    spec = spec_dict("plane", optimizer={"kind": "sgd", "lr": 9.0})
    spec["model"] = json.loads(json.dumps(spec["model"]))
    spec["model"]["nodes"].insert(1, {"id": "h", "op": "dense", "params": {"units": 16, "activation": "relu"}})
    spec["model"]["edges"] = [["input", "h"], ["h", "dense_1"], ["dense_1", "output"]]
    src, metrics = tmp_path / "div.json", tmp_path / "m.json"
    src.write_text(json.dumps(spec))
    p = run("train", src, "--epochs", 20, "--metrics-json", metrics, "--out", tmp_path / "d.dlp")
    assert p.returncode == 3, p.stderr
    assert "diverged at step" in p.stderr
    m = json.loads(metrics.read_text())
    assert m["steps"] > 0 and len(m["history"]["step_loss"]) == m["steps"]
    assert (tmp_path / "d.dlp").exists()


@pytest.mark.parametrize("args", [
    ["train", "no-such-preset"],
    ["train", "missing.json"],
    ["info", "missing.dlp"],
    ["train", "tfp-circle", "--epochs", "-3"],
    ["train", "tfp-circle", "--epochs", "ten"],
    ["train", "tfp-circle", "--epochs", "1", "--steps", "1"],
    ["train", "tfp-circle", "--device", "tpu"],
    ["frobnicate"],
])
def test_invalid_arguments_give_one_line_and_exit_2(args, capsys):
    assert_one_line_error(run_inprocess(capsys, *args))


@pytest.mark.parametrize("content, what", [
    ("{bad json", "bad.json: not valid JSON"),
    ("[1, 2]", "spec: must be a JSON object"),
    (json.dumps(spec_dict(training={"batch_size": -1})), "training.batch_size"),
    (json.dumps(spec_dict(model={"nodes": [{"id": "input", "op": "input"}, {"id": "d", "op": "dense",
     "params": {"units": 10**9}}, {"id": "output", "op": "output"}], "edges": [["input", "d"], ["d", "output"]]})),
     "model.nodes[1].params.units"),
])
def test_invalid_spec_files(tmp_path, content, what, capsys):
    f = tmp_path / "bad.json"
    f.write_text(content)
    for cmd in ("info", "train"):
        p = run_inprocess(capsys, cmd, f)
        assert_one_line_error(p)
        assert what in p.stderr


def test_corrupt_session_file(tmp_path):
    f = tmp_path / "broken.dlp"
    f.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    p = run("train", f)
    assert_one_line_error(p)
    assert "broken.dlp" in p.stderr


def test_cannot_reseed_a_trained_session(tmp_path, capsys):
    out = tmp_path / "s.dlp"
    assert run_inprocess(capsys, "train", "gauss", "--steps", 3, "--out", out, "--quiet").returncode == 0
    p = run_inprocess(capsys, "train", out, "--seed", 4)
    assert_one_line_error(p)
    assert "--seed" in p.stderr


def test_engine_import_pulls_in_no_qt():
    code = ("import sys, engine, engine.cli, engine.session, engine.train.trainer; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'PyQt5', 'PyQt6', 'shiboken6', 'pyqtgraph')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_pauses_saves_and_exits_130(tmp_path, presses):
    import signal
    import time
    out = tmp_path / "int.dlp"
    proc = subprocess.Popen([sys.executable, "-m", "engine", "train", "tfp-circle", "--epochs", "100000",
                             "--out", str(out), "--quiet"], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    time.sleep(8)  # torch import plus some training
    for _ in range(presses):  # a second Ctrl+C 20 ms later lands during the pause or the save
        proc.send_signal(signal.SIGINT)
        time.sleep(0.02)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted: paused at epoch" in err and "saved to" in err
    d = json.loads(run("info", out, "--json", check_rc=0).stdout)
    assert d["steps"] > 0 and d["has_weights"] and d["status"] == "paused"
    run("train", out, "--steps", 1, "--quiet", check_rc=0)  # consistent: it continues


def test_a_closed_pipe_ends_quietly():
    p = subprocess.run(f"'{sys.executable}' -m engine info spiral --json | head -c 10", shell=True, cwd=ROOT,
                       capture_output=True, text=True, check=False, timeout=120)
    assert p.stdout == '{\n  "name"' and p.stderr == ""


def test_folders_and_text_files_named_dlp_get_the_right_error(tmp_path, capsys):
    p = run_inprocess(capsys, "info", tmp_path)
    assert_one_line_error(p)
    assert f"error: {tmp_path}: is a folder" in p.stderr
    bad = tmp_path / "bad.dlp"
    bad.write_text("not a session")
    p = run_inprocess(capsys, "info", bad)
    assert f"error: {bad}: not a DL Playground session" in p.stderr
