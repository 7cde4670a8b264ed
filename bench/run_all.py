"""Run every benchmark, write bench/results/latest.json and bench/results/latest.png.

    bench/run            # the full set; the 1M-activity replay takes several minutes
    bench/run --quick    # smaller sizes, for a check that everything still runs

Each benchmark is its own script in bench/ and runs in its own process; this only orchestrates,
records the machine the figures came from, and draws them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable


def benches(quick: bool) -> list[tuple[str, list[str]]]:
    return [
        ("decode", ["bench/decode.py", "--records", "50000" if quick else "200000"]),
        ("normalizer", ["bench/normalizer.py", "--activities",
                        "100000" if quick else "1000000"]),
        ("memory", ["bench/memory.py", "--people", "20000" if quick else "100000"]),
        ("sink", ["-m", "bench.sink_efficiency", "--windows", "1" if quick else "3"]),
        ("latency", ["bench/latency.py", "--seconds", "10" if quick else "30"]),
        ("replay", ["-m", "bench.replay", "--activities", "50000" if quick else "1000000"]),
        ("sink_backlog", ["-m", "bench.sink_backlog", "--webinars", "61" if quick else "303"]),
        ("sandbox", ["bench/sandbox_capacity.py"]),
        ("telemetry", ["bench/telemetry_overhead.py"]),
    ]


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal"))
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kib / 2**20, 1),
            "python": platform.python_version(), "date": datetime.now(UTC).isoformat()}


def run(name: str, args: list[str]) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    supports_json = name not in ("sandbox", "telemetry")
    command = [PYTHON, *args, *(["--json", str(out)] if supports_json else [])]
    started = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if not line.startswith("%")]
    result: dict[str, Any] = {"seconds": round(time.monotonic() - started, 1),
                              "printed": lines[-6:], "exit": done.returncode}
    if supports_json and out.stat().st_size:
        result["figures"] = json.loads(out.read_text())
    out.unlink(missing_ok=True)
    print(f"{name}: " + (" | ".join(lines[-3:]) if lines else done.stderr[-300:]), flush=True)
    return result


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    fig.suptitle(f"webinar-hubspot-connector benchmarks - {results['machine']['cores']} cores, "
                 f"{results['machine']['date'][:10]}")

    def bars(ax: Any, title: str, labels: list[str], values: list[float], unit: str,
             target: float | None = None) -> None:
        ax.bar(labels, values, color="#4c72b0")
        ax.set_title(title)
        ax.set_ylabel(unit)
        for i, value in enumerate(values):
            ax.annotate(f"{value:,.0f}" if value >= 10 else f"{value:.2f}", (i, value),
                        ha="center", va="bottom")
        if target is not None:
            ax.axhline(target, color="#c44e52", linestyle="--", label=f"target {target:,}")
            ax.legend()

    figures: dict[str, Any] = {k: v.get("figures", {}) for k, v in results["benches"].items()}
    decode = figures.get("decode", {}).get("decode_records_per_s", {})
    bars(axes[0][0], "decode, one core", list(decode), list(decode.values()), "records/s",
         150_000)
    normalizer = figures.get("normalizer", {})
    bars(axes[0][1], "normalizer end to end (real broker)", ["records/s"],
         [normalizer.get("records_per_s", 0)], "records/s", 50_000)
    sink = figures.get("sink") or []
    labels = [f"{r['client'].split()[0]} {r.get('limit_per_10s', '')}/10s "
              f"{r.get('latency', {}).get('base_s', 0):g}s" for r in sink]
    values = [r["efficiency"] for r in sink]
    bars(axes[0][2], "sink efficiency (of limit x 100 inputs)", labels, values, "ratio", 0.9)
    latency = figures.get("latency", {})
    bars(axes[1][0], "end-to-end latency", ["p50", "p90", "p99"],
         [latency.get("p50_ms", 0), latency.get("p90_ms", 0), latency.get("p99_ms", 0)], "ms")
    memory = figures.get("memory", {})
    bars(axes[1][1], "memory per 100k open attendances", ["heap", "RSS growth"],
         [memory.get("heap_mib_per_100k", 0), memory.get("rss_growth_mib_per_100k", 0)], "MiB")
    replay = figures.get("replay", {})
    bars(axes[1][2], f"replay of {replay.get('activities', 0):,} activities into the sandbox",
         ["records/s", "x 429"], [replay.get("records_per_s", 0),
                                   replay.get("rate_limited", 0)], "")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="*", help="run only these benchmarks")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"machine": machine(), "quick": args.quick, "benches": {}}
    latest = RESULTS / "latest.json"
    if args.only and latest.exists():  # re-run some: keep the others' latest figures
        results["benches"] = json.loads(latest.read_text())["benches"]
    for name, command in benches(args.quick):
        if not args.only or name in args.only:
            results["benches"][name] = run(name, command)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2))
    plot(results, RESULTS / "latest.png")
    print(f"wrote {RESULTS / 'latest.json'} and {RESULTS / 'latest.png'}")
    if any(bench["exit"] for bench in results["benches"].values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
