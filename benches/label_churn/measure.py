"""Label requests under series churn (issue 6): while both servers scrape the same loadgen
targets, whose `pod` label values keep being replaced (`loadgen serve --churn`), asks each
server the same label requests at a steady pace and prints, per request, the median and p90
latency on each server and, for promcore, how many answers came from its kept answers
(`promcore_label_answers_kept_hits_total` / `_misses_total` over that request's runs).

Requests go one kind at a time (all runs of `labels`, then of `job` values, ...), so the
counters' deltas belong to that kind. Each server is asked over one kept-alive HTTP/1.1
connection; a request's time covers sending it and reading its whole body. Answers are checked
to hold the same strings on both servers, except `pod` values, which churn between the two
requests.

usage: measure.py PROMETHEUS_URL PROMCORE_URL RUNS INTERVAL_S
"""

import http.client
import json
import statistics
import sys
import time
import urllib.parse

REQUESTS = [
    ("labels", "/api/v1/labels"),
    ("job values", "/api/v1/label/job/values"),
    ("instance values", "/api/v1/label/instance/values"),
    ("pod values (churning)", "/api/v1/label/pod/values"),
]


class Client:
    """One kept-alive connection to a server."""

    def __init__(self, base):
        url = urllib.parse.urlsplit(base)
        self.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)

    def get(self, target):
        t0 = time.perf_counter()
        self.conn.request("GET", target)
        r = self.conn.getresponse()
        body = r.read()
        elapsed = time.perf_counter() - t0
        if r.status != 200:
            raise SystemExit(f"{target}: {r.status} {body[:200]!r}")
        return elapsed, body


def kept_counters(client):
    """promcore's (hits, misses) of kept label answers so far."""
    _, body = client.get("/metrics")
    found = {}
    for line in body.decode().splitlines():
        for name in ("hits", "misses"):
            if line.startswith(f"promcore_label_answers_kept_{name}_total "):
                found[name] = float(line.split()[1])
    return found.get("hits", 0), found.get("misses", 0)


def ms(t):
    return f"{t * 1e3:.3f} ms"


def main():
    if len(sys.argv) != 5:
        raise SystemExit(__doc__)
    prom, core = Client(sys.argv[1]), Client(sys.argv[2])
    runs, interval = int(sys.argv[3]), float(sys.argv[4])
    print("| request | Prometheus median / p90 | promcore median / p90 | promcore kept-answer hits |")
    print("|---|---|---|---|")
    for what, path in REQUESTS:
        times = {"prom": [], "core": []}
        before = kept_counters(core)
        for _ in range(runs):
            tp, bp = prom.get(path)
            tc, bc = core.get(path)
            times["prom"].append(tp)
            times["core"].append(tc)
            if "pod" not in path and json.loads(bp)["data"] != json.loads(bc)["data"]:
                raise SystemExit(f"{what}: the servers' answers differ")
            time.sleep(interval)
        after = kept_counters(core)
        hits, misses = after[0] - before[0], after[1] - before[1]
        cells = []
        for k in ("prom", "core"):
            t = sorted(times[k])
            cells.append(f"{ms(statistics.median(t))} / {ms(t[int(len(t) * 0.9)])}")
        rate = f"{hits / max(hits + misses, 1):.0%} ({int(hits)} of {int(hits + misses)})"
        print(f"| {what} | {cells[0]} | {cells[1]} | {rate} |")


main()
