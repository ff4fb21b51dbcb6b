"""Command line: ``python -m engine presets | ops | templates | info FILE | train SOURCE | probe FILE``."""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from .check import check_spec, load_spec_json
from .errors import EngineError, SessionFileError, SpecError
from .ops import OPS, fmt_shape
from .presets import load_preset, preset_names
from .session import Session, atomic_write, is_session_file, load_session, save_session
from .spec import SessionSpec

EXIT_OK, EXIT_INVALID, EXIT_DIVERGED = 0, 2, 3
EXIT_INTERRUPTED = 130  # Ctrl+C: paused at a step boundary and saved (with --out), as shells report SIGINT
EXIT_PIPE = 141  # the reader of our output went away (`| head`): end quietly, as shells report SIGPIPE


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"error: arguments: {message} (see --help)", file=sys.stderr)
        sys.exit(EXIT_INVALID)


def resolve(source: str) -> Session:
    """A preset name, a spec JSON file or a .dlp session file, loaded and validated."""
    path = Path(source)
    if path.is_dir():
        raise SessionFileError(source, "is a folder; give a .dlp session, a spec .json or a preset name")
    if path.is_file():
        if is_session_file(path) or path.suffix.lower() == ".dlp":
            return load_session(path)  # a .dlp that is not a zip is "not a DL Playground session", not bad JSON
        return Session(load_spec_json(path), None, {})
    if path.suffix in (".json", ".dlp") or "/" in source or "\\" in source:
        raise SpecError(source, "no such file")
    return Session(load_preset(source), None, {})


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def _last(values: Sequence[float]) -> float | None:
    return _finite(float(values[-1])) if len(values) else None


def _describe(spec: SessionSpec, session: Session) -> dict[str, Any]:
    info = check_spec(spec)
    ds = spec.dataset
    ck = session.checkpoint
    hist = ck.history if ck is not None else {}
    out: dict[str, Any] = {
        "name": spec.name, "format_version": spec.format_version, "task": ds.task,
        "epochs": ck.epoch if ck else 0, "steps": ck.step if ck else 0,
        "status": ck.status if ck else "ready", "has_weights": ck is not None,
        "dataset": ds.model_dump(mode="json"), "optimizer": spec.optimizer.model_dump(mode="json"),
        "schedule": spec.schedule.model_dump(mode="json"), "loss": spec.loss,
        "regularization": spec.regularization.model_dump(mode="json"),
        "training": spec.training.model_dump(mode="json"),
        "parameters": info.total_params,
        "nodes": [{"id": n, "op": info.nodes[n].op, "shape": list(info.nodes[n].shape),
                   "parameters": info.nodes[n].n_params, "params": info.nodes[n].params.model_dump(mode="json")}
                  for n in info.order],
        "train_loss": _last(hist.get("epoch_train_loss", [])), "test_loss": _last(hist.get("epoch_test_loss", [])),
    }
    if ds.task in ("classification", "sequence"):
        out["train_accuracy"] = _last(hist.get("epoch_train_accuracy", []))
        out["test_accuracy"] = _last(hist.get("epoch_test_accuracy", []))
    if ds.task == "sequence":
        out["test_sequence_accuracy"] = _last(hist.get("epoch_test_sequence_accuracy", []))
    return out


def _plain(v: Any) -> str:
    """A spec value as a person reads it: lists without brackets or quotes."""
    return ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else f"{v:g}" if isinstance(v, float) else str(v)


def _fmt(v: float | None, pct: bool = False) -> str:
    if v is None:
        return "—"
    return f"{100 * v:.1f}%" if pct else f"{v:.4g}"


def cmd_info(args: argparse.Namespace) -> int:
    session = resolve(args.file)
    d = _describe(session.spec, session)
    if args.json:
        print(json.dumps(d, indent=2))
        return EXIT_OK
    spec, ds = session.spec, session.spec.dataset
    fields = ", ".join(f"{k} {_plain(v)}" for k, v in d["dataset"].items() if k != "kind")
    opt = ", ".join(f"{k}={v}" for k, v in d["optimizer"].items() if k != "kind")
    print(f"{spec.name or Path(args.file).stem}" + (f" — {spec.description}" if spec.description else ""))
    print(f"dataset    {ds.kind} ({ds.task}): {fields}")
    print(f"model      {len(d['nodes'])} nodes, {d['parameters']:,} parameters")
    for n in d["nodes"]:
        act = n["params"].get("activation") or n["params"].get("fn") or ""
        print(f"  {n['id']:<14} {n['op']:<11} {fmt_shape(tuple(n['shape'])):<12} {n['parameters']:>8,} params  {act}")
    print(f"loss       {spec.loss}")
    print(f"optimizer  {spec.optimizer.kind} {opt}; schedule {spec.schedule.kind}")
    reg = spec.regularization
    print(f"regularize l1={reg.l1:g} l2={reg.l2:g} weight_decay={reg.weight_decay:g} grad_clip={reg.grad_clip} "
          f"early_stopping={'on' if reg.early_stopping else 'off'}"
          + (f" augment.noise={reg.augment.noise:g}" if reg.augment.noise else "")
          + (f" beta={reg.beta:g} (warm-up {reg.beta_warmup} epochs)" if any(n.op == "reparam" for n in
                                                                               spec.model.nodes) else ""))
    t = spec.training
    print(f"training   batch {t.batch_size}, {t.epochs} epochs by default, seed {t.seed}, {t.device}")
    line = f"progress   epoch {d['epochs']}, step {d['steps']}, {d['status']}"
    if d["has_weights"]:
        line += f"; train loss {_fmt(d['train_loss'])}, test loss {_fmt(d['test_loss'])}"
        if "test_accuracy" in d:
            line += f", test accuracy {_fmt(d['test_accuracy'], pct=True)}"
    else:
        line += " (no weights: a spec)"
    print(line)
    return EXIT_OK


def cmd_pretrain(args: argparse.Namespace) -> int:
    """Train a preset from its seed and write its weights (safetensors, with what it was trained from) where
    blocks can start from them: assets/weights/PRESET.safetensors in this checkout unless --out says."""
    import torch
    from safetensors.torch import save as st_save

    from .pretrained import SUFFIX, WEIGHTS_DIR
    from .train.trainer import Trainer

    spec = load_preset(args.preset)
    trainer = Trainer(spec, probes=False)
    for _ in trainer.run(epochs=args.epochs or spec.training.epochs, snapshot_every=1e9):
        pass
    m = trainer.evaluate()
    state = {k: v.detach().cpu().contiguous() for k, v in trainer.model.state_dict().items()}
    meta = {"preset": args.preset, "epochs": str(trainer.epoch), "seed": str(spec.training.seed),
            "test_accuracy": f"{m.get('test_accuracy', float('nan')):.4f}", "torch": torch.__version__}
    data = st_save(state, metadata=meta)
    path = Path(args.out) if args.out else Path(str(WEIGHTS_DIR)) / f"{args.preset}{SUFFIX}"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: f.write(data))
    print(f"{path}: {args.preset}, {trainer.epoch} epochs, test accuracy {meta['test_accuracy']}")
    return EXIT_OK


def cmd_ops(args: argparse.Namespace) -> int:
    for op in sorted(OPS.values(), key=lambda o: (o.family, o.name)):
        fields = ", ".join(op.params.model_fields)
        ports = f" inputs: {', '.join(op.ports)}." if op.ports else ""
        print(f"{op.family:12} {op.name:18} {op.doc}{ports}" + (f" [{fields}]" if fields else ""))
    return EXIT_OK


def cmd_templates(args: argparse.Namespace) -> int:
    from .templates import TEMPLATES

    for t in TEMPLATES.values():
        print(f"{t.name:18} {t.data:8} {t.title}: {t.doc}")
    return EXIT_OK


def cmd_probe(args: argparse.Namespace) -> int:
    import io

    import numpy as np

    from .probes import PROBES, ProbeRequest, run_probe
    from .train.trainer import Trainer

    session = resolve(args.file)
    trainer = Trainer(session.spec, probes=False, checkpoint=session.checkpoint)
    names = trainer.applicable_probes
    if args.list:
        for name in names:
            takes = "".join(f" [--{t}]" for t in sorted(PROBES[name].takes))
            print(f"{name:12} {PROBES[name].doc}{takes}")
        return EXIT_OK
    if args.probe is None or args.out is None:
        raise SpecError("arguments", "give --probe NAME and --out FILE.npz, or --list")
    if args.probe not in PROBES:
        raise SpecError("--probe", f"unknown probe {args.probe!r} (known: {', '.join(PROBES)})")
    if args.probe not in names:
        raise SpecError("--probe", f"{args.probe} does not apply to this session (these do: {', '.join(names)})")
    samples = None
    if args.samples is not None:
        start, sep, stop = args.samples.partition(":")
        if not sep or not start.strip().isdigit() or not stop.strip().isdigit():
            raise SpecError("--samples", f"give a range START:STOP such as 0:200, not {args.samples!r}")
        samples = (int(start), int(stop))
    points = None
    if args.points is not None:
        try:
            rows = [[float(v) for v in row.split(",")] for row in args.points.split(";") if row.strip()]
        except ValueError:
            raise SpecError("--points", f"give numbers such as 0,0;1,-1, not {args.points!r}") from None
        if not rows or len({len(r) for r in rows}) != 1:
            raise SpecError("--points", "give every point the same number of values")
        points = tuple(v for r in rows for v in r)
    request = ProbeRequest(sample=args.sample, layer=args.layer, samples=samples, method=args.method,
                           target=args.target, split=args.split or "test", eps=args.eps, points=points,
                           size=args.size, width=args.width, temperature=args.temperature)
    takes = PROBES[args.probe].takes
    for option in ("sample", "layer", "samples", "method", "target", "split", "eps", "points", "size", "width",
                   "temperature"):
        if getattr(args, option) is not None and option not in takes:
            raise SpecError(f"--{option}", f"{args.probe} does not take a {option}")
    if args.sample is not None and "split" not in takes and not 0 <= args.sample < trainer.n_train:
        raise SpecError("--sample", f"{args.sample} is outside the training set (0 … {trainer.n_train - 1})")
    try:
        result = run_probe(trainer.prober.ctx, args.probe, trainer.step, request)
    except KeyError as exc:
        message = str(exc.args[0])
        # the longer names first: a message about a "sampling" method or "samples" is not about --sample
        field = next((f"--{o}" for o in ("method", "width", "temperature", "samples", "sample", "target", "split",
                                         "eps", "points", "size")
                      if o in message),
                     "--layer")
        raise SpecError(field, message) from None
    buffer = io.BytesIO()
    np.savez(buffer, **result.arrays)
    atomic_write(Path(args.out), lambda f: f.write(buffer.getvalue()))
    if not args.quiet:
        print(f"{args.probe} at step {result.step}: {len(result.arrays)} arrays → {args.out}")
        for key, a in result.arrays.items():
            mean = f"  mean {a.mean():.3f}" if key.endswith("_mass") and a.size else ""
            print(f"  {key:24} {a.dtype} {tuple(a.shape)}{mean}")
    return EXIT_OK


def cmd_presets(args: argparse.Namespace) -> int:
    for name in preset_names():
        print(name)
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from .train.trainer import Trainer

    session = resolve(args.source)
    spec = session.spec
    ck = session.checkpoint
    training: dict[str, Any] = {}
    if args.seed is not None:
        if ck is not None and ck.step > 0:
            raise SpecError("--seed", "this session has already trained; its seed cannot change now")
        training["seed"] = args.seed
    if args.device is not None:
        training["device"] = args.device
    if training:
        spec = spec.model_copy(update={"training": spec.training.model_copy(update=training)})
        if ck is not None:
            ck = dataclasses.replace(ck, spec=spec)
    torch.set_num_threads(1)  # tiny networks are op-bound; a second thread only adds contention
    trainer = Trainer(spec, probes=False, checkpoint=ck)
    if args.steps is not None:
        total, unit, limit = args.steps, "step", {"steps": args.steps}
    else:
        n = args.epochs if args.epochs is not None else spec.training.epochs
        total, unit, limit = n, "epoch", {"epochs": n}
    start_step, start_epoch = trainer.step, trainer.epoch
    bar = None
    if not args.quiet:
        from tqdm import tqdm
        bar = tqdm(total=total, unit=unit, file=sys.stderr, mininterval=0.25, dynamic_ncols=True,
                   desc=spec.name or "train")
    t0 = time.perf_counter()
    stop = threading.Event()
    interrupts: list[int] = []

    def on_sigint(signum: int, frame: object) -> None:
        # Pause at the next step boundary, then save what that boundary holds. Further Ctrl+C only say to
        # wait: an interrupted save would leave no file (the old one stays), so the save is let finish.
        interrupts.append(signum)
        stop.set()
        if len(interrupts) == 2:
            print("pausing and saving; one moment", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        for snap in trainer.run(**limit, snapshot_every=0.1, stop=stop):
            if bar is not None:
                bar.n = (snap.step - start_step) if unit == "step" else (snap.epoch - start_epoch)
                if len(snap.step_loss):
                    bar.set_postfix(loss=f"{snap.step_loss[-1]:.4f}", refresh=False)
                bar.refresh()
        if bar is not None:
            bar.close()
            bar = None
        wall = time.perf_counter() - t0
        final = trainer.evaluate()
        if args.out:
            save_session(args.out, trainer.spec, trainer.checkpoint(), ui=session.ui)
        if args.metrics_json:
            _write_metrics(Path(args.metrics_json), trainer, final, wall)
    finally:
        # After a Ctrl+C the command is ending: later presses are ignored, not raised during the exit.
        signal.signal(signal.SIGINT, signal.SIG_IGN if interrupts else previous)
        if bar is not None:
            bar.close()
    if not args.quiet:
        acc = f", test accuracy {final['test_accuracy']:.1%}" if "test_accuracy" in final else ""
        val = f"validation loss {final['val_loss']:.4g}, " if "val_loss" in final else ""
        if "recon_loss" in final or "kl" in final:
            val = (f"(reconstruction {final.get('recon_loss', math.nan):.4g}, KL {final.get('kl', math.nan):.4g}), "
                   + val)
        print(f"epoch {trainer.epoch}, step {trainer.step}: train loss {final['train_loss']:.4g}, {val}"
              f"test loss {final['test_loss']:.4g}{acc} ({wall:.1f} s)")
    if trainer.status in ("diverged", "early_stopped"):
        print(trainer.message, file=sys.stderr)
    if interrupts:
        print(f"interrupted: paused at epoch {trainer.epoch}, step {trainer.step}"
              + (f"; saved to {args.out}" if args.out else " (nothing saved: no --out)"), file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_DIVERGED if trainer.status == "diverged" else EXIT_OK


def _write_metrics(path: Path, trainer: Any, final: dict[str, float], wall: float) -> None:
    h = trainer.history
    data: dict[str, Any] = {
        "epochs": trainer.epoch, "steps": trainer.step, "wall_seconds": wall,
        "train_loss": _finite(final["train_loss"]), "test_loss": _finite(final["test_loss"]),
    }
    if "test_accuracy" in final:
        data["train_accuracy"] = _finite(final["train_accuracy"])
        data["test_accuracy"] = _finite(final["test_accuracy"])
    keys = ["step_loss", "epoch_train_loss", "epoch_test_loss"]
    if "val_loss" in final:  # image sets keep a validation set apart
        data["val_loss"] = _finite(final["val_loss"])
        keys.append("epoch_val_loss")
        if "val_accuracy" in final:
            data["val_accuracy"] = _finite(final["val_accuracy"])
    # an autoencoder's loss parts; a sequence task's exact-sequence accuracy (test_accuracy then counts tokens)
    # and its scores on the longer held-out sequences
    for part, key in (("recon_loss", "epoch_recon_loss"), ("kl", "epoch_kl"),
                      ("test_sequence_accuracy", "epoch_test_sequence_accuracy"), ("long_loss", "epoch_long_loss"),
                      ("long_accuracy", "epoch_long_accuracy"),
                      ("long_sequence_accuracy", "epoch_long_sequence_accuracy")):
        if part in final:
            data[part] = _finite(final[part])
            keys.append(key)
    data["history"] = {k: [_finite(v) for v in h[k]] for k in keys}
    text = json.dumps(data, allow_nan=False).encode()
    atomic_write(path, lambda f: f.write(text))


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m engine", description="DL Playground engine: train sessions headless.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("presets", help="list preset names, one per line").set_defaults(func=cmd_presets)
    sub.add_parser("ops", help="list the layer ops: family, name, what it does, its parameters").set_defaults(
        func=cmd_ops)
    sub.add_parser("templates", help="list the model templates: name, data it is built for, what it is"
                   ).set_defaults(func=cmd_templates)
    pr = sub.add_parser("probe", help="compute what a view shows (a probe's arrays) for a session, as .npz")
    pr.add_argument("file", help="a .dlp session (its weights), a spec JSON or a preset (initial weights)")
    pr.add_argument("--probe", help="the probe to run (see --list)")
    pr.add_argument("--list", action="store_true", help="list the probes that apply to this session")
    pr.add_argument("--sample", type=int, help="a training sample's index, for probes about one sample")
    pr.add_argument("--layer", help="a node id, for probes about one layer (saliency: Grad-CAM's conv layer)")
    pr.add_argument("--samples", help="a range START:STOP of samples, for probes about many (saliency)")
    pr.add_argument("--method", help="saliency: gradient, smoothgrad, integrated_gradients or gradcam; "
                                     "predictions of a sequence: greedy, beam or sample")
    pr.add_argument("--target", type=int, help="saliency: the class to explain (default: the predicted one)")
    pr.add_argument("--split", choices=("test", "train", "long"),
                    help="which samples (test); long: a sequence set's longer held-out sequences")
    pr.add_argument("--eps", type=float, help="adversarial: FGSM's step, a share of full brightness (0.1); "
                                              "reconstruction: noise added to the inputs, the same unit")
    pr.add_argument("--points", help="decode: latent points, values comma-separated, points by ';': "
                                         "--points='0,0;-1,1' (quoted; '=' lets it start with a minus)")
    pr.add_argument("--size", type=int, help="manifold: pictures per side of the grid (12)")
    pr.add_argument("--width", type=int, help="predictions of an encoder–decoder: beam search's width "
                                              "(with --method beam)")
    pr.add_argument("--temperature", type=float, help="predictions: softmax temperature when decoding (1)")
    pr.add_argument("--out", help="write the arrays here (.npz, one array per name)")
    pr.add_argument("--quiet", action="store_true", help="print nothing on success")
    pr.set_defaults(func=cmd_probe)
    info = sub.add_parser("info", help="validate a session or spec and summarise it")
    info.add_argument("file", help="a .dlp session, a spec JSON or a preset name")
    info.add_argument("--json", action="store_true", help="print the summary as JSON")
    info.set_defaults(func=cmd_info)
    pt = sub.add_parser("pretrain", help="train a preset and write its weights to assets/weights, for blocks "
                                         "that start from trained weights (the transfer-learning preset)")
    pt.add_argument("preset", help="a preset name (shapes-cnn)")
    pt.add_argument("--epochs", type=int, help="epochs to train (default: the preset's own)")
    pt.add_argument("--out", help="where to write (default: assets/weights/PRESET.safetensors)")
    pt.set_defaults(func=cmd_pretrain)
    tr = sub.add_parser("train", help="train a preset, spec or session; a session with weights continues")
    tr.add_argument("source", help="a preset name, a spec JSON or a .dlp session")
    length = tr.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=int, help="epochs to train (default: the spec's training.epochs)")
    length.add_argument("--steps", type=int, help="minibatch steps to train")
    tr.add_argument("--seed", type=int, help="training seed (not for a session that has trained)")
    tr.add_argument("--device", choices=["cpu", "cuda"], help="where to train")
    tr.add_argument("--out", help="save the session (.dlp) here when done")
    tr.add_argument("--metrics-json", help="write losses, accuracies and history as JSON here")
    tr.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    tr.set_defaults(func=cmd_train)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for flag in ("epochs", "steps", "seed"):
        value = getattr(args, flag, None)
        if value is not None and (value < (0 if flag == "seed" else 1) or value > (2**32 - 1)):
            print(f"error: --{flag.replace('_', '-')}: {value} is out of range", file=sys.stderr)
            return EXIT_INVALID
    try:
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit as an "Exception ignored" message
        return code
    except EngineError as exc:
        print(f"error: {exc.what}: {exc.why}", file=sys.stderr)
        return EXIT_INVALID
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PIPE
