"""Writes scrape-like OpenMetrics text for the on-disk size comparison (disk_compare.sh).

Each "target" exposes 100 series (so SERIES/100 targets): 50 counters
`http_requests_total{job, instance, handler, code}` that grow by a random whole amount per
scrape (some stay flat), and 50 gauges: `process_resident_memory_bytes`-like integers that drift,
and `temperature_celsius`/`cpu_usage_ratio`-like floats with 2 to 4 decimals. Every target is
scraped each `interval` seconds at its own offset with a few ms of jitter, as Prometheus scrapes
(timestamps in ms). The span starts on a 2 h boundary so that both backfills cut the same blocks.
The random generator is seeded: the same arguments give the same file.

usage: generate.py SERIES HOURS INTERVAL OUT_FILE
"""

import random
import sys

HANDLERS = ["/", "/api/v1/query", "/api/v1/query_range", "/api/v1/series", "/metrics"]
CODES = ["200", "400", "404", "500", "503"]


def target_series(t):
    """(series text, kind, state) of target t's 100 series; kinds: c counter, m memory, f float."""
    job = f"job-{t % 20}"
    inst = f"10.{t // 65536 % 256}.{t // 256 % 256}.{t % 256}:9100"
    out = []
    for h in HANDLERS:
        for c in CODES:
            for m in ("GET", "POST"):
                out.append((f'http_requests_total{{code="{c}",handler="{h}",instance="{inst}",'
                            f'job="{job}",method="{m}"}}', "c", 0.0))
    for k in range(20):
        out.append((f'process_memory_bytes{{area="a{k}",instance="{inst}",job="{job}"}}', "m",
                    float(random.randrange(10_000_000, 900_000_000))))
    for k in range(15):
        out.append((f'temperature_celsius{{instance="{inst}",job="{job}",sensor="s{k}"}}', "t",
                    round(random.uniform(20, 80), 2)))
    for k in range(15):
        out.append((f'cpu_usage_ratio{{cpu="{k}",instance="{inst}",job="{job}"}}', "r",
                    round(random.random(), 4)))
    return out


def step(kind, v, rate):
    if kind == "c":
        return v + (random.randrange(0, rate) if rate else 0)
    if kind == "m":
        return v + random.randrange(-4096, 4097) * 4096 if random.random() < 0.3 else v
    if kind == "t":
        return round(min(90.0, max(10.0, v + random.uniform(-0.3, 0.3))), 2)
    return round(min(1.0, max(0.0, v + random.uniform(-0.05, 0.05))), 4)


def main():
    n, hours, interval, path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    random.seed(42)
    start_ms = 1_700_006_400_000  # a multiple of 2 h
    steps = hours * 3600 // interval
    out = open(path, "w", buffering=1 << 24)
    samples = 0
    for t in range(n // 100):
        offset = random.randrange(10, interval * 1000 - 100)
        series = target_series(t)
        rates = [random.choice([0, 0, 1, 3, 20, 200]) for _ in series]
        for (text, kind, v), rate in zip(series, rates):
            lines = []
            for i in range(steps):
                ts = start_ms + offset + i * interval * 1000 + random.randrange(-3, 4)
                v = step(kind, v, rate)
                shown = int(v) if kind in "cm" else v
                lines.append(f"{text} {shown} {ts // 1000}.{ts % 1000:03}\n")
            out.write("".join(lines))
            samples += steps
    out.write("# EOF\n")
    out.close()
    print(f"{n // 100 * 100} series, {samples} samples, from {start_ms} ms")


if __name__ == "__main__":
    main()
