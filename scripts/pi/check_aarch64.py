"""Runs the monitor's runtime stack on audio clips and compares two runs (x86 host vs aarch64 under qemu).

``run``: read_audio -> segment_audio -> EmotionClassifier.predict for every window of every clip; writes the
windows, the features, the int8 model input, the raw int8 model output (same runtime, second interpreter) and
the classifier's probabilities to an .npz plus a JSON summary. It needs
only the runtime dependencies (numpy, soundfile, soxr, webrtcvad, a TFLite runtime), so it runs inside the
emulated Raspberry Pi OS root.

``compare``: checks the second run against the first and prints PASS or FAIL per clip (exit 1 on failure).

Tolerance, "identical or within one quantisation step": every raw int8 output may differ by at most one step
(``--max-steps``), and the probabilities by no more than such steps can explain. The classifier computes
p_i = n_i / N with n_i = q_i - z (output zero point z) and N = sum_j n_j (about 1/s = 256 steps for an int8
softmax). If each of the K outputs moves by at most one step, n_i changes by <= 1 and N by <= K, so
|dp_i| <= (1 + K p_i) / (N - K): about 0.008 for p_i = 1/K and at most 0.036 for K = 8. That bound is taken per
window and label from the reference run. A float model gets 1e-5; ``--tolerance`` overrides the bound.

Used by scripts/pi/emulate_check.sh; see docs/pi.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN = ("tensorflow", "librosa", "numba", "keras")


def loaded_forbidden() -> list[str]:
    return sorted({name.split(".")[0] for name in sys.modules if name.split(".")[0] in FORBIDDEN})


def cmd_run(args: argparse.Namespace) -> int:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from monitor.audio.convert import read_audio
    from monitor.dsp.features import log_mel
    from monitor.dsp.functionals import functionals
    from monitor.dsp.segmenter import segment_audio
    from monitor.inference.classifier import EmotionClassifier
    from monitor.inference.runtime import load_interpreter

    machine = platform.machine()
    if args.expect_machine and machine != args.expect_machine:
        print(f"FAIL: running on {machine}, expected {args.expect_machine}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    clf = EmotionClassifier(args.model, num_threads=1)
    load_s = time.perf_counter() - t0
    # Quantisation parameters of the model's tensors (public runtime API; the classifier keeps them private).
    interp, _ = load_interpreter(str(args.model), 1)
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    in_scale, in_zero = (float(v) for v in inp["quantization"])
    in_dtype = np.dtype(inp["dtype"])
    out_scale, out_zero = (float(v) for v in out["quantization"])

    arrays: dict[str, np.ndarray] = {}
    clips: list[dict[str, Any]] = []
    t1 = time.perf_counter()
    for clip in args.clips:
        audio, duration = read_audio(clip)
        windows = segment_audio(audio)
        entry: dict[str, Any] = {
            "clip": Path(clip).name,
            "duration_s": duration,
            "audio_sha256": hashlib.sha256(audio.tobytes()).hexdigest(),
            "windows": [],
        }
        for i, w in enumerate(windows):
            feats = log_mel(w.audio, clf.features)
            pred = clf.predict(w.audio)
            key = f"{Path(clip).stem}/{i}"
            arrays[f"feat:{key}"] = feats
            if clf.prosody is not None:  # the prosody head's input (numpy only: must agree across machines)
                arrays[f"fun:{key}"] = functionals(w.audio).astype(np.float64)
            if in_scale and in_dtype.kind in "iu":
                info = np.iinfo(in_dtype)
                q = np.clip(np.round(feats / in_scale + in_zero), info.min, info.max).astype(in_dtype)
                arrays[f"qin:{key}"] = q
                interp.set_tensor(inp["index"], q.reshape(tuple(int(v) for v in inp["shape"])))
                interp.invoke()
                arrays[f"qout:{key}"] = interp.get_tensor(out["index"])[0].astype(np.int32)
            probs = [pred.probabilities[label] for label in clf.labels]
            arrays[f"prob:{key}"] = np.asarray(probs, dtype=np.float64)
            entry["windows"].append(
                {
                    "start": w.start_sample,
                    "end": w.end_sample,
                    "label": pred.label,
                    "confidence": pred.confidence,
                    "probabilities": probs,
                }
            )
        clips.append(entry)
    run_s = time.perf_counter() - t1

    import numpy

    summary = {
        "machine": machine,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "runtime": clf.info.runtime,
        "runtime_version": runtime_version(clf.info.runtime),
        "model": str(args.model),
        "model_sha256": clf.info.metadata.get("tflite_sha256"),
        "labels": list(clf.labels),
        "functional_std": list(clf.prosody.std) if clf.prosody is not None else None,
        "input_quantization": [in_scale, in_zero],
        "output_quantization": [out_scale, out_zero],
        "load_s": round(load_s, 3),
        "run_s": round(run_s, 3),
        "forbidden_modules_loaded": loaded_forbidden(),
        "clips": clips,
    }
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez(out_dir / "arrays.npz", **arrays)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    n_win = sum(len(c["windows"]) for c in clips)
    print(
        f"{machine}: python {summary['python']}, numpy {summary['numpy']}, {summary['runtime']} "
        f"{summary['runtime_version']}: {len(clips)} clips, {n_win} windows in {run_s:.1f} s "
        f"(model load {load_s:.1f} s); forbidden modules loaded: {summary['forbidden_modules_loaded'] or 'none'}"
    )
    if summary["forbidden_modules_loaded"]:
        print(f"FAIL: the runtime stack loaded {summary['forbidden_modules_loaded']}", file=sys.stderr)
        return 1
    return 0


def runtime_version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


def cmd_compare(args: argparse.Namespace) -> int:
    ref_dir, test_dir = Path(args.reference), Path(args.candidate)
    ref = json.loads((ref_dir / "summary.json").read_text())
    cand = json.loads((test_dir / "summary.json").read_text())
    ref_arr = np.load(ref_dir / "arrays.npz")
    cand_arr = np.load(test_dir / "arrays.npz")
    out_scale, out_zero = (float(v) for v in ref["output_quantization"])
    n_labels = len(ref["labels"])
    problems: list[str] = []
    for side, s in (("reference", ref), ("candidate", cand)):
        print(
            f"{side:9}: {s['machine']}, python {s['python']}, numpy {s['numpy']}, "
            f"{s['runtime']} {s['runtime_version']}, run {s['run_s']} s"
        )
        if s["forbidden_modules_loaded"]:
            problems.append(f"{side} loaded {s['forbidden_modules_loaded']}")
    if ref["model_sha256"] != cand["model_sha256"]:
        problems.append("the two runs used different models")
    print(f"model {ref['model']} (sha256 {str(ref['model_sha256'])[:12]}), output scale {out_scale:.6g}")
    if args.tolerance is not None:
        print(f"tolerance on each probability: {args.tolerance:.6g} (--tolerance)")
    else:
        print(
            f"tolerance: raw int8 outputs within {args.max_steps} step(s); probabilities within "
            f"(1 + {n_labels} p) / (N - {n_labels}) per label, N = sum of the output steps (float model: 1e-5)"
        )
    print(
        f"{'clip':28} {'win':>3} {'audio':>6} {'feat max diff':>13} {'q-in diffs':>10} {'out steps':>9} "
        f"{'max p diff':>10} {'min bound':>9}  result"
    )
    worst = 0.0
    worst_steps = 0
    worst_fun = 0.0  # the prosody head's functionals: largest difference in units of the training spread
    fun_std = np.asarray(ref.get("functional_std") or [], dtype=np.float64)
    ref_clips = {c["clip"]: c for c in ref["clips"]}
    cand_clips = {c["clip"]: c for c in cand["clips"]}
    if set(ref_clips) != set(cand_clips):
        problems.append(f"different clips: {sorted(set(ref_clips) ^ set(cand_clips))}")
    for name in sorted(set(ref_clips) & set(cand_clips)):
        rc, cc = ref_clips[name], cand_clips[name]
        clip_problems: list[str] = []
        same_audio = rc["audio_sha256"] == cc["audio_sha256"]
        rw = [(w["start"], w["end"]) for w in rc["windows"]]
        cw = [(w["start"], w["end"]) for w in cc["windows"]]
        feat_diff = 0.0
        qin_diffs = 0
        p_diff = 0.0
        steps = 0
        bound_min = float("inf")
        if rw != cw:
            clip_problems.append(f"windows differ: {rw} vs {cw}")
        else:
            stem = Path(name).stem
            for i, (wr, wc) in enumerate(zip(rc["windows"], cc["windows"], strict=True)):
                key = f"{stem}/{i}"
                feat_diff = max(feat_diff, float(np.max(np.abs(ref_arr[f"feat:{key}"] - cand_arr[f"feat:{key}"]))))
                if f"qin:{key}" in ref_arr and f"qin:{key}" in cand_arr:
                    qin_diffs += int(np.count_nonzero(ref_arr[f"qin:{key}"] != cand_arr[f"qin:{key}"]))
                if len(fun_std) and f"fun:{key}" in ref_arr:
                    if f"fun:{key}" not in cand_arr:
                        clip_problems.append(f"window {i}: the candidate computed no functionals")
                    else:
                        fd = float(np.max(np.abs(ref_arr[f"fun:{key}"] - cand_arr[f"fun:{key}"]) / (fun_std + 1e-9)))
                        worst_fun = max(worst_fun, fd)
                        if fd > args.max_functional_diff:
                            clip_problems.append(f"window {i}: functionals differ by {fd:.3g} training spreads "
                                                 f"> {args.max_functional_diff}")
                pr, pc = ref_arr[f"prob:{key}"], cand_arr[f"prob:{key}"]
                has_raw = f"qout:{key}" in ref_arr and f"qout:{key}" in cand_arr
                if args.tolerance is not None:
                    bound = np.full(len(pr), args.tolerance)
                elif out_scale and has_raw:
                    total = float(np.sum(ref_arr[f"qout:{key}"] - out_zero))
                    bound = (1 + n_labels * pr) / max(total - n_labels, 1.0) + 1e-6
                else:
                    bound = np.full(len(pr), 1e-5)
                bound_min = min(bound_min, float(bound.min()))
                if has_raw:
                    w_steps = int(np.max(np.abs(ref_arr[f"qout:{key}"] - cand_arr[f"qout:{key}"])))
                    steps = max(steps, w_steps)
                    if w_steps > args.max_steps:
                        clip_problems.append(f"window {i}: raw outputs differ by {w_steps} steps > {args.max_steps}")
                diff = np.abs(pr - pc)
                d = float(diff.max())
                p_diff = max(p_diff, d)
                if np.any(diff > bound):
                    j = int(np.argmax(diff - bound))
                    clip_problems.append(f"window {i}: p({ref['labels'][j]}) differs by {diff[j]:.6g} > {bound[j]:.6g}")
                if wr["label"] != wc["label"] and np.sort(pr)[-1] - np.sort(pr)[-2] > 2 * float(bound.max()):
                    clip_problems.append(f"window {i}: label {wr['label']} vs {wc['label']}")
        worst = max(worst, p_diff)
        worst_steps = max(worst_steps, steps)
        result = "PASS" if not clip_problems else "FAIL"
        print(
            f"{name:28} {len(rw):>3} {'same' if same_audio else 'DIFF':>6} {feat_diff:>13.3g} {qin_diffs:>10} "
            f"{steps:>9} {p_diff:>10.3g} {bound_min:>9.3g}  {result}"
        )
        problems += [f"{name}: {p}" for p in clip_problems]
    n_windows = sum(len(c["windows"]) for c in ref["clips"])
    if n_windows == 0:
        problems.append("no windows were classified: nothing was compared")
    if problems:
        for p in problems:
            print(f"  - {p}")
        print(
            f"FAIL: {len(problems)} problem(s); max probability difference {worst:.6g}, "
            f"max raw output difference {worst_steps} step(s)"
        )
        return 1
    print(
        f"PASS: {len(ref_clips)} clips, {n_windows} windows; max probability difference {worst:.6g}, "
        f"max raw output difference {worst_steps} step(s); prosody functionals within {worst_fun:.3g} training "
        "spreads"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="classify clips and write OUT/summary.json + OUT/arrays.npz")
    run.add_argument("--model", type=Path, default=REPO / "models" / "emotion.tflite")
    run.add_argument("--out", required=True)
    run.add_argument("--expect-machine", help="fail unless platform.machine() is this (e.g. aarch64)")
    run.add_argument("clips", nargs="+")
    cmp_ = sub.add_parser("compare", help="compare a candidate run with a reference run")
    cmp_.add_argument("reference")
    cmp_.add_argument("candidate")
    cmp_.add_argument("--tolerance", type=float, help="max difference per probability (default: from --max-steps)")
    cmp_.add_argument("--max-steps", type=int, default=1, help="max difference of a raw int8 output (default 1)")
    cmp_.add_argument("--max-functional-diff", type=float, default=0.1,
                      help="max difference of a prosody functional, in training spreads (default 0.1)")
    args = parser.parse_args(argv)
    return cmd_run(args) if args.command == "run" else cmd_compare(args)


if __name__ == "__main__":
    sys.exit(main())
