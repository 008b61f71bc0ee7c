#!/usr/bin/env python3
"""Medians and ratios of a compare.sh run: reads its results.jsonl and prints a
Markdown table (ours against Distribution, each target met or missed)."""
import json
import statistics
import sys

# workload, metric, unit label, scale, targets: (kind, value)
ROWS = [
    ("push-1g", "mb_s", "GB/s", 1e-3, [("min", 1.2), ("ratio", 4)]),
    ("push-4x256m", "mb_s", "GB/s", 1e-3, [("ratio", 4)]),
    ("push-chunked", "mb_s", "GB/s", 1e-3, [("ratio", 4)]),
    ("pull-1g", "mb_s", "GB/s", 1e-3, [("min", 3.2), ("ratio", 1)]),
    ("manifest-get", "req_s", "req/s", 1, [("min", 15000)]),
    ("manifest-get", "p99_ms", "p99 ms", 1, [("max", 5)]),
    ("mixed-push", "images_s", "images/s", 1, [("ratio", 10)]),
    ("mixed-pull", "images_s", "images/s", 1, [("ratio", 10)]),
    ("push-4x256m", "peak_rss_mib", "peak RSS MiB", 1, [("max", 32)]),
    ("mixed-pull", "peak_rss_mib", "peak RSS MiB", 1, [("max", 48)]),
]


def load(path):
    runs = {}
    for line in open(path):
        line = line.strip()
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        runs.setdefault((r["workload"], r["label"]), []).append(r)
    return runs


def median(runs, workload, label, metric):
    values = [r[metric] for r in runs.get((workload, label), []) if r.get("ok") and r.get(metric) is not None]
    return (statistics.median(values), len(values)) if values else (None, 0)


def fmt(x):
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def main():
    runs = load(sys.argv[1])
    failed = [(w, l, r.get("error")) for (w, l), rs in runs.items() for r in rs if not r.get("ok")]
    print("| workload | metric | ours | Distribution | ours / Distribution | target | met |")
    print("|---|---|---:|---:|---:|---|---|")
    for workload, metric, unit, scale, targets in ROWS:
        ours, n_ours = median(runs, workload, "ours", metric)
        theirs, n_theirs = median(runs, workload, "distribution", metric)
        if n_ours == 0 and n_theirs == 0:
            continue
        ours_v = ours * scale if ours is not None else None
        theirs_v = theirs * scale if theirs is not None else None
        ratio = ours / theirs if ours is not None and theirs else None
        texts, met = [], True
        for kind, value in targets:
            if kind == "min":
                texts.append(f"≥ {fmt(value)}")
                met &= ours_v is not None and ours_v >= value
            elif kind == "max":
                texts.append(f"≤ {fmt(value)}" if "RSS" in unit else f"< {fmt(value)}")
                met &= ours_v is not None and ours_v <= value
            else:
                texts.append(f"≥ {value}× Distribution")
                met &= ratio is not None and ratio >= value
        def times(x):
            return f"{x:,.0f}×" if x >= 100 else f"{x:.2f}×"
        ratio_text = times(ratio) if ratio is not None else "-"
        if metric in ("p99_ms", "peak_rss_mib") and ratio:
            ratio_text = f"{times(1 / ratio)} lower"
        print(f"| {workload} | {unit} | {fmt(ours_v)} | {fmt(theirs_v)} | {ratio_text} | "
              f"{', '.join(texts)} | {'yes' if met else '**no**'} |")
    rounds = max((len(v) for v in runs.values()), default=0)
    print(f"\nMedians of {rounds} round(s). Other figures (p50/p99, peak RSS of every workload):\n")
    print("| workload | server | p50 ms | p99 ms | peak RSS MiB |")
    print("|---|---|---:|---:|---:|")
    for (workload, label) in sorted(runs):
        p50, _ = median(runs, workload, label, "p50_ms")
        p99, _ = median(runs, workload, label, "p99_ms")
        rss, _ = median(runs, workload, label, "peak_rss_mib")
        print(f"| {workload} | {label} | {fmt(p50)} | {fmt(p99)} | {fmt(rss)} |")
    for w, l, e in failed:
        print(f"\nFAILED: {w} on {l}: {e}")


if __name__ == "__main__":
    main()
