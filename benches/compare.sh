#!/usr/bin/env bash
# Side-by-side benchmark: this registry against CNCF Distribution (Debian's
# `docker-registry`, 2.8.x) on loopback, same htpasswd file, storage on the
# same disk, every workload interleaved (ours, theirs, then theirs, ours in
# the next round...) for ROUNDS rounds. Prints a table of medians and ratios
# and keeps every JSON line in $BENCH_DIR/results.jsonl.
#
#   bash benches/compare.sh                 # full run, about 6 minutes
#   ROUNDS=1 SIZE_MIB=64 DURATION=2 bash benches/compare.sh   # quick look
#   WORKLOADS=gc ROUNDS=1 bash benches/compare.sh              # garbage collection
#   WORKLOADS=gc ROUNDS=1 GC_IMAGES=1000 GC_REPOS=100 DURATION=5 bash benches/compare.sh
#                                                   # the same, quick (about 2 minutes)
#
# The `gc` workload (not in the default list) fills a fresh pair of servers with
# GC_IMAGES small images over GC_REPOS repositories and deletes half of their
# manifests through the API (`registry-load --workload gc-fill`), then times one pass
# each: ours (`registry gc --delete-untagged --json`) while our server serves, and
# Distribution's offline `garbage-collect --delete-untagged` after it is stopped (wall
# time and peak RSS by /usr/bin/time; blob data files counted before and after). The
# file system calls of each pass are counted by `strace -f -c` on a copy of each store
# made before the passes. Last, a small push/pull load (`gc-latency`) runs against our
# server alone, then beside passes run back to back, GC_WINDOWS times in turn (each
# window DURATION seconds; the table gives the median of the windows).
#
# The `proxy` workload (not in the default list) starts a third Distribution, the
# upstream (anonymous, its access log kept), and two pull-through caches of it: ours
# (`proxy.upstreams`, prefix `up`) and Distribution in proxy mode (`proxy.remoteurl`).
# It pushes two fresh images of PROXY_MIB in PROXY_LAYERS layers of random bytes to the
# upstream (`registry-load --workload proxy-seed`), then pulls (`proxy-pull`: manifest
# by tag, then every blob at once): directly from the upstream (the baseline), cold
# through each cache, warm through each, the same image pushed to ours as a local
# repository (what a warm pull should match; these three PROXY_REPEATS times in a row,
# a cold pull once), and last PROXY_PULLS pulls at once of the
# second, uncached image through each cache, counting the blob GETs the upstream
# answered for them (its access log) against the blobs of the image.
#   WORKLOADS=proxy ROUNDS=3 bash benches/compare.sh             # about 2 minutes
#
#
# STORAGE=s3 runs both registries on object storage instead: one S3 server (a RADOS
# Gateway, `scripts/s3-server`, memstore) shared by both, a bucket each, Distribution
# with its S3 driver (redirects off, so that its replicas serve the bytes as ours do).
# Each round runs the workloads once per replica count in REPLICAS, each replica count
# on fresh buckets (emptied after); the replicas of each registry sit behind haproxy
# (round robin per request, no stickiness: the chunks of one upload land on any
# replica), one replica too, so that the replica counts differ in nothing else. The
# peak RSS is the highest of any one replica.
#
#   STORAGE=s3 ROUNDS=1 SIZE_MIB=256 DURATION=5 bash benches/compare.sh   # quick look
#   STORAGE=s3 REPLICAS=3 WORKLOADS=mixed bash benches/compare.sh
#
# Needs root for apt-get (docker-registry, apache2-utils, and for STORAGE=s3 haproxy,
# ceph-mon, ceph-osd, radosgw, python3-boto3) when they are missing, python3 for the
# table, and a few GiB free where BENCH_DIR is (STORAGE=s3: in memory, about 4 ×
# SIZE_MIB per registry and replica count). Servers listen on 127.0.0.1 only, on free
# ports, and are stopped by PID. CARGO="flock /some/lock cargo" builds under a lock.
set -euo pipefail
cd "$(dirname "$0")/.."

STORAGE=${STORAGE:-filesystem}
case "$STORAGE" in
  filesystem) default_workloads=push-1g,push-4x256m,push-chunked,pull-1g,manifest-get,mixed ;;
  s3) default_workloads=push-1g,push-4x256m,push-chunked,pull-1g,mixed ;;
  *) echo "STORAGE is filesystem or s3, not $STORAGE" >&2; exit 2 ;;
esac
ROUNDS=${ROUNDS:-3}
WORKLOADS=${WORKLOADS:-$default_workloads}
# STORAGE=s3: the replica counts, and the multipart part size (chunksize) of both;
# empty: each registry's default (ours 5 MiB, Distribution's 10 MiB).
REPLICAS=${REPLICAS:-1,3}
S3_CHUNK_MIB=${S3_CHUNK_MIB:-}
SIZE_MIB=${SIZE_MIB:-1024}
CHUNK_MIB=${CHUNK_MIB:-10}
DURATION=${DURATION:-10}
BENCH_DIR=${BENCH_DIR:-$PWD/target/bench}
# Each load run is cut off after this many seconds (the tool also stops itself).
RUN_TIMEOUT=${RUN_TIMEOUT:-150}
# The gc workload's fill is cut off after this many (Distribution takes about 60 s per
# 1,000 images here).
GC_FILL_TIMEOUT=${GC_FILL_TIMEOUT:-1800}
# SERVERS=ours measures this registry alone (no Distribution), for quick iterations.
SERVERS=${SERVERS:-ours distribution}
# The gc workload: store size, grace period (storage.gc.delay, seconds, of our server and
# pass), and the latency load beside the passes.
GC_IMAGES=${GC_IMAGES:-10000}
GC_REPOS=${GC_REPOS:-1000}
GC_DELAY=${GC_DELAY:-2}
GC_LOAD=${GC_LOAD:---pushers 2 --pullers 2 --layer-kib 64,16}
GC_WINDOWS=${GC_WINDOWS:-3}
# The proxy workload: image size and layers, cold pulls at once.
PROXY_MIB=${PROXY_MIB:-256}
PROXY_LAYERS=${PROXY_LAYERS:-4}
PROXY_PULLS=${PROXY_PULLS:-16}
PROXY_REPEATS=${PROXY_REPEATS:-3}

case ",$WORKLOADS," in
  *,gc,*|*,proxy,*) [ "$STORAGE" = filesystem ] || {
      echo "the gc and proxy workloads need STORAGE=filesystem" >&2; exit 2; } ;;
esac
need=()
case " $SERVERS ,$WORKLOADS," in
  *" distribution "*|*,proxy,*) command -v docker-registry >/dev/null || need+=(docker-registry) ;;
esac
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v python3 >/dev/null || need+=(python3)
case ",$WORKLOADS," in
  *,gc,*) for tool in strace:strace time:/usr/bin/time; do
      command -v "${tool#*:}" >/dev/null || need+=("${tool%%:*}")
    done ;;
esac
if [ "$STORAGE" = s3 ]; then
  for tool in haproxy:haproxy ceph-mon:ceph-mon ceph-osd:ceph-osd radosgw:radosgw; do
    command -v "${tool#*:}" >/dev/null || need+=("${tool%%:*}")
  done
  python3 -c 'import boto3' 2>/dev/null || need+=(python3-boto3)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "missing ${need[*]} (Debian: apt-get install ${need[*]})" >&2
    exit 1
  fi
fi

${CARGO:-cargo} build --release -q -p registry-bin -p registry-load
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
THEIRS_BIN=$(command -v docker-registry || echo docker-registry)

# Storage is removed after the measurements, never between them: on an ext4
# without a journal, for about five minutes after a bulk delete every file
# creation in the same block groups steps past the freed inodes one by one
# (`find_inode_bit`, `recently_deleted`), which would measure this script's
# `rm -rf` instead of the servers. Leftovers of an interrupted run go now.
# Only the storage directories: the server logs stay for a post-mortem.
remove_storage() { # message
  local dir removed=0
  for dir in "$BENCH_DIR"/ours-* "$BENCH_DIR"/theirs-* "$BENCH_DIR"/upstream-*; do
    if [ -d "$dir" ]; then
      rm -rf "$dir"
      removed=1
    fi
  done
  if [ "$removed" = 1 ]; then
    echo "$1; on ext4 without a journal, wait 5 minutes before measuring" >&2
  fi
}
remove_storage "removed an earlier run's storage"
rm -rf "$BENCH_DIR"
mkdir -p "$BENCH_DIR/bin"
# The binaries as built now: a build in the same target directory during the run
# (another checkout sharing CARGO_TARGET_DIR) cannot swap them.
cp "$TARGET_DIR/release/registry" "$TARGET_DIR/release/registry-load" \
  "$TARGET_DIR/release/push-ceiling" "$BENCH_DIR/bin/"
OURS_BIN=$BENCH_DIR/bin/registry
LOAD_BIN=$BENCH_DIR/bin/registry-load
RESULTS=$BENCH_DIR/results.jsonl
: >"$RESULTS"
# Two users: bcrypt cost 5 (htpasswd -B's default) for pushes, pulls and the
# mixed load; cost 10 for the manifest-GET workload.
htpasswd -Bbn -C 5 bench5 pass5 >"$BENCH_DIR/htpasswd"
htpasswd -Bbn -C 10 bench10 pass10 >>"$BENCH_DIR/htpasswd"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

OURS_PID=
OURS_PORT=0
THEIRS_PORT=0
THEIRS_PID=
stop_pid() { # pid
  kill "$1" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
# STORAGE=s3: the replicas' PIDs (comma-separated), haproxy's, the S3 server's folder.
OURS_PIDS=
THEIRS_PIDS=
LB_PID=
S3_DIR=
UPSTREAM_PID=
stop_servers() {
  for pid in $OURS_PID $THEIRS_PID $UPSTREAM_PID ${OURS_PIDS//,/ } ${THEIRS_PIDS//,/ } $LB_PID; do
    stop_pid "$pid"
  done
  OURS_PID=
  THEIRS_PID=
  UPSTREAM_PID=
  OURS_PIDS=
  THEIRS_PIDS=
  LB_PID=
}
stop_s3() {
  if [ -n "$S3_DIR" ]; then
    scripts/s3-server stop "$S3_DIR"
    S3_DIR=
  fi
}
trap 'stop_servers; stop_s3; remove_storage "storage removed"' EXIT

wait_up() { # url
  for _ in $(seq 1 100); do
    if python3 -c "import sys,urllib.request,urllib.error
try: urllib.request.urlopen(sys.argv[1], timeout=1)
except urllib.error.HTTPError: pass
" "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "server at $1 did not come up" >&2
  return 1
}

start_servers() { # round
  local round=$1
  local ours_dir=$BENCH_DIR/ours-$round theirs_dir=$BENCH_DIR/theirs-$round
  mkdir -p "$ours_dir" "$theirs_dir"
  OURS_PORT=$(free_port)
  "$OURS_BIN" serve --addr "127.0.0.1:$OURS_PORT" --storage "$ours_dir" \
    --htpasswd "$BENCH_DIR/htpasswd" --realm bench >"$BENCH_DIR/ours-$round.log" 2>&1 &
  OURS_PID=$!
  wait_up "http://127.0.0.1:$OURS_PORT/v2/"
  case " $SERVERS " in *" distribution "*) ;; *) return 0 ;; esac
  THEIRS_PORT=$(free_port)
  theirs_config "$theirs_dir" "$THEIRS_PORT" >"$BENCH_DIR/config-$round.yml"
  "$THEIRS_BIN" serve "$BENCH_DIR/config-$round.yml" >"$BENCH_DIR/theirs-$round.log" 2>&1 &
  THEIRS_PID=$!
  wait_up "http://127.0.0.1:$THEIRS_PORT/v2/"
}

theirs_config() { # storage port
  theirs_storage "$1" "$2"
  cat <<EOF
auth:
  htpasswd:
    realm: bench
    path: $BENCH_DIR/htpasswd
EOF
}

# Distribution's storage and listener, no auth: the upstream of the proxy workload.
theirs_storage() { # storage (a folder, or with STORAGE=s3 a bucket) port
  cat <<EOF
version: 0.1
log:
  level: info
storage:
EOF
  if [ "$STORAGE" = s3 ]; then
    # Its redirects to presigned URLs are off: the load tool (as many clients behind a
    # firewall) talks to the registry only, and ours serves the bytes itself.
    cat <<EOF
  s3:
$(s3_keys "$1")
  redirect:
    disable: true
EOF
  else
    cat <<EOF
  filesystem:
    rootdirectory: $1
EOF
  fi
  cat <<EOF
  cache:
    blobdescriptor: inmemory
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$2
EOF
  # Replicas must share the secret that signs the upload state they hand each other.
  if [ "$STORAGE" = s3 ]; then echo "  secret: bench-shared-secret"; fi
  return 0
}

# Our config for the gc workload: the storage and the grace period, which the server
# (its claims) and the pass must share.
ours_gc_config() { # storage
  cat <<EOF
storage:
  filesystem:
    rootdirectory: $1
  delete:
    enabled: true
  gc:
    delay: ${GC_DELAY}s
EOF
}

run_load() { # label port pid(s) round workload [more flags]; label: ours or distribution,
  # with STORAGE=s3 followed by -r and the replica count
  local label=$1
  case " $SERVERS " in *" ${label%-r[0-9]*} "*) ;; *) return 0 ;; esac
  load "$@"
}

load() { # label port pid round workload [more flags]: any label
  local label=$1 port=$2 pid=$3 round=$4 workload=$5
  shift 5
  echo "round $round: $workload on $label" >&2
  local limit=$RUN_TIMEOUT
  if [ "$workload" = gc-fill ]; then limit=$GC_FILL_TIMEOUT; fi
  timeout "$limit" "$LOAD_BIN" --url "http://127.0.0.1:$port" \
    --user bench5 --password pass5 --get-user bench10 --get-password pass10 \
    --label "$label" --server-pid "$pid" --seed "$round" --workload "$workload" \
    --size-mib "$SIZE_MIB" --chunk-mib "$CHUNK_MIB" --duration "$DURATION" \
    --max-seconds "$((limit - 10))" "$@" | tee -a "$RESULTS" >&2 || true
}

# The gc workload on a pair of servers of its own (see the top of this file). Both
# stores get the same images and the same deletions; each pass is measured on its own.
run_gc() { # round
  local round=$1 ours_dir=$BENCH_DIR/ours-gc-$1 theirs_dir=$BENCH_DIR/theirs-gc-$1
  local fill=(--gc-images "$GC_IMAGES" --gc-repos "$GC_REPOS")
  local ours_cfg=$BENCH_DIR/ours-gc-$round.yml theirs_cfg=$BENCH_DIR/theirs-gc-$round.yml
  mkdir -p "$ours_dir" "$theirs_dir"
  ours_gc_config "$ours_dir" >"$ours_cfg"
  ours_gc_config "$ours_dir-copy" >"$ours_cfg.copy"
  OURS_PORT=$(free_port)
  "$OURS_BIN" serve --config "$ours_cfg" --addr "127.0.0.1:$OURS_PORT" \
    --htpasswd "$BENCH_DIR/htpasswd" --realm bench >"$BENCH_DIR/ours-gc-$round.log" 2>&1 &
  OURS_PID=$!
  wait_up "http://127.0.0.1:$OURS_PORT/v2/"
  if [ "$has_theirs" = 1 ]; then
    THEIRS_PORT=$(free_port)
    theirs_config "$theirs_dir" "$THEIRS_PORT" >"$theirs_cfg"
    theirs_config "$theirs_dir-copy" "$THEIRS_PORT" >"$theirs_cfg.copy"
    "$THEIRS_BIN" serve "$theirs_cfg" >"$BENCH_DIR/theirs-gc-$round.log" 2>&1 &
    THEIRS_PID=$!
    wait_up "http://127.0.0.1:$THEIRS_PORT/v2/"
  fi
  run_load ours "$OURS_PORT" "$OURS_PID" "$round" gc-fill "${fill[@]}"
  run_load distribution "$THEIRS_PORT" "$THEIRS_PID" "$round" gc-fill "${fill[@]}"
  # Everything stored is now older than the grace period (delay plus a quarter).
  sleep "$((GC_DELAY * 5 / 4 + 1))"
  cp -a "$ours_dir" "$ours_dir-copy"
  if [ "$has_theirs" = 1 ]; then cp -a "$theirs_dir" "$theirs_dir-copy"; fi
  # The copies' writeback ends before the passes: the first pass would compete with it
  # for the disk and the CPU, the second (Distribution's, seconds later) much less.
  sync

  echo "round $round: gc pass on ours (serving)" >&2
  python3 benches/gc_pass.py time --label ours --store "$ours_dir" \
    --log "$BENCH_DIR/ours-gc-$round.pass.log" -- \
    "$OURS_BIN" gc --config "$ours_cfg" --delete-untagged --json | tee -a "$RESULTS" >&2
  if [ "$has_theirs" = 1 ]; then
    stop_pid "$THEIRS_PID"
    THEIRS_PID=
    echo "round $round: gc pass on distribution (stopped)" >&2
    python3 benches/gc_pass.py time --label distribution --store "$theirs_dir" \
      --log "$BENCH_DIR/theirs-gc-$round.pass.log" -- \
      "$THEIRS_BIN" garbage-collect --delete-untagged "$theirs_cfg" | tee -a "$RESULTS" >&2
  fi

  # Push/pull latency alone, then beside passes run back to back until the load ends;
  # windows in turn, so a drift of the machine (ext4 slows file creation for minutes
  # after Distribution's bulk delete) weighs on both sides alike.
  local window load_pid passes
  for window in $(seq "$GC_WINDOWS"); do
    # shellcheck disable=SC2086 # GC_LOAD is a list of flags
    load ours "$OURS_PORT" "$OURS_PID" "$round" gc-latency $GC_LOAD
    # shellcheck disable=SC2086
    load ours-during-gc "$OURS_PORT" "$OURS_PID" "$round" gc-latency $GC_LOAD &
    load_pid=$! passes=0
    sleep 0.5
    while kill -0 "$load_pid" 2>/dev/null && [ "$passes" -lt 1000 ]; do
      # The harness (python, time, timeout) runs under the idle policy: alone, with
      # `sleep 2` in place of the pass, it raised pull p99 by 23% (12 to 33% per
      # window). The pass starts at normal priority, as from cron, and lowers itself.
      chrt --idle 0 python3 benches/gc_pass.py time --label ours --workload gc-pass-under-load \
        --log "$BENCH_DIR/ours-gc-$round.pass.log" -- \
        timeout "$RUN_TIMEOUT" chrt --other 0 "$OURS_BIN" gc --config "$ours_cfg" --delete-untagged --json \
        >>"$RESULTS"
      passes=$((passes + 1))
    done
    wait "$load_pid" || true
    echo "round $round, window $window: $passes passes ran beside the load" >&2
  done
  stop_servers

  # The same passes, on the copies, counted by strace (much slower, so not timed).
  echo "round $round: counting file system calls of each pass (strace)" >&2
  python3 benches/gc_pass.py syscalls --label ours -- \
    "$OURS_BIN" gc --config "$ours_cfg.copy" --delete-untagged --json | tee -a "$RESULTS" >&2
  if [ "$has_theirs" = 1 ]; then
    python3 benches/gc_pass.py syscalls --label distribution -- \
      "$THEIRS_BIN" garbage-collect --delete-untagged "$theirs_cfg.copy" | tee -a "$RESULTS" >&2
  fi
}

# The proxy workload (see the top of this file): an upstream, two caches of it.
run_proxy() { # round
  local round=$1 up_port ours_cfg=$BENCH_DIR/ours-proxy-$round.yml
  local theirs_cfg=$BENCH_DIR/theirs-proxy-$round.yml up_log=$BENCH_DIR/upstream-$round.log
  local image=bench/proxy-$round fresh=bench/proxy-fresh-$round
  mkdir -p "$BENCH_DIR/upstream-$round" "$BENCH_DIR/ours-proxy-$round" "$BENCH_DIR/theirs-proxy-$round"
  up_port=$(free_port)
  theirs_storage "$BENCH_DIR/upstream-$round" "$up_port" >"$BENCH_DIR/upstream-$round.yml"
  "$THEIRS_BIN" serve "$BENCH_DIR/upstream-$round.yml" >"$up_log" 2>&1 &
  UPSTREAM_PID=$!
  wait_up "http://127.0.0.1:$up_port/v2/"
  cat >"$ours_cfg" <<EOF
storage:
  filesystem:
    rootdirectory: $BENCH_DIR/ours-proxy-$round
proxy:
  upstreams:
    - prefix: up
      url: http://127.0.0.1:$up_port
EOF
  OURS_PORT=$(free_port)
  "$OURS_BIN" serve --config "$ours_cfg" --addr "127.0.0.1:$OURS_PORT" \
    --htpasswd "$BENCH_DIR/htpasswd" --realm bench >"$BENCH_DIR/ours-proxy-$round.log" 2>&1 &
  OURS_PID=$!
  wait_up "http://127.0.0.1:$OURS_PORT/v2/"
  THEIRS_PORT=$(free_port)
  { theirs_config "$BENCH_DIR/theirs-proxy-$round" "$THEIRS_PORT"
    printf 'proxy:\n  remoteurl: http://127.0.0.1:%s\n' "$up_port"; } >"$theirs_cfg"
  "$THEIRS_BIN" serve "$theirs_cfg" >"$BENCH_DIR/theirs-proxy-$round.log" 2>&1 &
  THEIRS_PID=$!
  wait_up "http://127.0.0.1:$THEIRS_PORT/v2/"

  proxy_load upstream "$up_port" "$UPSTREAM_PID" "$round" seed "$image" $((round * 1000 + 1))
  proxy_load upstream "$up_port" "$UPSTREAM_PID" "$round" seed "$fresh" $((round * 1000 + 2))
  proxy_load upstream "$up_port" "$UPSTREAM_PID" "$round" direct "$image"
  local phase side
  for phase in cold warm; do
    for side in $(proxy_order "$round"); do
      if [ "$side" = ours ]; then
        proxy_load ours "$OURS_PORT" "$OURS_PID" "$round" "$phase" "up/$image"
      else
        proxy_load distribution "$THEIRS_PORT" "$THEIRS_PID" "$round" "$phase" "$image"
      fi
    done
  done
  # The same bytes pushed to ours as a repository of its own: a local pull.
  proxy_load ours "$OURS_PORT" "$OURS_PID" "$round" seed "bench/local-$round" $((round * 1000 + 1))
  proxy_load ours "$OURS_PORT" "$OURS_PID" "$round" local "bench/local-$round"
  local before
  for side in $(proxy_order "$round"); do
    before=$(wc -l <"$up_log")
    if [ "$side" = ours ]; then
      proxy_load ours "$OURS_PORT" "$OURS_PID" "$round" concurrent "up/$fresh" --pulls "$PROXY_PULLS"
    else
      proxy_load distribution "$THEIRS_PORT" "$THEIRS_PID" "$round" concurrent "$fresh" --pulls "$PROXY_PULLS"
    fi
    # Blob GETs the upstream answered (200) for the fresh image since the pulls began.
    tail -n +"$((before + 1))" "$up_log" |
      python3 benches/upstream_gets.py --label "$side" --repo "$fresh" | tee -a "$RESULTS" >&2
  done
  stop_servers
  find "$BENCH_DIR/upstream-$round" "$BENCH_DIR/ours-proxy-$round" "$BENCH_DIR/theirs-proxy-$round" \
    -type f -size +16M -delete
}

# Ours first in odd rounds, Distribution first in even ones.
proxy_order() { # round
  if [ $(($1 % 2)) = 1 ]; then echo ours distribution; else echo distribution ours; fi
}

proxy_load() { # label port pid round phase repo [seed | more flags]
  local label=$1 port=$2 pid=$3 round=$4 phase=$5 repo=$6
  shift 6
  # Only the first pull of an uncached image is cold; the others pull PROXY_REPEATS times.
  local repeats=$PROXY_REPEATS
  case $phase in cold | concurrent) repeats=1 ;; esac
  local flags=(--workload proxy-pull --proxy-phase "$phase" --seed "$round" --pull-repeats "$repeats")
  if [ "$phase" = seed ]; then
    flags=(--workload proxy-seed --seed "$1")
    shift
  fi
  echo "round $round: proxy $phase of $repo on $label" >&2
  # The previous step's writes reach the disk first, and the other server's work after
  # its step (Go's heap scavenger) ends, so no pull pays for them.
  sync
  sleep 2
  timeout "$RUN_TIMEOUT" "$LOAD_BIN" --url "http://127.0.0.1:$port" \
    --user bench5 --password pass5 --label "$label" --server-pid "$pid" \
    --size-mib "$PROXY_MIB" --proxy-layers "$PROXY_LAYERS" --proxy-repo "$repo" \
    --max-seconds "$((RUN_TIMEOUT - 10))" "${flags[@]}" "$@" | tee -a "$RESULTS" >&2 || true
}

# STORAGE=s3: the keys of both registries' `storage.s3` (the standard registry's names),
# indented for the storage section, from the S3 server's env file (start_s3_servers).
s3_keys() { # bucket
  cat <<EOF
    region: $S3_REGION
    regionendpoint: $S3_ENDPOINT
    bucket: $1
    rootdirectory: /registry
    accesskey: $S3_ACCESS_KEY
    secretkey: $S3_SECRET_KEY
    forcepathstyle: true
    secure: false
    v4auth: true
EOF
  if [ -n "$S3_CHUNK_MIB" ]; then echo "    chunksize: $((S3_CHUNK_MIB * 1024 * 1024))"; fi
}

# Creates the buckets, then warms the server up: a fresh RADOS Gateway serves its first
# ~100 MiB at a fifth of its speed (pools and placement groups coming up), which would
# be charged to whichever registry runs first.
s3_buckets() { # name...
  python3 - "$@" <<'EOF'
import os, sys, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name=os.environ["S3_REGION"],
                  aws_access_key_id=os.environ["S3_ACCESS_KEY"],
                  aws_secret_access_key=os.environ["S3_SECRET_KEY"])
part = os.urandom(10 << 20)
for bucket in sys.argv[1:]:
    s3.create_bucket(Bucket=bucket)
    for i in range(4):
        key = f"warm-up-{i}"
        upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        parts = [{"PartNumber": n, "ETag": s3.upload_part(Bucket=bucket, Key=key, UploadId=upload,
                                                          PartNumber=n, Body=part)["ETag"]}
                 for n in (1, 2, 3)]
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload,
                                     MultipartUpload={"Parts": parts})
        s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        s3.delete_object(Bucket=bucket, Key=key)
EOF
}

# haproxy in front of each registry's replicas: one listener each, round robin per
# request (no stickiness, no preference for the last server).
lb_config() { # ours-port theirs-port ours-replica-ports theirs-replica-ports
  cat <<EOF
global
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 300s
  timeout server 300s
EOF
  local name port replicas i
  for name in ours theirs; do
    if [ "$name" = ours ]; then port=$1 replicas=$3; else port=$2 replicas=$4; fi
    [ -n "$replicas" ] || continue
    printf 'frontend %s\n  bind 127.0.0.1:%s\n  default_backend %s-replicas\n' "$name" "$port" "$name"
    printf 'backend %s-replicas\n  balance roundrobin\n' "$name"
    i=0
    for port in $replicas; do
      i=$((i + 1))
      printf '  server r%s 127.0.0.1:%s\n' "$i" "$port"
    done
  done
}

# The S3 server of the whole run. Its start fails now and then on a busy machine (the
# OSD quits: "wrong fsid", "unable to update_crush_device_class"): a few attempts.
start_s3() {
  local i
  S3_DIR=$BENCH_DIR/s3
  echo "starting the S3 server" >&2
  for i in 1 2 3 4 5; do
    if scripts/s3-server start "$S3_DIR" >/dev/null 2>>"$BENCH_DIR/s3.err"; then break; fi
    scripts/s3-server stop "$S3_DIR"
    if [ "$i" = 5 ]; then tail -n 20 "$BENCH_DIR/s3.err" >&2; return 1; fi
    echo "the S3 server did not start; again" >&2
  done
  set -a
  # shellcheck disable=SC1091 # written by scripts/s3-server
  . "$S3_DIR/env"
  set +a
}

# Empties the buckets and has radosgw free the space now (it keeps deleted data for
# hours by default), so that the memory-backed store holds one replica count's data.
s3_empty() { # bucket...
  python3 - "$@" <<'EOF'
import os, sys, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name=os.environ["S3_REGION"],
                  aws_access_key_id=os.environ["S3_ACCESS_KEY"],
                  aws_secret_access_key=os.environ["S3_SECRET_KEY"])
for bucket in sys.argv[1:]:
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for u in page.get("Uploads", []):
            s3.abort_multipart_upload(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
EOF
  radosgw-admin -c "$S3_DIR/ceph.conf" gc process --include-all >/dev/null 2>&1 || true
}

# A bucket per registry on the run's S3 server, `replicas` replicas of each and haproxy
# in front: OURS_PORT and THEIRS_PORT are haproxy's listeners.
start_s3_servers() { # round replicas
  local round=$1 n=$2 i port ours_ports='' theirs_ports='' pids=()
  local tag=$round-r$n
  s3_buckets "ours-$tag" "theirs-$tag"
  { echo "storage:"; echo "  s3:"; s3_keys "ours-$tag"; echo "  delete:"; echo "    enabled: true"; } \
    >"$BENCH_DIR/ours-$tag.yml"
  for i in $(seq 1 "$n"); do
    port=$(free_port)
    "$OURS_BIN" serve --config "$BENCH_DIR/ours-$tag.yml" --addr "127.0.0.1:$port" \
      --htpasswd "$BENCH_DIR/htpasswd" --realm bench >"$BENCH_DIR/ours-$tag-$i.log" 2>&1 &
    pids+=($!)
    wait_up "http://127.0.0.1:$port/v2/"
    ours_ports+=" $port"
  done
  OURS_PIDS=$(IFS=,; echo "${pids[*]}")
  pids=()
  if [ "$has_theirs" = 1 ]; then
    for i in $(seq 1 "$n"); do
      port=$(free_port)
      theirs_config "theirs-$tag" "$port" >"$BENCH_DIR/theirs-$tag-$i.yml"
      # It panics at start on S3 when AWS_CA_BUNDLE is set.
      env -u AWS_CA_BUNDLE "$THEIRS_BIN" serve "$BENCH_DIR/theirs-$tag-$i.yml" \
        >"$BENCH_DIR/theirs-$tag-$i.log" 2>&1 &
      pids+=($!)
      wait_up "http://127.0.0.1:$port/v2/"
      theirs_ports+=" $port"
    done
    THEIRS_PIDS=$(IFS=,; echo "${pids[*]}")
  fi
  OURS_PORT=$(free_port)
  THEIRS_PORT=$(free_port)
  lb_config "$OURS_PORT" "$THEIRS_PORT" "$ours_ports" "$theirs_ports" >"$BENCH_DIR/haproxy-$tag.cfg"
  haproxy -db -f "$BENCH_DIR/haproxy-$tag.cfg" >"$BENCH_DIR/haproxy-$tag.log" 2>&1 &
  LB_PID=$!
  wait_up "http://127.0.0.1:$OURS_PORT/v2/"
  if [ "$has_theirs" = 1 ]; then wait_up "http://127.0.0.1:$THEIRS_PORT/v2/"; fi
}

# The disk's speed moves with its host's load, and the pushes wait for it
# (every blob is synced before the 201): it is measured before each workload.
disk_probe() { # round workload
  local out
  out=$(dd if=/dev/zero of="$BENCH_DIR/disk-probe" bs=1M count=256 oflag=direct conv=fsync 2>&1 | tail -n 1) || out="not measured (dd failed)"
  rm -f "$BENCH_DIR/disk-probe"
  echo "round $1, before $2: disk writes ${out##*, } (256 MiB, O_DIRECT)" | tee -a "$BENCH_DIR/disk.txt" >&2
}

# What this machine allows any verified, synced push (SHA-256 on one core, the
# CPU of the socket and the disk, the disk's speed), measured before and after
# the rounds: the table sets the push targets against it.
CEILING_BIN=$BENCH_DIR/bin/push-ceiling
ceiling_probe() { # when
  [ "$STORAGE" = filesystem ] || return 0
  case ",$WORKLOADS," in *,push-*) ;; *) return 0 ;; esac
  echo "push ceiling, $1" >&2
  "$CEILING_BIN" --dir "$BENCH_DIR" | tee -a "$BENCH_DIR/ceiling.jsonl" >&2 || true
}
: >"$BENCH_DIR/ceiling.jsonl"
ceiling_probe "before the rounds"

case " $SERVERS " in *" distribution "*) has_theirs=1 ;; *) has_theirs=0 ;; esac
IFS=, read -r -a workloads <<<"$WORKLOADS"
if [ "$STORAGE" = s3 ]; then
  IFS=, read -r -a replica_counts <<<"$REPLICAS"
  start_s3
  for round in $(seq 1 "$ROUNDS"); do
    for replicas in "${replica_counts[@]}"; do
      start_s3_servers "$round" "$replicas"
      for workload in "${workloads[@]}"; do
        # The machine may be shared: its load is kept with the figures.
        echo "round $round, $replicas replica(s), before $workload: load average" \
          "$(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$BENCH_DIR/loadavg.txt" >&2
        if [ $((round % 2)) = 1 ]; then
          run_load "ours-r$replicas" "$OURS_PORT" "$OURS_PIDS" "$round" "$workload"
          run_load "distribution-r$replicas" "$THEIRS_PORT" "$THEIRS_PIDS" "$round" "$workload"
        else
          run_load "distribution-r$replicas" "$THEIRS_PORT" "$THEIRS_PIDS" "$round" "$workload"
          run_load "ours-r$replicas" "$OURS_PORT" "$OURS_PIDS" "$round" "$workload"
        fi
      done
      stop_servers
      s3_empty "ours-$round-r$replicas" "theirs-$round-r$replicas"
    done
  done
  echo "STORAGE=s3 ROUNDS=$ROUNDS SIZE_MIB=$SIZE_MIB CHUNK_MIB=$CHUNK_MIB DURATION=$DURATION" \
    "S3_CHUNK_MIB=$S3_CHUNK_MIB REPLICAS=$REPLICAS"
  python3 benches/table.py "$RESULTS"
  cat "$BENCH_DIR/loadavg.txt"
  exit 0
fi
for round in $(seq 1 "$ROUNDS"); do
  # The gc and proxy workloads bring their own servers; the others share the round's.
  others=0
  for workload in "${workloads[@]}"; do
    case $workload in
      gc) run_gc "$round" ;;
      proxy) run_proxy "$round" ;;
      *) others=1 ;;
    esac
  done
  [ "$others" = 1 ] || continue
  start_servers "$round"
  for workload in "${workloads[@]}"; do
    case $workload in gc|proxy) continue ;; esac
    disk_probe "$round" "$workload"
    if [ $((round % 2)) = 1 ]; then
      run_load ours "$OURS_PORT" "$OURS_PID" "$round" "$workload"
      run_load distribution "$THEIRS_PORT" "$THEIRS_PID" "$round" "$workload"
    else
      run_load distribution "$THEIRS_PORT" "$THEIRS_PID" "$round" "$workload"
      run_load ours "$OURS_PORT" "$OURS_PID" "$round" "$workload"
    fi
  done
  stop_servers
  # Only the large blobs go between rounds (a handful of inodes, most of the
  # space); the many small files wait for the end (see remove_storage).
  find "$BENCH_DIR/ours-$round" "$BENCH_DIR/theirs-$round" -type f -size +16M -delete
done

ceiling_probe "after the rounds"

python3 benches/table.py "$RESULTS" "$BENCH_DIR/ceiling.jsonl"
if [ -f "$BENCH_DIR/disk.txt" ]; then cat "$BENCH_DIR/disk.txt"; fi
