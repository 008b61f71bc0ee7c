#!/usr/bin/env python3
"""Blob GETs an upstream answered, from Distribution's access log (compare.sh's `proxy`
workload): reads log lines on stdin and prints one JSON line with the count of
`GET /v2/<repo>/blobs/<digest>` answered 200 and the count of distinct blobs among them.
One fetch per blob under concurrent cold pulls means `blob_gets == blobs`.

  tail -n +N upstream.log | upstream_gets.py --label ours --repo bench/proxy-fresh-1
"""
import argparse
import json
import re
import sys


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--label", required=True)
    parser.add_argument("--repo", required=True)
    args = parser.parse_args()
    # Combined log format: ... "GET /v2/<repo>/blobs/sha256:<hex> HTTP/1.1" 200 <bytes> ...
    pattern = re.compile(r'"GET /v2/' + re.escape(args.repo)
                         + r'/blobs/(sha256:[0-9a-f]{64}) HTTP/[0-9.]+" 200 ')
    digests = [m.group(1) for m in map(pattern.search, sys.stdin) if m]
    print(json.dumps({"workload": "proxy-upstream-gets", "label": args.label, "ok": True,
                      "blob_gets": len(digests), "blobs": len(set(digests))}))


if __name__ == "__main__":
    main()
