"""Times the benchmark's queries (issue 5) and series / labels / label-values requests (issue 6)
against two running servers (Prometheus and promcore) on the same data and checks they give the
same answers. Prints one markdown row per request: the median of RUNS timed runs for each server
(after one untimed warm-up), and whether the answers match (queries: same label sets, values
within a relative 1e-9; metadata: the same set of entries). The metadata requests are cheap, so
they get max(RUNS, METADATA_RUNS) runs (default 21). METADATA_ONLY=1 skips the queries.

With PIDS=PROMETHEUS_PID,PROMCORE_PID (servers on this machine) the metadata table also gives
each server's CPU time per request (all its threads, /proc/PID/task/*/schedstat, over the timed
runs, background work included): on a machine shared with other work, wall times swing with
the load, CPU times much less.

promcore keeps label-name and label-value answers while its shards are unchanged, so a repeated
metadata request is a cache hit. METADATA_COLD=1 makes every labels / label values request carry
its own `limit` (10^9 + a counter, never reached, so the answer is the same; Prometheus 2.42
ignores the parameter), which promcore keeps whole answers by, so none is given whole from its
cache: promcore then merges the answer from the shard lists it kept (and `labels` from the name
tables the shards publish) without asking the shards. The first request after a real change,
when the shards must be asked, is what cold_after_change.py times.

Each server is asked over one kept-alive HTTP/1.1 connection (the same client code for both), and
a request's time covers sending it and reading its whole body: a new connection per request, and
urllib's per-request overhead (~0.5 ms), would swamp the sub-millisecond requests.

usage: measure.py PROMETHEUS_URL PROMCORE_URL END_SECONDS RUNS
The range query spans RANGE_S seconds (default 86400) before END_SECONDS.
"""

import http.client
import json
import os
import statistics
import sys
import time
import urllib.parse

QUERIES = [
    ("sum by (job) (rate(x_total[5m]))", "instant"),
    ("histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))", "instant"),
    ("topk(10, rate(x_total[5m]))", "instant"),
    ('count({instance=~".*7"})', "instant"),
    ("sum by (job) (rate(x_total[5m]))", "range"),
]
RANGE_S = int(os.environ.get("RANGE_S", "86400"))
METADATA_RUNS = int(os.environ.get("METADATA_RUNS", "21"))
METADATA_COLD = os.environ.get("METADATA_COLD") == "1"
COLD_LIMIT = [10**9]

# Issue 6: (what, path, parameters); start/end are filled in as the data's last RANGE_S.
METADATA = [
    ("labels", "/api/v1/labels", {}),
    ("label values of job", "/api/v1/label/job/values", {}),
    ("label values of instance (all series)", "/api/v1/label/instance/values", {}),
    ("series x_total{job=\"job-3\"} (5% of series)", "/api/v1/series", {"match[]": 'x_total{job="job-3"}'}),
    ("series {instance=~\"i-1.*\"}", "/api/v1/series", {"match[]": '{instance=~"i-1.*"}'}),
    ("labels with match[] h_bucket", "/api/v1/labels", {"match[]": "h_bucket"}),
    ("label values of le with match[]", "/api/v1/label/le/values", {"match[]": 'h_bucket{job="job-1"}'}),
]


def run(base, query, kind, end):
    if kind == "instant":
        params = {"query": query, "time": str(end)}
        path = "/api/v1/query"
    else:
        params = {"query": query, "start": str(end - RANGE_S), "end": str(end), "step": "60"}
        path = "/api/v1/query_range"
    return fetch(base, path, params)


class Client:
    """One kept-alive connection to a server, reopened if the server closes it."""

    def __init__(self, base):
        url = urllib.parse.urlsplit(base)
        self.host, self.port = url.hostname, url.port or 80
        self.prefix = url.path.rstrip("/")
        self.conn = None

    def get(self, target):
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
                self.conn.connect()
            try:
                t0 = time.perf_counter()
                self.conn.request("GET", self.prefix + target)
                r = self.conn.getresponse()
                body = r.read()
                elapsed = time.perf_counter() - t0
            except (http.client.HTTPException, ConnectionError):
                # A kept-alive connection the server closed meanwhile: retry once on a new one.
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
                continue
            if r.will_close:
                self.conn.close()
                self.conn = None
            return r.status, elapsed, body


CLIENTS = {}


def fetch(base, path, params):
    if METADATA_COLD and "/label" in path:
        COLD_LIMIT[0] += 1
        params = dict(params, limit=str(COLD_LIMIT[0]))
    client = CLIENTS.setdefault(base, Client(base))
    status, elapsed, body = client.get(path + "?" + urllib.parse.urlencode(params))
    doc = json.loads(body)
    if status != 200 or doc.get("status") != "success":
        raise SystemExit(f"{base}: {path} {params}: {status} {doc}")
    return elapsed, doc["data"]


def cpu_seconds(pid):
    """CPU time so far of every live thread of process `pid`."""
    total = 0
    task_dir = f"/proc/{pid}/task"
    for t in os.listdir(task_dir):
        try:
            with open(f"{task_dir}/{t}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total / 1e9


def ms(t):
    """Milliseconds with three significant digits: metadata requests take from 0.1 ms."""
    return f"{t:.3f} ms" if t < 1 else f"{t:.2f} ms" if t < 10 else f"{t:.1f} ms"


def canonical(data):
    out = {}
    for s in data["result"]:
        key = tuple(sorted(s["metric"].items()))
        if "value" in s:
            out[key] = [(s["value"][0], float(s["value"][1]))]
        else:
            out[key] = [(t, float(v)) for t, v in s["values"]]
    return out


def same(a, b):
    if a.keys() != b.keys():
        return False
    for k in a:
        if len(a[k]) != len(b[k]):
            return False
        for (t1, v1), (t2, v2) in zip(a[k], b[k]):
            if t1 != t2:
                return False
            if v1 != v2 and abs(v1 - v2) > 1e-9 * max(abs(v1), abs(v2)):
                return False
    return True


def main():
    prom, core, end, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    if os.environ.get("METADATA_ONLY") != "1":
        measure_queries(prom, core, end, runs)
    measure_metadata(prom, core, end, runs)


def measure_queries(prom, core, end, runs):
    print("| query | kind | series out | Prometheus 2.42 median | promcore median | speed-up | same answer |")
    print("|---|---|---|---|---|---|---|")
    for q, kind in QUERIES:
        if kind == "range":
            kind = f"range {RANGE_S // 3600}h, step 60s"
        times = {prom: [], core: []}
        answers = {}
        for base in (prom, core):
            _, answers[base] = run(base, q, kind, end)
        # Interleaved so that load from other work on the machine hits both alike.
        for _ in range(runs):
            for base in (prom, core):
                t, _ = run(base, q, kind, end)
                times[base].append(t)
        mp = statistics.median(times[prom]) * 1000
        mc = statistics.median(times[core]) * 1000
        ok = same(canonical(answers[prom]), canonical(answers[core]))
        n = len(answers[core]["result"])
        print(f"| `{q}` | {kind} | {n} | {mp:.1f} ms | {mc:.1f} ms | {mp / mc:.2f}x | {'yes' if ok else 'NO'} |")
        sys.stdout.flush()
    print()


def measure_metadata(prom, core, end, runs):
    pids = os.environ.get("PIDS", "").split(",") if os.environ.get("PIDS") else None
    head = "| request (issue 6) | entries | Prometheus 2.42 median | promcore median | speed-up | same answer |"
    rule = "|---|---|---|---|---|---|"
    if pids:
        head += " Prometheus CPU/request | promcore CPU/request | CPU ratio |"
        rule += "---|---|---|"
    print(head)
    print(rule)
    for what, path, params in METADATA:
        params = dict(params, start=str(end - RANGE_S), end=str(end))
        times = {prom: [], core: []}
        answers = {}
        for base in (prom, core):
            _, answers[base] = fetch(base, path, params)
        n_runs = max(runs, METADATA_RUNS)
        cpu = {base: 0.0 for base in (prom, core)}
        for _ in range(n_runs):
            for base, pid in zip((prom, core), pids or (None, None)):
                before = cpu_seconds(pid) if pid else 0
                t, _ = fetch(base, path, params)
                if pid:
                    cpu[base] += cpu_seconds(pid) - before
                times[base].append(t)
        mp = statistics.median(times[prom]) * 1000
        mc = statistics.median(times[core]) * 1000
        key = lambda d: sorted(json.dumps(x, sort_keys=True) for x in d)
        ok = key(answers[prom]) == key(answers[core])
        n = len(answers[core])
        row = f"| {what} | {n} | {ms(mp)} | {ms(mc)} | {mp / mc:.2f}x | {'yes' if ok else 'NO'} |"
        if pids:
            cp, cc = (cpu[b] * 1000 / n_runs for b in (prom, core))
            row += f" {ms(cp)} | {ms(cc)} | {cp / cc if cc else float('inf'):.2f}x |"
        print(row)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
