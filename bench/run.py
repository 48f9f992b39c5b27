"""Run chad's benchmarks and print (or record) one table: case | ours | anchor | anchor time | ratio | note.

Every ``bench/bench_*.py`` module that exists is imported and its ``cases(quick=False)`` called (the
protocol is in ``bench/_timing.py``: rows of ``case, ours_s, anchor, anchor_s, note``, medians in seconds,
ours and the anchor timed in the same process). The ratio is ``anchor time / ours``: above 1 we are faster.

Usage (from the repository root, after ``python chadsp/_build.py`` or ``pip install -e .``)::

    python bench/run.py                         # everything, full sizes
    python bench/run.py --quick                 # small sizes, few repeats (a smoke test)
    python bench/run.py --only silence --only dtw
    python bench/run.py --markdown bench/README.md   # also write the tables into the file, between markers

``--markdown`` replaces, for each module run, the block between ``<!-- bench:NAME:start -->`` and
``<!-- bench:NAME:end -->`` inside ``<!-- bench-table:start -->`` ... ``<!-- bench-table:end -->``
(creating the block if it is missing) and keeps the rest of the file, so ``--only`` updates one module.
A module that fails (an anchor disagreeing with ours is an ``AssertionError``) is reported and makes the
exit status 1; its recorded block is left as it was.
"""
from __future__ import annotations

import argparse
import datetime
import glob
import importlib
import math
import os
import platform
import re
import resource
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
START, END = "<!-- bench-table:start -->", "<!-- bench-table:end -->"
COLUMNS = ["case", "ours", "anchor", "anchor time", "ratio anchor/ours", "note"]


def module_names() -> list[str]:
    """Names (without the ``bench_`` prefix) of the benchmark modules present, sorted."""
    files = sorted(glob.glob(os.path.join(HERE, "bench_*.py")))
    return [os.path.basename(f)[len("bench_"):-3] for f in files]


def load(name: str):
    for p in (ROOT, HERE):   # modules may import `bench._timing` or `_timing`
        if p not in sys.path:
            sys.path.insert(0, p)
    return importlib.import_module(f"bench.bench_{name}")


def fmt_time(s) -> str:
    if s is None or (isinstance(s, float) and math.isnan(s)):
        return "-"
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} us"


def fmt_ratio(ours, anchor) -> str:
    if not ours or anchor is None or (isinstance(anchor, float) and math.isnan(anchor)):
        return "-"
    return f"{anchor / ours:.1f}x"


def table_lines(rows: list[dict]) -> list[str]:
    cells = [[str(c).replace("|", "\\|") for c in
              (r["case"], fmt_time(r["ours_s"]), r.get("anchor") or "-", fmt_time(r.get("anchor_s")),
               fmt_ratio(r["ours_s"], r.get("anchor_s")), r.get("note", ""))] for r in rows]
    widths = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(COLUMNS)]
    line = lambda xs: "| " + " | ".join(x.ljust(w) for x, w in zip(xs, widths)) + " |"  # noqa: E731
    return [line(COLUMNS), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, cells)]


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB, macOS bytes)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / (1 << 20) if sys.platform == "darwin" else r / 1024


def machine() -> str:
    import numpy as np
    return (f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"numpy {np.__version__}")


def module_block(name: str, rows: list[dict], argv: list[str], seconds: float) -> str:
    cmd = "python bench/run.py " + " ".join(argv)
    when = datetime.date.today().isoformat()
    return "\n".join([
        f"<!-- bench:{name}:start -->",
        f"### {name}",
        "",
        *table_lines(rows),
        "",
        f"`{cmd.strip()}` on {when} ({machine()}; module run {seconds:.0f} s; peak RSS of the run so far {peak_rss_mib():.0f} MiB).",
        f"<!-- bench:{name}:end -->",
    ])


def write_markdown(path: str, blocks: dict[str, str]) -> None:
    text = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
    if START not in text or END not in text or text.index(START) > text.index(END):
        raise SystemExit(f"{path} has no {START} ... {END} markers: add them where the tables go")
    head, rest = text.split(START, 1)
    inner, tail = rest.split(END, 1)
    for name, block in blocks.items():
        pat = re.compile(rf"<!-- bench:{re.escape(name)}:start -->.*?<!-- bench:{re.escape(name)}:end -->", re.S)
        if pat.search(inner):
            inner = pat.sub(lambda _: block, inner)
        else:
            inner = inner.rstrip("\n") + "\n\n" + block + "\n"
    # keep the module blocks sorted by name
    found = re.findall(r"(<!-- bench:([\w.-]+):start -->.*?<!-- bench:\2:end -->)", inner, re.S)
    if found:
        inner = "\n" + "\n\n".join(b for b, _ in sorted(found, key=lambda t: t[1])) + "\n"
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(head + START + inner + END + tail)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes and few repeats (smoke test)")
    ap.add_argument("--only", action="append", metavar="NAME",
                    help="run only bench_NAME.py (repeatable); available: " + ", ".join(module_names()))
    ap.add_argument("--markdown", metavar="FILE", help="write the tables into FILE between its markers")
    args = ap.parse_args(argv)

    names = module_names()
    if args.only:
        unknown = [n for n in args.only if n not in names]
        if unknown:
            ap.error(f"no bench module {unknown}; available: {', '.join(names)}")
        names = [n for n in names if n in args.only]
    if args.markdown and args.quick:
        ap.error("--markdown records the full-size numbers: drop --quick")

    print(f"# chad benchmarks ({'quick' if args.quick else 'full'}) on {machine()}", flush=True)
    blocks, failed = {}, []
    for name in names:
        t0 = time.perf_counter()
        try:
            mod = load(name)
            if not hasattr(mod, "cases"):   # a stand-alone script with its own arguments (e.g. a model to load)
                print(f"\n## {name}: stand-alone (python bench/bench_{name}.py --help)", flush=True)
                continue
            rows = mod.cases(quick=args.quick)
        except Exception:  # noqa: BLE001 - report every module, then fail
            failed.append(name)
            print(f"\n## {name}: FAILED\n{traceback.format_exc()}", flush=True)
            continue
        dt = time.perf_counter() - t0
        print(f"\n## {name} ({dt:.0f} s)", *table_lines(rows), sep="\n", flush=True)
        blocks[name] = module_block(name, rows, argv, dt)
    print(f"\npeak RSS of this run: {peak_rss_mib():.0f} MiB")
    if args.markdown and blocks:
        write_markdown(args.markdown, blocks)
        print(f"wrote {', '.join(blocks)} into {args.markdown}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
