"""Medians over repetitions, the results table with ratios and targets, and the chart."""

from __future__ import annotations

import argparse
import math
import platform
import subprocess
import sys
from pathlib import Path

from workloads import median

NAMES = {"pyq": "pyq", "sidekiq": "Sidekiq", "bare": "bare loop"}


def med(runs: list[dict], system: str, workload: str, metric: str) -> float:
    return median([r[system][workload][metric] for r in runs if workload in r.get(system, {})])


def _fmt(v: float, spec: str) -> str:
    return "—" if v is None or math.isnan(v) else format(v, spec)


def _ratio(a: float, b: float) -> str:
    return "—" if math.isnan(a) or math.isnan(b) or not b else f"{a / b:.2f}×"


ROWS = [  # (label, workload, metric, format)
    ("W1 drain, jobs/s", "w1", "rate", ",.0f"),
    ("W1 worker CPU, ms per 1k jobs", "w1", "cpu_ms_per_1k", ".0f"),
    ("W1 queue-Redis CPU, µs per job", "w1", "redis_cpu_us", ".1f"),
    ("W1 queue-Redis commands per job (incl. inside Lua)", "w1", "cmds_per_job", ".2f"),
    ("W1 EVALSHA per job", "w1", "evalsha_per_job", ".3f"),
    ("W1 CPU load from other programs, cores", "w1", "other_load", ".2f"),
    ("W2 p50 latency, ms", "w2", "p50_ms", ".2f"),
    ("W2 p99 latency, ms", "w2", "p99_ms", ".2f"),
    ("W2 Ruby-pushed, 3 weighted queues, p50 ms", "w2_ruby", "p50_ms", ".2f"),
    ("W2 Ruby-pushed, 3 weighted queues, p99 ms", "w2_ruby", "p99_ms", ".2f"),
    ("W0 worker CPU, µs per no-op job", "w0", "cpu_us_per_job", ".0f"),
    ("W1 async def body, jobs/s", "w1_async", "rate", ",.0f"),
    ("W1 with a stored result (result_ttl), jobs/s", "w1_result", "rate", ",.0f"),
    ("W1 with a stored result, worker CPU ms per 1k jobs", "w1_result", "cpu_ms_per_1k", ".0f"),
    ("W1 as the members of one batch, jobs/s", "w1_batch", "rate", ",.0f"),
    ("W1 in a batch, worker CPU ms per 1k jobs", "w1_batch", "cpu_ms_per_1k", ".0f"),
    ("W1 in a batch, queue-Redis CPU µs per job", "w1_batch", "redis_cpu_us", ".1f"),
    ("W3 I/O-bound, jobs/s (pyq async ×1000; Sidekiq's best thread count)", "w3", "rate", ",.0f"),
    ("W3 worker CPU, ms per 1k jobs", "w3", "cpu_ms_per_1k", ".0f"),
    ("W3 sleep-only body (pyq's own part), worker CPU µs per job", "w3_sleep", "cpu_us_per_job", ".0f"),
    ("W3 with 10 threads (Sidekiq), jobs/s", "w3_c10", "rate", ",.0f"),
    ("W3 with 50 threads (Sidekiq), jobs/s", "w3_c50", "rate", ",.0f"),
    ("W3 with 200 threads (Sidekiq), jobs/s", "w3_c200", "rate", ",.0f"),
    *((f"mixed durations, {n} process{'es' if n > 1 else ''}: short-job wait p99, ms", f"mixed_p{n}", "p99_ms", ".2f")
      for n in range(1, 5)),
    ("W1 via proxy +0 ms, jobs/s", "w1_proxy_0ms", "rate", ",.0f"),
    ("W1 via proxy +1 ms, jobs/s", "w1_proxy_1ms", "rate", ",.0f"),
]


def main_table(runs: list[dict]) -> list[str]:
    lines = ["| metric (median) | pyq | Sidekiq ×2 | bare loop ×2 | pyq / Sidekiq | pyq / bare |",
             "|---|---|---|---|---|---|"]
    for label, workload, metric, spec in ROWS:
        p, s, b = (med(runs, name, workload, metric) for name in NAMES)
        if all(math.isnan(v) for v in (p, s, b)):
            continue
        lines.append(f"| {label} | {_fmt(p, spec)} | {_fmt(s, spec)} | {_fmt(b, spec)} | {_ratio(p, s)} | "
                     f"{_ratio(p, b)} |")
    return lines


def _worst_mixed(runs: list[dict], system: str) -> float:
    """The largest short-job wait p99 (median over repetitions) over the mixed run's process counts."""
    values = [med(runs, system, f"mixed_p{n}", "p99_ms") for n in range(1, 5)]
    values = [v for v in values if not math.isnan(v)]
    return max(values) if values else math.nan


def targets(runs: list[dict], mem: dict | None, delay_ms: float) -> list[str]:
    p, s, b = (lambda w, m, name=name: med(runs, name, w, m) for name in NAMES)
    proxied = f"w1_proxy_{delay_ms:g}ms"
    checks = [
        ("W1 ≥ 1.0× bare loop", p("w1", "rate") / b("w1", "rate"), 1.0, ">="),
        ("W1 ≥ 1.5× Sidekiq", p("w1", "rate") / s("w1", "rate"), 1.5, ">="),
        ("W1 worker CPU ≤ 0.6× Sidekiq", p("w1", "cpu_ms_per_1k") / s("w1", "cpu_ms_per_1k"), 0.6, "<="),
        ("W0 worker CPU ≤ 0.5× Sidekiq", p("w0", "cpu_us_per_job") / s("w0", "cpu_us_per_job"), 0.5, "<="),
        ("W3 ≥ 2× Sidekiq's best thread count", p("w3", "rate") / s("w3", "rate"), 2.0, ">="),
        ("W3 pyq's own CPU per async job ≤ 40 µs", p("w3_sleep", "cpu_us_per_job"), 40.0, "<="),
        ("W2 p50 ≤ 0.5 ms", p("w2", "p50_ms"), 0.5, "<="),
        ("W2 p99 ≤ 1.5 ms", p("w2", "p99_ms"), 1.5, "<="),
        ("W2 p50 ≤ Sidekiq's", p("w2", "p50_ms") / s("w2", "p50_ms"), 1.0, "<="),
        ("W2 p99 ≤ Sidekiq's", p("w2", "p99_ms") / s("w2", "p99_ms"), 1.0, "<="),
        ("W2 Ruby-pushed p50 ≤ 0.5 ms", p("w2_ruby", "p50_ms"), 0.5, "<="),
        ("W2 Ruby-pushed p99 ≤ 1.5 ms", p("w2_ruby", "p99_ms"), 1.5, "<="),
        ("W2 Ruby-pushed p50 ≤ Sidekiq's", p("w2_ruby", "p50_ms") / s("w2_ruby", "p50_ms"), 1.0, "<="),
        ("W2 Ruby-pushed p99 ≤ Sidekiq's", p("w2_ruby", "p99_ms") / s("w2_ruby", "p99_ms"), 1.0, "<="),
        ("mixed: short-job wait p99 ≤ 5 ms on 1-4 processes", _worst_mixed(runs, "pyq"), 5.0, "<="),
        (f"+{delay_ms:g} ms drops W1 by ≤ 25%", 1 - p(proxied, "rate") / p("w1", "rate"), 0.25, "<="),
    ]
    if mem:
        checks += [("RSS flat ±10%", mem["drift"], 0.10, "<="),
                   ("RSS ≤ 50 MB per worker (concurrency 25)", max(mem["rss_peak_mb"]), 50.0, "<=")]
        if "async" in mem:
            checks.append(("≤ 10 KB per in-flight async job (concurrency 1000)", mem["async"]["kb_per_job"], 10.0,
                           "<="))
    lines = ["| target | measured | holds |", "|---|---|---|"]
    for label, value, bound, op in checks:
        ok = not math.isnan(value) and (value >= bound if op == ">=" else value <= bound)
        lines.append(f"| {label} | {_fmt(value, '.2f')} | {'yes' if ok else 'NO'} |")
    return lines


def per_run(runs: list[dict]) -> list[str]:
    lines = ["| run | " + " | ".join(f"{NAMES[n]} W1/s" for n in NAMES) + " | pyq W2 p50/p99 ms |",
             "|---|" + "---|" * (len(NAMES) + 1)]
    for i, r in enumerate(runs, 1):
        rates = [_fmt(r.get(n, {}).get("w1", {}).get("rate", math.nan), ",.0f") for n in NAMES]
        w2 = r.get("pyq", {}).get("w2")
        lines.append(f"| {i} | " + " | ".join(rates) + f" | {w2['p50_ms']:.2f} / {w2['p99_ms']:.2f} |"
                     if w2 else f"| {i} | " + " | ".join(rates) + " | — |")
    return lines


def memory_lines(mem: dict | None, n: int) -> list[str]:
    if not mem:
        return []
    row = lambda key: ", ".join(f"{v:.1f}" for v in mem[key])  # noqa: E731
    return [f"Memory, pyq over {n:,} jobs ({mem['rate']:,.0f} jobs/s): RSS per worker after the first 10% "
            f"{row('rss_warm_mb')} MB, at the end {row('rss_end_mb')} MB, peak {row('rss_peak_mb')} MB; "
            f"largest drift {mem['drift'] * 100:.1f}%.",
            *([f"Async jobs in flight {mem['async']['in_flight']} per worker: RSS "
               f"{', '.join(f'{v:.1f}' for v in mem['async']['rss_idle_mb'])} MB idle, "
               f"{', '.join(f'{v:.1f}' for v in mem['async']['rss_loaded_mb'])} MB loaded, "
               f"{mem['async']['kb_per_job']:.1f} KB per job at most."] if "async" in mem else [])]


def machine() -> str:
    cpu = subprocess.run("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2", shell=True, capture_output=True,
                         text=True).stdout.strip()
    redis_v = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
    return f"{cpu}, {len(open('/proc/cpuinfo').read().split('processor')) - 1} CPUs; Python " \
           f"{platform.python_version()}; Redis {redis_v.removeprefix('v=')}"


def table(runs: list[dict], mem: dict | None, args: argparse.Namespace) -> str:
    head = [f"# pyq bench ({len(runs)} repetitions, medians)", "",
            f"{machine()}. W1 {args.n:,} jobs, W2 {args.lat_n:,} jobs at {args.spacing_ms:g} ms, 2 processes each.", ""]
    body = [*main_table(runs), "", *targets(runs, mem, args.delay_ms), "", *per_run(runs), "",
            *memory_lines(mem, args.mem_n)]
    return "\n".join(head + body) + "\n"


def chart(runs: list[dict], mem: dict | None, path: Path) -> None:
    """Throughput bars per system and workload, and pyq's RSS curve (skipped, with a note, without matplotlib)."""
    try:
        import matplotlib
    except ImportError:
        print(f"no chart: pip install matplotlib to draw {path}", file=sys.stderr)
        return

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    labels = ["W1", "W1 async", "W1 proxy +0", "W1 proxy +1 ms"]
    workloads = ["w1", "w1_async", "w1_proxy_0ms", "w1_proxy_1ms"]
    width = 0.25
    for i, name in enumerate(NAMES):
        values = [med(runs, name, w, "rate") for w in workloads]
        xs = [j + (i - 1) * width for j in range(len(labels))]
        ax1.bar(xs, [0 if math.isnan(v) else v for v in values], width, label=NAMES[name])
    ax1.set_xticks(range(len(labels)), labels)
    ax1.set_ylabel("jobs/s (median)")
    ax1.set_title("Drain throughput, 2 processes each")
    ax1.legend()
    if mem:
        done = [d for d, _ in mem["curve"]]
        for k in range(len(mem["rss_end_mb"])):
            ax2.plot(done, [s[k] if len(s) > k else math.nan for _, s in mem["curve"]], label=f"worker {k + 1}")
        ax2.set_xlabel("jobs done")
        ax2.set_ylabel("RSS, MB")
        ax2.set_ylim(bottom=0)
        ax2.set_title("pyq worker RSS over the long run")
        ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
