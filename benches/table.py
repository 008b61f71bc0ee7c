#!/usr/bin/env python3
"""Medians and ratios of a compare.sh run: reads its results.jsonl and prints a
Markdown table (ours against Distribution, each target met or missed). Given the
push-ceiling lines too (second argument), it sets the push targets against what
this machine allows any registry. The `gc` and `proxy` workloads' lines get tables of
their own."""
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
    if any(replicas_of(l) for _, l in runs):
        print_s3(runs)
        print_details(runs)
        print_failed(runs)
        return
    if any(w.startswith("gc-") for w, _ in runs):
        print_gc(runs)
    if any(w.startswith("proxy-") for w, _ in runs):
        print_proxy(runs)
    if not any(not w.startswith(("gc-", "proxy-")) for w, _ in runs):
        print_failed(runs)
        return
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
    print_details(runs)
    print_failed(runs)
    if len(sys.argv) > 2:
        print_ceiling(runs, sys.argv[2])


def print_details(runs):
    rounds = max((len(v) for v in runs.values()), default=0)
    print(f"\nMedians of {rounds} round(s). Other figures (p50/p99, peak RSS of every workload):\n")
    print("| workload | server | p50 ms | p99 ms | peak RSS MiB |")
    print("|---|---|---:|---:|---:|")
    for (workload, label) in sorted(runs):
        p50, _ = median(runs, workload, label, "p50_ms")
        p99, _ = median(runs, workload, label, "p99_ms")
        rss, _ = median(runs, workload, label, "peak_rss_mib")
        print(f"| {workload} | {label} | {fmt(p50)} | {fmt(p99)} | {fmt(rss)} |")


# STORAGE=s3 (labels `ours-r3`, `distribution-r1`...): workload, metric, unit label,
# scale, target against Distribution with as many replicas (ratio) or a bound (max).
S3_ROWS = [
    ("push-1g", "mb_s", "MB/s", 1, ("ratio", 2)),
    ("push-4x256m", "mb_s", "MB/s", 1, ("ratio", 2)),
    ("push-chunked", "mb_s", "MB/s", 1, ("ratio", 2)),
    ("pull-1g", "mb_s", "MB/s", 1, ("ratio", 1)),
    ("mixed-push", "images_s", "images/s", 1, None),
    ("mixed-pull", "images_s", "images/s", 1, None),
    ("push-4x256m", "peak_rss_mib", "peak RSS MiB per replica", 1, ("max", 64)),
    ("mixed-pull", "peak_rss_mib", "peak RSS MiB per replica", 1, None),
]
# Three replicas against one on the mixed load, ours: at least this share.
S3_SCALING = 0.9


def replicas_of(label):
    """The replica count of an S3 run's label (`ours-r3`: 3), else None."""
    head, _, n = label.rpartition("-r")
    return int(n) if head and n.isdigit() else None


def print_s3(runs):
    """Ours against Distribution on the same S3 server, for each replica count, and
    each registry's replicas against one replica of it."""
    counts = sorted({replicas_of(l) for _, l in runs if replicas_of(l)})
    head = "| workload | metric |"
    rule = "|---|---|"
    for n in counts:
        head += f" ours, {n} | Distribution, {n} | ours / Distribution, {n} |"
        rule += "---:|---:|---:|"
    print(head + " target | met |")
    print(rule + "---|---|")
    for workload, metric, unit, scale, target in S3_ROWS:
        cells, met, seen = "", True, False
        for n in counts:
            ours, n_ours = median(runs, workload, f"ours-r{n}", metric)
            theirs, n_theirs = median(runs, workload, f"distribution-r{n}", metric)
            seen |= n_ours + n_theirs > 0
            ratio = ours / theirs if ours is not None and theirs else None
            if ratio is None:
                ratio_text = "-"
            elif metric == "peak_rss_mib":
                ratio_text = f"{1 / ratio:.2f}× lower" if ratio <= 1 else f"{ratio:.2f}× higher"
            else:
                ratio_text = f"{ratio:.2f}×"
            cells += f" {fmt(ours * scale if ours is not None else None)} | " \
                     f"{fmt(theirs * scale if theirs is not None else None)} | {ratio_text} |"
            if target and target[0] == "ratio":
                met &= ratio is not None and ratio >= target[1]
            elif target:
                met &= ours is not None and ours * scale <= target[1]
        if not seen:
            continue
        if target is None:
            target_text, met_text = "", ""
        elif target[0] == "ratio":
            target_text, met_text = f"≥ {target[1]}× Distribution", "yes" if met else "**no**"
        else:
            target_text, met_text = f"≤ {target[1]}", "yes" if met else "**no**"
        print(f"| {workload} | {unit} |{cells} {target_text} | {met_text} |")
    if len(counts) < 2:
        return
    low, high = counts[0], counts[-1]
    print(f"\n{high} replicas against {low} (images/s of the mixed load; ours: within "
          f"{1 - S3_SCALING:.0%}):\n")
    print(f"| workload | ours, {low} | ours, {high} | ours {high} / {low} | "
          f"Distribution, {low} | Distribution, {high} | Distribution {high} / {low} | met |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for workload in ("mixed-push", "mixed-pull"):
        row, share = f"| {workload} |", None
        for who in ("ours", "distribution"):
            a, _ = median(runs, workload, f"{who}-r{low}", "images_s")
            b, _ = median(runs, workload, f"{who}-r{high}", "images_s")
            r = b / a if a and b is not None else None
            if who == "ours":
                share = r
            row += f" {fmt(a)} | {fmt(b)} | {f'{r:.2f}' if r is not None else '-'} |"
        met = share is not None and share >= S3_SCALING
        print(row + f" {'yes' if met else '**no**'} |")


def print_failed(runs):
    for (w, l), rs in sorted(runs.items()):
        for r in rs:
            if not r.get("ok"):
                print(f"\nFAILED: {w} on {l}: {r.get('error')}")


def ratio_text(theirs, ours, better, worse):
    """"2.0× lower" when ours is smaller, "1.4× higher" when it is larger."""
    if not ours or not theirs:
        return "-"
    return f"{theirs / ours:.1f}× {better}" if ours <= theirs else f"{ours / theirs:.1f}× {worse}"


def print_gc(runs):
    """One pass on the same store, ours online against Distribution's offline pass, and
    push/pull latency with and without passes running."""
    def m(workload, label, metric):
        return median(runs, workload, label, metric)[0]
    fill = runs.get(("gc-fill", "ours")) or runs.get(("gc-fill", "distribution")) or [{}]
    images = fill[0].get("images")
    print(f"Garbage collection: one pass over {images or '?'} images pushed (2 small blobs "
          f"each), half of their manifests deleted by digest; ours while serving, "
          f"Distribution stopped.\n")
    print("| metric | ours | Distribution | ours / Distribution | target | met |")
    print("|---|---:|---:|---:|---|---|")
    ours_s, theirs_s = m("gc-pass", "ours", "seconds"), m("gc-pass", "distribution", "seconds")
    speedup = theirs_s / ours_s if ours_s and theirs_s else None
    print(f"| pass wall time (s) | {fmt(ours_s)} | {fmt(theirs_s)} | "
          f"{f'{speedup:.1f}× faster' if speedup else '-'} | ≥ 5× faster | "
          f"{'yes' if speedup and speedup >= 5 else '**no**'} |")
    ours_r, theirs_r = m("gc-pass", "ours", "peak_rss_mib"), m("gc-pass", "distribution", "peak_rss_mib")
    print(f"| pass peak RSS (MiB) | {fmt(ours_r)} | {fmt(theirs_r)} | "
          f"{ratio_text(theirs_r, ours_r, 'lower', 'higher')} | ≤ 64 | "
          f"{'yes' if ours_r is not None and ours_r <= 64 else '**no**'} |")
    ours_c, theirs_c = m("gc-syscalls", "ours", "syscalls"), m("gc-syscalls", "distribution", "syscalls")
    print(f"| pass file system calls (strace) | {fmt(ours_c)} | {fmt(theirs_c)} | "
          f"{ratio_text(theirs_c, ours_c, 'fewer', 'more')} | | |")
    print(f"| pass storage operations (ours: backend calls) | "
          f"{fmt(m('gc-pass', 'ours', 'storage_ops'))} | - | | | |")
    for metric, name in (("blobs_before", "blob data files before"),
                         ("blobs_freed", "blob data files deleted")):
        print(f"| {name} | {fmt(m('gc-pass', 'ours', metric))} | "
              f"{fmt(m('gc-pass', 'distribution', metric))} | | | |")
    under = m("gc-pass-under-load", "ours", "seconds")
    n_under = len(runs.get(("gc-pass-under-load", "ours"), []))
    if under is not None:
        print(f"| pass wall time beside the latency load (s, median of {n_under}) | "
              f"{fmt(under)} | | | | |")
    windows = len(runs.get(("gc-latency-pull", "ours"), []))
    print(f"\n| push/pull latency (ours), median of {windows} window(s) | without a pass | "
          "during passes | change | target | met |")
    print("|---|---:|---:|---:|---|---|")
    for side in ("push", "pull"):
        for pct in ("p50_ms", "p99_ms"):
            alone = m(f"gc-latency-{side}", "ours", pct)
            during = m(f"gc-latency-{side}", "ours-during-gc", pct)
            if alone is None and during is None:
                continue
            change = during / alone - 1 if alone and during is not None else None
            print(f"| {side} {pct[:3]} ms (image) | {fmt(alone)} | {fmt(during)} | "
                  f"{f'{change:+.0%}' if change is not None else '-'} | within 20% | "
                  f"{'yes' if change is not None and change <= 0.2 else '**no**'} |")
    print()


def print_proxy(runs):
    """The pull-through caches against each other, against pulling from the upstream
    directly and against a pull of the same bytes pushed to ours."""
    def m(workload, label, metric):
        return median(runs, workload, label, metric)[0]
    seed = (runs.get(("proxy-seed", "upstream")) or [{}])[0]
    direct = m("proxy-direct", "upstream", "mb_s")
    local = m("proxy-local", "ours", "mb_s")
    n = len(runs.get(("proxy-cold", "ours"), []))
    concurrent = (runs.get(("proxy-concurrent", "ours")) or [{}])[0]
    print(f"Pull-through cache: an image of {fmt((seed.get('bytes') or 0) / 2**20)} MiB "
          f"({(seed.get('requests') or 1) // 3} blobs, random bytes) on an "
          f"anonymous Distribution 2.8.2 upstream on loopback; medians of {n} round(s).\n")
    print("| pull | ours MB/s | Distribution (proxy) MB/s | ours / Distribution | "
          "target | met |")
    print("|---|---:|---:|---:|---|---|")
    print(f"| straight from the upstream | {fmt(direct)} | {fmt(direct)} | | | |")
    print(f"| local (pushed to ours) | {fmt(local)} | - | | | |")
    for phase, base, base_name, share in (("cold", direct, "direct", 0.8),
                                          ("warm", local, "local", 0.9),
                                          ("concurrent", None, None, None)):
        ours, theirs = m(f"proxy-{phase}", "ours", "mb_s"), m(f"proxy-{phase}", "distribution", "mb_s")
        ratio = ours / theirs if ours and theirs else None
        texts, met = ["≥ 2× Distribution"], ratio is not None and ratio >= 2
        if base is not None:
            texts.insert(0, f"≥ {share}× {base_name} ({fmt(ours / base if ours and base else None)}×)")
            met &= bool(ours and base and ours >= share * base)
        pulls = f", {concurrent.get('requests')} at once" if phase == "concurrent" else ""
        print(f"| {phase}{pulls} | {fmt(ours)} | {fmt(theirs)} | "
              f"{f'{ratio:.2f}×' if ratio else '-'} | {', '.join(texts)} | "
              f"{'yes' if met else '**no**'} |")
    print("\n| metric | ours | Distribution (proxy) | target | met |")
    print("|---|---:|---:|---|---|")
    gets = {label: runs.get(("proxy-upstream-gets", label), []) for label in ("ours", "distribution")}
    def gets_text(label):
        rs = gets[label]
        return ", ".join(f"{r['blob_gets']} for {r['blobs']} blobs" for r in rs) or "-"
    ours_once = bool(gets["ours"]) and all(r["blob_gets"] == r["blobs"] for r in gets["ours"])
    print(f"| upstream blob GETs during the concurrent pulls (each round) | {gets_text('ours')} | "
          f"{gets_text('distribution')} | one per blob | {'yes' if ours_once else '**no**'} |")
    for phase in ("cold", "warm", "concurrent"):
        ours, theirs = (m(f"proxy-{phase}", label, "peak_rss_mib") for label in ("ours", "distribution"))
        print(f"| peak RSS MiB, {phase} | {fmt(ours)} | {fmt(theirs)} | ≤ 48 | "
              f"{'yes' if ours is not None and ours <= 48 else '**no**'} |")
    print()
    print_failed({k: v for k, v in runs.items() if k[0].startswith("proxy-")})
    print()


# Push rows against the machine's ceiling: workload, which bound applies.
PUSHES = [("push-1g", "one_push_gb_s"), ("push-4x256m", "parallel_pushes_gb_s"),
          ("push-chunked", "one_push_gb_s")]


def print_ceiling(runs, path):
    """What the push targets need against what push-ceiling found this machine allows.
    The most generous probe is used, so "beyond" holds for every probe of the run."""
    probes = [json.loads(line) for line in open(path) if line.strip().startswith("{")]
    if not probes:
        return
    def best(key, sub=None):
        return max(p[key][sub] if sub else p[key] for p in probes)
    def spread(key, sub=None):
        values = sorted(p[key][sub] if sub else p[key] for p in probes)
        return fmt(values[0]) if values[0] == values[-1] else f"{fmt(values[0])}–{fmt(values[-1])}"
    print(f"\nCeiling of this machine for a verified, synced push with the client on the same "
          f"{probes[0]['cores']:.0f} cores (`push-ceiling`, {len(probes)} probe(s)): SHA-256 "
          f"{spread('sha256_gb_s')} GB/s on one core; CPU per GB: "
          f"SHA-256 {spread('cpu_s_per_gb', 'sha256')} + loopback {spread('cpu_s_per_gb', 'loopback')}"
          f" + page cache and disk {spread('cpu_s_per_gb', 'disk')} core-s (the disk itself took "
          f"{spread('disk_gb_s')} GB/s written then synced once; not a bound).\n")
    print("| workload | the targets need (GB/s) | ceiling here (GB/s) | ours (GB/s) | ours / ceiling |")
    print("|---|---:|---:|---:|---:|")
    targets = {w: t for w, m, _, _, t in ROWS if m == "mb_s"}
    for workload, bound in PUSHES:
        ours, n_ours = median(runs, workload, "ours", "mb_s")
        theirs, _ = median(runs, workload, "distribution", "mb_s")
        if n_ours == 0:
            continue
        needs = [v for k, v in targets[workload] if k == "min"]
        needs += [v * theirs * 1e-3 for k, v in targets[workload] if k == "ratio" and theirs]
        need = max(needs) if needs else None
        ceiling = best(bound)
        verdict = " (beyond this machine)" if need is not None and need > ceiling else ""
        print(f"| {workload} | {fmt(need)}{verdict} | {fmt(ceiling)} | {fmt(ours * 1e-3)} | "
              f"{ours * 1e-3 / ceiling:.0%} |")


if __name__ == "__main__":
    main()
