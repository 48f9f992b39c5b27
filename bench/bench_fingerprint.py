"""Fingerprinting speed: what each way of running the encoder gives, in x real time (audio s per s).

One minute of synthetic singing (``bench_features._sung``) goes through what indexing does per song
(CQT features, 3 s windows every 0.25 s, a ResNet18 encoder of width 32 with random weights, 128-d),
once per option; options are timed round-robin in one process (medians of ``--repeat`` rounds) and each
ratio is the baseline's median time over the option's, from the same rounds. Every option's fingerprints
are compared with the baseline's first: ``exact`` means allclose(rtol=1e-4, atol=1e-6); lossy options
report the largest element difference and the smallest cosine between their rows and the baseline's.

``--burners N`` then times the options of ``--loaded`` again beside N CPU burner processes
(``python -c "while True: pass"``, started and stopped by this script): "slowdown" is the loaded median
over the unloaded one; a fair share of 2 cores with one burner beside 2 threads is 1.5x.

    OMP_WAIT_POLICY=PASSIVE PYTHONPATH=$PWD python bench/bench_fingerprint.py [--quick] [--burners 1]
    PYTHONPATH=$PWD python bench/bench_fingerprint.py --only baseline,fused --burners 1   # default OpenMP wait

``--compile`` adds ``torch.compile`` (inductor; minutes of compilation on 2 busy cores, not in the default
set). ``cases()`` (for ``bench/run.py``) gives the unloaded table.
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import subprocess
import sys
import time
import warnings
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _timing import row  # noqa: E402
from bench_features import _sung  # noqa: E402

from chadml import audio  # noqa: E402
from chadml.features import SHORT, FeatureConfig, WindowConfig  # noqa: E402
from chadml.models.encoder import Fingerprinter, ResNet18Encoder  # noqa: E402

SR = 16000
DEFAULT_LOADED = "baseline,threads=1,fused,fused threads=1,fused bf16"


class _Body(torch.nn.Module):
    """The encoder's forward without its argument checks (FX symbolic tracing cannot run them)."""

    def __init__(self, enc: ResNet18Encoder) -> None:
        super().__init__()
        self.e = enc

    def forward(self, x):
        e = self.e
        x = e.maxpool(F.relu(e.bn1(e.conv1(x))))
        x = e.layer4(e.layer3(e.layer2(e.layer1(x))))
        return F.normalize(e.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)), dim=1)


def _threads(n: int, fn: Callable) -> Callable:
    def run(y):
        old = torch.get_num_threads()
        torch.set_num_threads(n)
        try:
            return fn(y)
        finally:
            torch.set_num_threads(old)
    return run


def _module_path(fp: Fingerprinter, module: Callable, *, cl: bool = False, autocast=None,
                 mode=torch.no_grad) -> Callable:
    """audio -> fingerprints with ``fp``'s features and windows and ``module`` on the whole batch."""
    def run(y):
        w, _ = fp.windows(fp.features(y, SR))
        x = torch.from_numpy(w).unsqueeze(1)
        if cl:
            x = x.contiguous(memory_format=torch.channels_last)
        with mode():
            if autocast is None:
                return module(x).float().numpy()
            with torch.autocast("cpu", dtype=autocast):
                return module(x).float().numpy()
    return run


def options(model: ResNet18Encoder, y: np.ndarray, *, compile_: bool = False, flac: str | None = None
            ) -> dict[str, tuple[Callable, str]]:
    """``{name: (audio -> fps, what it is)}``; "baseline" is the Fingerprinter as it was (no fast path)."""
    cfg = FeatureConfig("cqt")
    base = Fingerprinter(model, cfg, SHORT, fast=False)
    fast = Fingerprinter(model, cfg, SHORT)
    calib, _ = base.windows(base.features(y, SR))
    opts: dict[str, tuple[Callable, str]] = {
        "baseline": (lambda a: base.from_audio(a)[0], "Fingerprinter(fast=False): eager fp32, no_grad, batch 256"),
    }
    for bs in (32, 64):
        b = Fingerprinter(model, cfg, SHORT, fast=False, batch_size=bs)
        opts[f"batch {bs}"] = (lambda a, b=b: b.from_audio(a)[0], f"baseline with batch_size={bs}")
    opts["threads=1"] = (_threads(1, opts["baseline"][0]), "baseline on 1 torch thread")

    def inf(a):
        with torch.inference_mode():
            return base.from_audio(a)[0]
    opts["inference_mode"] = (inf, "baseline under torch.inference_mode")
    cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
    opts["channels_last"] = (_module_path(base, cl, cl=True), "weights and input channels-last, BN kept")
    folded = copy.deepcopy(model).inference_copy().to(memory_format=torch.contiguous_format)
    opts["fold BN"] = (_module_path(base, folded), "BatchNorm folded into the convs, NCHW")
    opts["fused"] = (lambda a: fast.from_audio(a)[0], "Fingerprinter (fast=True): BN folded + channels-last")
    opts["fused threads=1"] = (_threads(1, opts["fused"][0]), "fused on 1 torch thread")
    opts["fused hop 0.5 s"] = (
        lambda a, f=Fingerprinter(model, cfg, WindowConfig(3.0, 0.5)): f.from_audio(a)[0],
        "fused, index windows every 0.5 s (half the windows; compared with every other baseline row)")
    if flac:
        opts["fused from FLAC"] = (lambda a: fast.from_audio(audio.load(flac, sr=SR))[0],
                                   "fused + reading the song from a FLAC file (chadml.audio.load)")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x8 = torch.from_numpy(calib[:8]).unsqueeze(1)
        jit = torch.jit.freeze(torch.jit.trace(_Body(copy.deepcopy(model)).eval(), x8))
        jopt = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(_Body(copy.deepcopy(model)).eval(),
                                                                                 x8)))
    opts["jit trace+freeze"] = (_module_path(base, jit), "torch.jit.trace + freeze (fp32)")
    opts["jit optimize_for_inference"] = (_module_path(base, jopt), "trace + freeze + optimize_for_inference (fp32)")
    if compile_:
        comp = torch.compile(copy.deepcopy(model).inference_copy())
        t0 = time.perf_counter()
        _module_path(base, comp, cl=True)(y)
        opts["torch.compile (fused)"] = (_module_path(base, comp, cl=True),
                                         f"inductor on the fused copy, compiled in {time.perf_counter() - t0:.0f} s")
    fused = model.inference_copy()
    if torch.ops.mkldnn._is_mkldnn_bf16_supported():
        opts["fused bf16"] = (_module_path(base, fused, cl=True, autocast=torch.bfloat16),
                              "fused under torch.autocast('cpu', bfloat16)")
    if torch.ops.mkldnn._is_mkldnn_fp16_supported():
        opts["fused fp16"] = (_module_path(base, fused, cl=True, autocast=torch.float16),
                              "fused under torch.autocast('cpu', float16)")
    dyn = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8)
    opts["dynamic int8 (Linear)"] = (_module_path(base, dyn), "quantize_dynamic of the last Linear only")
    try:
        from torch.ao.quantization import get_default_qconfig_mapping
        from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            q = prepare_fx(_Body(copy.deepcopy(model)).eval(), get_default_qconfig_mapping("x86"), (x8,))
            with torch.no_grad():
                q(torch.from_numpy(calib).unsqueeze(1))  # calibrated on these very windows: a best case
            q = convert_fx(q)
        opts["FX static int8 (x86)"] = (_module_path(base, q),
                                        "prepare_fx/convert_fx, x86 qconfig, calibrated on the same windows")
    except Exception as exc:  # noqa: BLE001 - report, not fail
        print(f"FX static int8 skipped: {type(exc).__name__}: {exc}", file=sys.stderr)
    return opts


def _compare(out: np.ndarray, ref: np.ndarray) -> tuple[bool, str]:
    if out.shape != ref.shape:
        if len(out) == len(ref[::2]):   # hop 0.5 s: windows k of it are windows 2k of 0.25 s
            ref = ref[::2]
        else:
            return False, f"shape {out.shape} vs {ref.shape}"
    exact = bool(np.allclose(out, ref, rtol=1e-4, atol=1e-6))
    cos = float((out * ref).sum(1).min())
    return exact, f"max |diff| {np.abs(out - ref).max():.1e}, min cos {cos:.5f}"


def time_round_robin(opts: dict, names: list[str], y: np.ndarray, repeat: int
                     ) -> tuple[dict[str, float], dict[str, float]]:
    """Median wall and CPU seconds (this process, all its threads) of each option, timed in turn: one
    call of each per round (the caller has called each once already, as a warm-up)."""
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(repeat):
        for n in names:
            t0, c0 = time.perf_counter(), time.process_time()
            opts[n][0](y)
            wall[n].append(time.perf_counter() - t0)
            cpu[n].append(time.process_time() - c0)
    return ({n: statistics.median(t) for n, t in wall.items()},
            {n: statistics.median(t) for n, t in cpu.items()})


def start_burners(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def stop_burners(procs: list[subprocess.Popen]) -> None:
    for p in procs:   # only the processes this script started
        p.terminate()
    for p in procs:
        p.wait(timeout=10)


def measure(*, seconds: float = 60.0, repeat: int = 3, only: list[str] | None = None, burners: int = 0,
            loaded: list[str] | None = None, compile_: bool = False, width: int = 32,
            flac_dir: str | None = None) -> dict:
    torch.manual_seed(0)
    model = ResNet18Encoder(width=width).eval()
    with torch.no_grad():   # non-trivial BatchNorm statistics, as in a trained model
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    y = _sung(seconds)
    flac = None
    if flac_dir:
        flac = os.path.join(flac_dir, "song.flac")
        audio.save(flac, y, SR)
    opts = options(model, y, compile_=compile_, flac=flac)
    names = [n for n in opts if only is None or n in only]
    if "baseline" not in names:
        names.insert(0, "baseline")
    ref = opts["baseline"][0](y)
    checks = {n: _compare(opts[n][0](y), ref) for n in names}   # also the warm-up call
    if "fused from FLAC" in checks:
        checks["fused from FLAC"] = (False, "16-bit audio: " + checks["fused from FLAC"][1])
    load_before = os.getloadavg()[0]
    quiet, cpu = time_round_robin(opts, names, y, repeat)
    out = {"seconds": seconds, "threads": torch.get_num_threads(), "names": names, "checks": checks,
           "quiet": quiet, "cpu": cpu, "about": {n: opts[n][1] for n in names}, "loaded": {},
           "burners": burners, "load_before": load_before}
    if burners:
        lnames = [n for n in (loaded or DEFAULT_LOADED.split(",")) if n in names]
        procs = start_burners(burners)
        try:
            time.sleep(1.0)
            out["loaded"], out["loaded_cpu"] = time_round_robin(opts, lnames, y, repeat)
        finally:
            stop_burners(procs)
    return out


def report(res: dict) -> list[str]:
    s, q, base = res["seconds"], res["quiet"], res["quiet"]["baseline"]
    lines = [f"# {s:g} s of audio; torch {torch.__version__}, {res['threads']} threads, OMP_WAIT_POLICY="
             f"{os.environ.get('OMP_WAIT_POLICY', '(unset)')}; load average before {res['load_before']:.1f}",
             "| option | x real time | ratio to baseline | x real time per CPU s | same fingerprints | "
             + (f"x real time beside {res['burners']} burner(s) | slowdown |" if res["loaded"] else ""),
             "|---|---|---|---|---|" + ("---|---|" if res["loaded"] else "")]
    for n in res["names"]:
        exact, diff = res["checks"][n]
        cells = [n, f"{s / q[n]:.0f}x", f"{base / q[n]:.2f}", f"{s / res['cpu'][n]:.0f}x",
                 ("exact" if exact else "no") + f" ({diff})"]
        if res["loaded"]:
            ld = res["loaded"].get(n)
            cells += ["-", "-"] if ld is None else [f"{s / ld:.0f}x", f"{ld / q[n]:.2f}x"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


RETRIEVAL_RUNS = "fp32/0.25/fp32,fp32/0.25/bf16,bf16/0.25/fp32,bf16/0.25/bf16,fp32/0.5/fp32"


def retrieval(eval_dir: str, ckpt: str, n_songs: int, work: str, runs: str = RETRIEVAL_RUNS,
              echo: Callable[[str], object] = lambda line: None) -> list[str]:
    """Retrieval on the first ``n_songs`` songs of a ``bench/qbh_eval.py build`` folder with the songs
    indexed and the queries (the built-in hummer's and the FluidSynth ones) fingerprinted in other ways.

    ``runs``: comma-separated ``INDEX_PRECISION/STEP_S/QUERY_PRECISION`` (the first is the reference).
    Reports top-1, top-10 and MRR, how many queries get the same top-10 list (ids in order) as the
    reference, and the largest change of the best score. ``echo`` gets each line as it is made."""
    from chadml.data import Manifest, SongTable
    from chadml.evaluate import mrr
    from chadml.index import SongIndex
    from chadml.models import load_fingerprinter
    from chadml.search import Searcher
    songs = SongTable.read(os.path.join(eval_dir, "refs", "songs.csv"))
    items = [(sid, o.path, sid) for sid, (o, _) in sorted(songs.songs().items())][:n_songs]
    keep = {i[0] for i in items}
    base = os.path.join(eval_dir, "refs")
    queries = [(r.path if os.path.isabs(r.path) else os.path.join(base, r.path), str(r.group_id))
               for r in Manifest.read(os.path.join(base, "hummings.csv")).rows
               if r.audio_type == "humming" and str(r.group_id) in keep]
    queries += [(p, sid) for sid in sorted(keep)
                if os.path.exists(p := os.path.join(eval_dir, "queries", "fluid", f"{sid}-fluid.flac"))]

    def fingerprinter(precision: str, step: float):
        fp = load_fingerprinter(ckpt)
        fp.precision = precision
        fp.window_config = WindowConfig(fp.window_config.window_s, step)
        return fp

    lines = [f"# {len(items)} songs, {len(queries)} queries (hummer + FluidSynth) of {eval_dir}; model {ckpt}",
             "| index | step s | queries | top-1 | top-10 | MRR | index s | s per query | same top-10 as the first "
             "| max top-1 score change |", "|---|---|---|---|---|---|---|---|---|---|"]
    for line in lines:
        echo(line)
    ref, built = None, {}
    for run in runs.split(","):
        ip, step, qp = run.split("/")
        if (ip, step) not in built:
            d = os.path.join(work, f"index-{ip}-{step}")
            fp = fingerprinter(ip, float(step))
            t0 = time.perf_counter()
            SongIndex.create(d, fingerprinter=fp, model_path=ckpt).add_songs(items, fp, progress_bar=False)
            built[ip, step] = (d, time.perf_counter() - t0)
        d, t_index = built[ip, step]
        searcher = Searcher(d, fingerprinter=fingerprinter(qp, float(step)))
        t0 = time.perf_counter()
        res = [searcher.query(path, top=10) for path, _ in queries]
        dt = (time.perf_counter() - t0) / max(1, len(queries))
        lists = [[m.song_id for m in r] for r in res]
        best = np.array([r[0].score if r else np.nan for r in res])
        ref = ref or (lists, best)
        ranks = [ids.index(t) + 1 if t in ids else None for ids, (_, t) in zip(lists, queries)]
        same = sum(a == b for a, b in zip(lists, ref[0]))
        lines.append(f"| {ip} | {step} | {qp} | {np.mean([r == 1 for r in ranks]):.3f} "
                     f"| {np.mean([r is not None for r in ranks]):.3f} | {mrr(ranks):.3f} | {t_index:.0f} "
                     f"| {dt:.3f} | {same}/{len(lists)} | {np.nanmax(np.abs(best - ref[1])):.1e} |")
        echo(lines[-1])
    return lines


def cases(quick: bool = False) -> list[dict]:
    res = measure(seconds=20.0 if quick else 60.0, repeat=3 if quick else 5)
    s, base = res["seconds"], res["quiet"]["baseline"]
    return [row(f"fingerprint {s:g} s: {n}", res["quiet"][n], "baseline", base,
                f"{s / res['quiet'][n]:.0f}x real time; {'exact' if res['checks'][n][0] else 'lossy'}: "
                f"{res['checks'][n][1]}") for n in res["names"]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20 s of audio")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", help="comma-separated option names (baseline is always timed)")
    ap.add_argument("--burners", type=int, default=0, help="CPU burner processes beside the loaded run")
    ap.add_argument("--loaded", default=DEFAULT_LOADED, help="options timed again beside the burners")
    ap.add_argument("--compile", action="store_true", help="add torch.compile (slow to compile)")
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--flac", action="store_true", help="add reading the song from a FLAC file")
    ap.add_argument("--retrieval", metavar="EVAL", help="instead: fp32 vs bf16 retrieval on a qbh_eval folder")
    ap.add_argument("--model", help="the checkpoint for --retrieval")
    ap.add_argument("--songs", type=int, default=50, help="songs of --retrieval")
    ap.add_argument("--runs", default=RETRIEVAL_RUNS, help="INDEX_PRECISION/STEP_S/QUERY_PRECISION,... of --retrieval")
    a = ap.parse_args()
    import tempfile
    if a.retrieval:
        if not a.model:
            ap.error("--retrieval needs --model CKPT")
        with tempfile.TemporaryDirectory() as tmp:
            retrieval(a.retrieval, a.model, a.songs, tmp, a.runs, echo=lambda line: print(line, flush=True))
        return
    with tempfile.TemporaryDirectory() as tmp:
        res = measure(seconds=20.0 if a.quick else a.seconds, repeat=a.repeat,
                      only=a.only.split(",") if a.only else None, burners=a.burners,
                      loaded=a.loaded.split(","), compile_=a.compile, width=a.width,
                      flac_dir=tmp if a.flac else None)
    print("\n".join(report(res)))
    for n in res["names"]:
        print(f"  {n}: {res['about'][n]}")


if __name__ == "__main__":
    main()
