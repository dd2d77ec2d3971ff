"""Writes the benchmark's data as OpenMetrics text: one file with every series, and (when SHARDS
is not 0) one per promcore shard, each series in the file of the shard that owns it (the series
hash, as promcore places it). query_compare.sh passes 0: `promcore tsdb create-blocks-from`
places the series itself.

Series: half are counters `x_total{job, instance}` (10 jobs), the rest are classic histogram
buckets `h_bucket{job, instance, le}` (11 buckets per instance); `instance` ends in each digit
equally often, so `instance=~".*7"` selects 10 % of all series. One sample per `interval`
seconds over `hours`, ending at `end` (seconds).

usage: generate.py SERIES HOURS INTERVAL END OUT_DIR SHARDS
"""

import os
import sys

from xxh64 import series_hash

LES = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf"]


def series(n):
    """(labels, value at step i) for every series, labels as sorted pairs."""
    nx = n // 2
    for k in range(nx):
        labels = [("__name__", "x_total"), ("instance", f"i-{k}"), ("job", f"job-{k % 10}")]
        yield labels, (k % 5 + 1), (k % 100) / 100
    for k in range((n - nx) // len(LES)):
        for b, le in enumerate(LES):
            labels = [("__name__", "h_bucket"), ("instance", f"h-{k}"), ("job", f"job-{k % 10}"),
                      ("le", le)]
            yield labels, (b + 1) * (k % 3 + 1), 0.0


def main():
    n, hours, interval, end = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    out, shards = sys.argv[5], int(sys.argv[6])
    os.makedirs(out, exist_ok=True)
    steps = hours * 3600 // interval
    start = end - (steps - 1) * interval
    everything = open(os.path.join(out, "all.om"), "w", buffering=1 << 22)
    per_shard = [open(os.path.join(out, f"shard-{i:03}.om"), "w", buffering=1 << 22)
                 for i in range(shards)]
    count = 0
    for labels, slope, offset in series(n):
        shard = per_shard[series_hash(labels) % shards] if shards else None
        name = labels[0][1]
        text = name + "{" + ",".join(f'{k}="{v}"' for k, v in labels[1:]) + "} "
        lines = "".join(f"{text}{i * slope + offset} {start + i * interval}\n" for i in range(steps))
        everything.write(lines)
        if shard:
            shard.write(lines)
        count += 1
    for f in [everything] + per_shard:
        f.write("# EOF\n")
        f.close()
    print(f"{count} series, {count * steps} samples, {start}..{end}")


if __name__ == "__main__":
    main()
