"""Times the benchmark's queries (issue 5) and series / labels / label-values requests (issue 6)
against two running servers (Prometheus and promcore) on the same data and checks they give the
same answers. Prints one markdown row per request: the median of RUNS timed runs for each server
(after one untimed warm-up), and whether the answers match (queries: same label sets, values
within a relative 1e-9; metadata: the same set of entries).

usage: measure.py PROMETHEUS_URL PROMCORE_URL END_SECONDS RUNS
The range query spans RANGE_S seconds (default 86400) before END_SECONDS.
"""

import json
import os
import statistics
import sys
import time
import urllib.parse
import urllib.request

QUERIES = [
    ("sum by (job) (rate(x_total[5m]))", "instant"),
    ("histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))", "instant"),
    ("topk(10, rate(x_total[5m]))", "instant"),
    ('count({instance=~".*7"})', "instant"),
    ("sum by (job) (rate(x_total[5m]))", "range"),
]
RANGE_S = int(os.environ.get("RANGE_S", "86400"))

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


def fetch(base, path, params):
    url = base + path + "?" + urllib.parse.urlencode(params)
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=600) as r:
        body = r.read()
    elapsed = time.perf_counter() - t0
    doc = json.loads(body)
    if doc.get("status") != "success":
        raise SystemExit(f"{base}: {path} {params}: {doc}")
    return elapsed, doc["data"]


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
    print("| request (issue 6) | entries | Prometheus 2.42 median | promcore median | speed-up | same answer |")
    print("|---|---|---|---|---|---|")
    for what, path, params in METADATA:
        params = dict(params, start=str(end - RANGE_S), end=str(end))
        times = {prom: [], core: []}
        answers = {}
        for base in (prom, core):
            _, answers[base] = fetch(base, path, params)
        for _ in range(runs):
            for base in (prom, core):
                t, _ = fetch(base, path, params)
                times[base].append(t)
        mp = statistics.median(times[prom]) * 1000
        mc = statistics.median(times[core]) * 1000
        key = lambda d: sorted(json.dumps(x, sort_keys=True) for x in d)
        ok = key(answers[prom]) == key(answers[core])
        n = len(answers[core])
        print(f"| {what} | {n} | {mp:.1f} ms | {mc:.1f} ms | {mp / mc:.2f}x | {'yes' if ok else 'NO'} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
