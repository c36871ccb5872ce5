"""How fast does the `mmzoo` command start? Against `python -c "import tensorflow"`.

`mmzoo --help`, `mmzoo list` and `mmzoo info NAME` read only argparse and the
entries' files, so they should start well within 1.5x the time of importing
TensorFlow (the bar: they import no TensorFlow at all). Each command runs as
a fresh process, as a user starts it; the commands take turns in every round
(the order rotated from round to round), so a busy machine slows them alike.
Prints, per command, the wall time's min / median / max and the median CPU
time (user + system of the process), and the ratio of its median wall time to
that of `import tensorflow` measured in the same rounds.

Usage:

```
python bench/startup.py                     # 7 rounds after one warm-up round
python bench/startup.py --rounds 15 --entry mobile_vqa --out bench/results
```

Timings on a machine that is busy with something else are noisy and slow:
quote the ratios, and measure on an idle machine.
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

BAR = 1.5  # at most this many times `import tensorflow`
BASELINE = "import tensorflow"


def _mmzoo():
    """The console script beside this interpreter (as installed), else `python -m mmzoo`."""
    script = Path(sys.executable).with_name("mmzoo")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "mmzoo"]


def commands(entry):
    """`{label: argv}`, the baseline first."""
    mmzoo = _mmzoo()
    return {
        f'python -c "{BASELINE}"': [sys.executable, "-c", BASELINE],
        "mmzoo --help": mmzoo + ["--help"],
        "mmzoo list": mmzoo + ["list"],
        f"mmzoo info {entry}": mmzoo + ["info", entry],
    }


def run_once(argv):
    """(wall seconds, CPU seconds) of one run of `argv`; raises if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}):\n"
                           + result.stderr.decode(errors="replace")[-2000:])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(cmds, rounds, warmup):
    """`{label: {"wall": [...], "cpu": [...]}}`, the commands interleaved in every round."""
    times = {label: {"wall": [], "cpu": []} for label in cmds}
    labels = list(cmds)
    for r in range(warmup + rounds):
        shift = r % len(labels)
        for label in labels[shift:] + labels[:shift]:
            wall, cpu = run_once(cmds[label])
            if r >= warmup:
                times[label]["wall"].append(wall)
                times[label]["cpu"].append(cpu)
        if r >= warmup:
            print(f"  round {r - warmup + 1}/{rounds} done", file=sys.stderr, flush=True)
    return times


def summarise(times):
    """Rows with min / median / max wall, median CPU and the ratio to the baseline."""
    base = statistics.median(next(iter(times.values()))["wall"])
    rows = []
    for label, t in times.items():
        median = statistics.median(t["wall"])
        rows.append({"command": label, "min_s": min(t["wall"]), "median_s": median,
                     "max_s": max(t["wall"]), "cpu_median_s": statistics.median(t["cpu"]),
                     "ratio_of_medians": median / base,
                     "within_bar": median / base <= BAR, "runs": len(t["wall"])})
    return rows


def table(rows):
    lines = ["| command | wall min (s) | wall median (s) | wall max (s) | CPU median (s) "
             f"| median / `{BASELINE}` | within {BAR}x |",
             "|---|---|---|---|---|---|---|"]
    for i, r in enumerate(rows):
        verdict = "(baseline)" if i == 0 else ("yes" if r["within_bar"] else "**no**")
        lines.append(f"| `{r['command']}` | {r['min_s']:.3f} | {r['median_s']:.3f} | "
                     f"{r['max_s']:.3f} | {r['cpu_median_s']:.3f} | "
                     f"{r['ratio_of_medians']:.2f} | {verdict} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="counted rounds (default: 7)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="rounds not counted, first (default: 1)")
    parser.add_argument("--entry", default="shapes_vqa",
                        help="the entry `mmzoo info` shows (default: shapes_vqa)")
    parser.add_argument("--out", default=None,
                        help="also write startup.md and startup.json into this folder")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.warmup < 0:
        parser.error("--rounds must be >= 1 and --warmup >= 0")

    cmds = commands(args.entry)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    header = (f"Start-up of the mmzoo command vs `python -c \"{BASELINE}\"`: {args.rounds} "
              f"rounds after {args.warmup} warm-up, interleaved ({os.cpu_count()} CPUs, load "
              f"average {load:.1f} at the start, Python {platform.python_version()})")
    print(header + "\n", flush=True)
    rows = summarise(measure(cmds, args.rounds, args.warmup))
    text = table(rows)
    print(text)
    worst = max(rows[1:], key=lambda r: r["ratio_of_medians"])
    print(f"\nSlowest: {worst['command']}, {worst['ratio_of_medians']:.2f}x the median of "
          f"`{BASELINE}` (the bar: {BAR}x).")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "startup.md").write_text(header + "\n\n" + text + "\n", encoding="utf-8")
        (out / "startup.json").write_text(json.dumps(
            {"rounds": args.rounds, "warmup": args.warmup, "load_average": load,
             "cpus": os.cpu_count(), "bar": BAR, "results": rows}, indent=1) + "\n",
            encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
