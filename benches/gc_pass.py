#!/usr/bin/env python3
"""One garbage collection pass, measured, as a JSON line (compare.sh's `gc` workload).

  gc_pass.py time --label L --store DIR [--log FILE] -- COMMAND...
      Runs COMMAND under /usr/bin/time: wall seconds, peak RSS, and the blob data
      files under DIR (`*/blobs/sha256/*/*/data`, both registries' layout) before and
      after (without --store, not counted). When COMMAND prints a JSON object (`registry gc --json`), its counts
      (storage_ops, deleted_blobs, ...) are copied in; other output goes to --log.
  gc_pass.py syscalls --label L [--log FILE] -- COMMAND...
      Runs COMMAND under `strace -f -c` and counts its file system calls (those that
      open, read, list, stat, change or delete files; not mmap, futex, epoll or
      writes to stdout): the one measure of "storage operations" both registries share.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

# What counts as a file system call: open/read/list/stat/change/delete.
FILE_CALLS = ("openat,open,read,pread64,readv,getdents64,close,newfstatat,fstat,statx,stat,"
              "lstat,access,faccessat,faccessat2,readlink,readlinkat,unlinkat,unlink,rmdir,"
              "renameat,renameat2,rename,utimensat,fsync,fdatasync,mkdirat,mkdir,"
              "fstatfs,statfs,lseek")


def count_data(store):
    n = 0
    for root, _dirs, files in os.walk(store):
        if "data" in files and f"{os.sep}blobs{os.sep}sha256{os.sep}" in root + os.sep:
            n += 1
    return n


def run(command, log):
    with open(log or os.devnull, "ab") as err:
        return subprocess.run(command, stdout=subprocess.PIPE, stderr=err)


def time_pass(args):
    before = count_data(args.store) if args.store else None
    with tempfile.NamedTemporaryFile("r") as t:
        done = run(["/usr/bin/time", "-f", "%e %M", "-o", t.name, *args.command], args.log)
        fields = t.read().split()
    out = done.stdout.decode(errors="replace")
    report = {}
    if out.lstrip().startswith("{"):
        try:
            report = json.loads(out)
        except ValueError:
            pass
    elif args.log:
        with open(args.log, "a") as f:
            f.write(out)
    after = count_data(args.store) if args.store else None
    line = {
        "workload": args.workload, "label": args.label, "ok": done.returncode == 0,
        "seconds": float(fields[-2]) if len(fields) >= 2 else None,
        "peak_rss_mib": round(int(fields[-1]) / 1024, 3) if len(fields) >= 2 else None,
    }
    if args.store:
        line.update(blobs_before=before, blobs_after=after, blobs_freed=before - after)
    for key in ("seconds", "storage_ops", "repositories", "manifests", "blobs",
                "deleted_blobs", "freed_bytes", "swept_links", "kept_as_new"):
        if key in report:
            line["reported_" + key if key == "seconds" else key] = report[key]
    if "deleted_manifests" in report:
        line["deleted_manifests"] = len(report["deleted_manifests"])
    if done.returncode != 0:
        line["error"] = f"exit status {done.returncode}"
    print(json.dumps(line))


def syscalls(args):
    with tempfile.NamedTemporaryFile("r") as t:
        done = run(["strace", "-f", "-c", "-o", t.name, "-e", "trace=" + FILE_CALLS,
                    *args.command], args.log)
        table = t.read()
    by_call = {}
    for row in table.splitlines():
        cols = row.split()
        # % time, seconds, usecs/call, calls, [errors], syscall
        if len(cols) >= 5 and cols[0][0].isdigit() and cols[-1] != "total":
            by_call[cols[-1]] = int(cols[3])
    line = {"workload": "gc-syscalls", "label": args.label, "ok": done.returncode == 0,
            "syscalls": sum(by_call.values()), "by_call": by_call}
    if done.returncode != 0:
        line["error"] = f"exit status {done.returncode}"
    print(json.dumps(line))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["time", "syscalls"])
    parser.add_argument("--label", required=True)
    parser.add_argument("--workload", default="gc-pass")
    parser.add_argument("--store")
    parser.add_argument("--log")
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:cut])
    args.command = argv[cut + 1:]
    if not args.command:
        parser.error("a command (after --) is needed")
    (time_pass if args.mode == "time" else syscalls)(args)


if __name__ == "__main__":
    sys.exit(main())
