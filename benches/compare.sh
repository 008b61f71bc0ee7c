#!/usr/bin/env bash
# Side-by-side benchmark: this registry against CNCF Distribution (Debian's
# `docker-registry`, 2.8.x) on loopback, same htpasswd file, storage on the
# same disk, every workload interleaved (ours, theirs, then theirs, ours in
# the next round...) for ROUNDS rounds. Prints a table of medians and ratios
# and keeps every JSON line in $BENCH_DIR/results.jsonl.
#
#   bash benches/compare.sh                 # full run, about 6 minutes
#   ROUNDS=1 SIZE_MIB=64 DURATION=2 bash benches/compare.sh   # quick look
#
# Needs root for apt-get (docker-registry, apache2-utils) when they are
# missing, python3 for the table, and a few GiB free where BENCH_DIR is.
# Servers listen on 127.0.0.1 only, on free ports, and are stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
WORKLOADS=${WORKLOADS:-push-1g,push-4x256m,push-chunked,pull-1g,manifest-get,mixed}
SIZE_MIB=${SIZE_MIB:-1024}
CHUNK_MIB=${CHUNK_MIB:-10}
DURATION=${DURATION:-10}
BENCH_DIR=${BENCH_DIR:-$PWD/target/bench}
# Each load run is cut off after this many seconds (the tool also stops itself).
RUN_TIMEOUT=${RUN_TIMEOUT:-150}
# SERVERS=ours measures this registry alone (no Distribution), for quick iterations.
SERVERS=${SERVERS:-ours distribution}

need=()
case " $SERVERS " in *" distribution "*) command -v docker-registry >/dev/null || need+=(docker-registry) ;; esac
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v python3 >/dev/null || need+=(python3)
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

cargo build --release -q -p registry-bin -p registry-load
OURS_BIN=$PWD/target/release/registry
LOAD_BIN=$PWD/target/release/registry-load
THEIRS_BIN=$(command -v docker-registry || echo docker-registry)

# Storage is removed after the measurements, never between them: on an ext4
# without a journal, for about five minutes after a bulk delete every file
# creation in the same block groups steps past the freed inodes one by one
# (`find_inode_bit`, `recently_deleted`), which would measure this script's
# `rm -rf` instead of the servers. Leftovers of an interrupted run go now.
# Only the storage directories: the server logs stay for a post-mortem.
remove_storage() { # message
  local dir removed=0
  for dir in "$BENCH_DIR"/ours-* "$BENCH_DIR"/theirs-*; do
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
mkdir -p "$BENCH_DIR"
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
stop_servers() {
  for pid in $OURS_PID $THEIRS_PID; do
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  OURS_PID=
  THEIRS_PID=
}
trap 'stop_servers; remove_storage "storage removed"' EXIT

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
  cat >"$BENCH_DIR/config-$round.yml" <<EOF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $theirs_dir
  cache:
    blobdescriptor: inmemory
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$THEIRS_PORT
auth:
  htpasswd:
    realm: bench
    path: $BENCH_DIR/htpasswd
EOF
  "$THEIRS_BIN" serve "$BENCH_DIR/config-$round.yml" >"$BENCH_DIR/theirs-$round.log" 2>&1 &
  THEIRS_PID=$!
  wait_up "http://127.0.0.1:$THEIRS_PORT/v2/"
}

run_load() { # label port pid round workload
  local label=$1 port=$2 pid=$3 round=$4 workload=$5
  case " $SERVERS " in *" $label "*) ;; *) return 0 ;; esac
  echo "round $round: $workload on $label" >&2
  timeout "$RUN_TIMEOUT" "$LOAD_BIN" --url "http://127.0.0.1:$port" \
    --user bench5 --password pass5 --get-user bench10 --get-password pass10 \
    --label "$label" --server-pid "$pid" --seed "$round" --workload "$workload" \
    --size-mib "$SIZE_MIB" --chunk-mib "$CHUNK_MIB" --duration "$DURATION" \
    --max-seconds "$((RUN_TIMEOUT - 10))" | tee -a "$RESULTS" >&2 || true
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
CEILING_BIN=$PWD/target/release/push-ceiling
ceiling_probe() { # when
  echo "push ceiling, $1" >&2
  "$CEILING_BIN" --dir "$BENCH_DIR" | tee -a "$BENCH_DIR/ceiling.jsonl" >&2 || true
}
: >"$BENCH_DIR/ceiling.jsonl"
ceiling_probe "before the rounds"

IFS=, read -r -a workloads <<<"$WORKLOADS"
for round in $(seq 1 "$ROUNDS"); do
  start_servers "$round"
  for workload in "${workloads[@]}"; do
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
