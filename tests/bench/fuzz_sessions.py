"""The larger fuzz run (not a test; prints counts): N mutated session files (default 10,000) through every
mutator of tests/fuzzing.py, zip bombs measured in a child process, kill -9 during saves, and Ctrl+C.

    .venv/bin/python tests/bench/fuzz_sessions.py [N]

Expected: 0 exceptions of other types, 0 accepted files that fail their next step or save, bombs refused
with peak memory under 2x the largest legitimate tensor, 0 temp files after the kill -9 saves and a reopen,
Ctrl+C and double Ctrl+C exit 130 with status "paused" and no traceback."""
from __future__ import annotations

import collections
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from engine.errors import EngineError
from engine.session import TEMP_SUFFIX, load_session
from tests.fuzzing import MUTATORS, base_session, runs


def fuzz(n: int, folder: Path) -> None:
    base = base_session(folder)
    outcome: collections.Counter[str] = collections.Counter()
    reasons: collections.Counter[str] = collections.Counter()
    failures: list[str] = []
    names = sorted(MUTATORS)
    t0 = time.perf_counter()
    for i in range(n):
        name = names[i % len(names)]
        data = MUTATORS[name](random.Random(i), base)
        path = folder / "case.dlp"
        path.write_bytes(data)
        try:
            load_session(path)
        except EngineError as exc:
            outcome["refused"] += 1
            reasons[re.sub(r"[\d,]+", "N", exc.why)[:60]] += 1
            continue
        except BaseException as exc:  # noqa: BLE001 — counting what must never happen
            outcome["other exception"] += 1
            failures.append(f"case {i} ({name}): load raised {type(exc).__name__}: {exc}")
            continue
        try:
            runs(path, folder / "again.dlp")
            outcome["accepted and ran"] += 1
        except BaseException as exc:  # noqa: BLE001
            outcome["accepted but failed"] += 1
            failures.append(f"case {i} ({name}): loaded, then {type(exc).__name__}: {exc}")
    print(f"{n} mutated files in {time.perf_counter() - t0:.0f} s: " + ", ".join(f"{k} {v}" for k, v in outcome.items()))
    for k in ("other exception", "accepted but failed"):  # both must be 0
        print(f"  {k}: {outcome[k]}")
    print("  most common reasons:")
    for why, count in reasons.most_common(12):
        print(f"    {count:6}  {why}")
    for line in failures[:20]:
        print("  FAIL", line)


def bomb(folder: Path, members: int) -> Path:
    """The base session with its first ``members`` tensor members swapped for 1 GiB each, compressed exactly
    200× (the ratio allowed), and the manifest listing their sizes: only the size caps can stop it."""
    with zipfile.ZipFile(folder / "base.dlp") as zf:
        m = {i.filename: zf.read(i) for i in zf.infolist()}
    big = ["weights.safetensors", "optimizer.safetensors"][:members]
    manifest = json.loads(m["manifest.json"])
    for name in big:
        manifest["members"][name] = {"sha256": "0" * 64, "size": 1 << 30}
    path = folder / f"bomb{members}.dlp"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", json.dumps(manifest))
        for name, data in m.items():
            if name == "manifest.json":
                continue
            if name not in big:
                zf.writestr(name, data, compress_type=zipfile.ZIP_STORED)
                continue
            block = os.urandom(1 << 16)  # one random 64 KiB block in 200, zeros otherwise: about 200x
            with zf.open(zipfile.ZipInfo(name), "w", force_zip64=True) as f:
                for k in range(1 << 14):
                    f.write(block if k % 200 == 0 else bytes(1 << 16))
    return path


def peak_load(path: Path) -> tuple[str, float, float]:
    """Load in a child process: (outcome, seconds, peak RSS in MB above the interpreter with the engine)."""
    code = ("import resource, sys, time; from engine.session import load_session; "
            "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; t = time.perf_counter()\n"
            "try:\n load_session(sys.argv[1]); out = 'loaded'\n"
            "except Exception as e:\n out = type(e).__name__ + ': ' + str(e)[-90:]\n"
            "print(out); print(time.perf_counter() - t); "
            "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)")
    p = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, cwd=ROOT, check=False)
    out, secs, mb = p.stdout.strip().splitlines()[-3:]
    return out, float(secs), float(mb)


def kill_saves(folder: Path, times: int) -> None:
    target = folder / "killed.dlp"
    code = ("import sys; from engine.session import load_session, save_session\n"
            "s = load_session(sys.argv[1])\n"
            "while True:\n save_session(sys.argv[2], s.spec, s.checkpoint, s.ui)")
    rng = random.Random(0)
    littered = 0
    for _ in range(times):
        p = subprocess.Popen([sys.executable, "-c", code, str(folder / "base.dlp"), str(target)], cwd=ROOT)
        while not target.exists():  # the first save has landed: from now on it is always mid-save or between
            time.sleep(0.01)
        time.sleep(rng.random() * 0.5)
        p.send_signal(signal.SIGKILL)
        p.wait()
        littered += any(f.name.endswith(TEMP_SUFFIX) for f in folder.iterdir())  # the next save cleans it
    left = [f for f in folder.iterdir() if f.name.endswith(TEMP_SUFFIX)]
    load_session(target)
    after = [f for f in folder.iterdir() if f.name.endswith(TEMP_SUFFIX)]
    print(f"kill -9 during saves ×{times}: {littered} kills left a temp file (each removed by the next save); "
          f"{len(left)} left at the end, {len(after)} after reopening; the file still loads")


def ctrl_c(folder: Path, double: bool) -> None:
    out = folder / "interrupted.dlp"
    p = subprocess.Popen([sys.executable, "-m", "engine", "train", "spiral", "--epochs", "100000", "--quiet",
                          "--out", str(out)], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    time.sleep(4)
    p.send_signal(signal.SIGINT)
    if double:
        time.sleep(0.02)
        p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    status = load_session(out).checkpoint.status  # type: ignore[union-attr]
    print(f"{'double ' if double else ''}Ctrl+C: exit {p.returncode}, saved status {status!r}, "
          f"traceback {'yes' if 'Traceback' in err else 'no'}")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        fuzz(n, folder)
        for k in (1, 2):
            out, secs, mb = peak_load(bomb(folder, k))
            print(f"bomb with {k} member(s) of 1 GiB at 200x: {out} in {secs:.2f} s, peak +{mb:.0f} MB")
        kill_saves(folder, 50)
        ctrl_c(folder, double=False)
        ctrl_c(folder, double=True)


if __name__ == "__main__":
    main()
