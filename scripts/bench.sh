#!/usr/bin/env bash
# Runs every benchmark and writes the figures, with the command that produced
# them and the machine they ran on, to docs/BENCHMARKS.md. Benchmarks that
# compare against a peer run every side on the same machine in the same
# run, so their ratio is what matters: the machine is shared and noisy.
#
# The fan-out comparison (internal/peerbench, BenchmarkFanoutPeers: the
# master against a minimal SSH client, ansible and parallel-ssh on 100 and
# 500 loopback hosts, then 5,000 hosts) needs one sshd answering at hundreds
# of loopback addresses, which it can only do on the wildcard address: it
# runs in a network namespace of its own with only loopback (unshare -n, as
# root). It needs openssh-server, ansible and pssh (parallel-ssh), and takes
# tens of minutes; FANOUT=0 leaves it out, FANOUT_SIZES, FANOUT_REPS,
# FANOUT_PEER_REPS and FANOUT_BIG tune it (see the benchmark's comment).
set -euo pipefail
cd "$(dirname "$0")/.."
benchtime="${BENCHTIME:-2s}"
cmd=(go test -run='^$' -bench=. -benchmem -benchtime="$benchtime" -count=1 ./...)
raw=$(mktemp)
work=$(mktemp -d)
trap 'rm -rf "$raw" "$work"' EXIT
echo "running: ${cmd[*]}" >&2
"${cmd[@]}" 2>&1 | tee "$raw" >&2

fanout_cmd=""
if [ "${FANOUT:-1}" != 0 ]; then
  # The test binary runs from its package directory (the module files are
  # found relative to it), so it is built there, and removed afterwards.
  trap 'rm -rf "$raw" "$work" internal/peerbench/peerbench.test' EXIT
  fanout_cmd=$(cat <<'EOF2'
go build -o $W/fanfloor ./internal/peerbench/fanfloor
go build -o $W/fanmaster ./internal/peerbench/fanmaster
go test -c -o internal/peerbench/peerbench.test ./internal/peerbench
FANOUT_BIN=$W FANOUT_REPORT=$W/fanout.md unshare -n -- sh -c 'ip link set lo up && cd internal/peerbench && exec ./peerbench.test -test.run=^$ -test.bench=^BenchmarkFanoutPeers$ -test.benchtime=1x -test.timeout=4h'
EOF2
)
  echo "running the fan-out comparison:" >&2
  echo "$fanout_cmd" >&2
  W="$work" sh -ec "$fanout_cmd" >&2
fi

{
  echo "# Benchmarks"
  echo
  echo "Produced by \`make bench\`, which ran:"
  echo
  echo '```'
  echo "${cmd[*]}"
  echo '```'
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "- go: $(go version | awk '{print $3, $4}')"
  echo "- cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') ($(nproc) cores, shared)"
  echo
  echo "| package | benchmark | iterations | ns/op | B/op | allocs/op | extra |"
  echo "| --- | --- | ---: | ---: | ---: | ---: | --- |"
  awk '
    /^pkg: / { pkg = $2; sub("github.com/omserver/omserver-go/", "", pkg) }
    /^Benchmark/ {
      ns = ""; b = ""; al = ""; extra = ""
      for (i = 3; i < NF; i += 2) {
        if ($(i+1) == "ns/op") ns = $i
        else if ($(i+1) == "B/op") b = $i
        else if ($(i+1) == "allocs/op") al = $i
        else extra = extra $i " " $(i+1) " "
      }
      printf "| %s | %s | %s | %s | %s | %s | %s |\n", pkg, $1, $2, ns, b, al, extra
    }' "$raw"
  echo
  echo "## Side-by-side ratios (same run, same machine)"
  echo
  echo "The machine is shared and noisy, so the absolute figures above move from run"
  echo "to run; these ratios compare peers measured in the same process minutes apart."
  echo
  awk '
    /^Benchmark(AEAD|Legacy)(Seal|Open)\// {
      split($1, p, "/"); name = p[1]; size = p[2]; sub(/-[0-9]+$/, "", size)
      for (i = 3; i < NF; i += 2) if ($(i+1) == "MB/s") mbs[name "/" size] = $i
    }
    END {
      n = split("Seal/1KiB Seal/64KiB Open/1KiB Open/64KiB", ops, " ")
      for (k = 1; k <= n; k++) {
        split(ops[k], o, "/")
        a = mbs["BenchmarkAEAD" o[1] "/" o[2]]; l = mbs["BenchmarkLegacy" o[1] "/" o[2]]
        if (a > 0 && l > 0)
          printf "- cipher %s %s: authenticated (XChaCha20-Poly1305) %.0f MB/s vs legacy RC4 %.0f MB/s: ratio %.2f\n", tolower(o[1]), o[2], a, l, a / l
      }
    }' "$raw"
  echo
  echo "## Web tier and relay overhead on a one-host run"
  echo
  echo "internal/demo BenchmarkWebRelayMasterOneHost: module 1003 on 127.0.0.1 through the demo's real web tier"
  echo "(POST /api/v1/runs, then the run's event stream until done), TLS relay and master with the local backend,"
  echo "against the same task handed to that master directly; the difference of the medians is the overhead"
  echo "(target: at most 5 ms at p50). It includes the master journal's two fsyncs (the accepted task, then its"
  echo "events) that make a run survive a crash without running twice."
  echo
  awk '
    /^BenchmarkWebRelayMasterOneHost/ {
      for (i = 3; i < NF; i += 2) v[$(i+1)] = $i
      printf "- through the web tier %.2f ms, the master alone %.2f ms: overhead %.2f ms at p50\n", v["web-p50-ms"], v["master-p50-ms"], v["overhead-p50-ms"]
    }' "$raw"
  echo
  echo "## Safe changes: per-host lock and hash chaining on a 500-host run"
  echo
  echo "internal/master BenchmarkSafetyOverhead500: 500 hosts of 80 ms each (the SSH command cost measured above), 50 forks,"
  echo "results stored one by one in SQLite as the web tier does; each iteration runs the plain run and the run with the"
  echo "per-host lock, the chained audit entry and the sealing of its results back to back, alternating which goes first."
  echo
  awk '
    /^BenchmarkSafetyOverhead500/ {
      for (i = 3; i < NF; i += 2) v[$(i+1)] = $i
      printf "| plain ms/run | with lock and chaining ms/run | overhead |\n| ---: | ---: | ---: |\n| %s | %s | %s%% |\n", v["plain-ms/run"], v["safe-ms/run"], v["overhead-%"]
    }' "$raw"
  if [ -n "$fanout_cmd" ]; then
    echo
    echo "## Fan-out: the master against a minimal SSH client, ansible and parallel-ssh"
    echo
    echo "Produced in the same run by:"
    echo
    echo '```'
    echo "$fanout_cmd"
    echo '```'
    echo
    cat "$work/fanout.md"
  fi
  echo
  echo "## Dashboard: a 5,000-host run in Chromium"
  echo
  echo "\`BenchmarkDashboard5000Hosts\` (internal/web) drives the real dashboard in headless"
  echo "Chromium: a whole 5,000-server application as the target, the typed"
  echo "confirmation, then an output line and a result for every host, streamed as fast"
  echo "as the web tier takes them (a fake master; 52 hosts fail, so two groups)."
  echo "Figures are wall-clock on this shared 2-core machine: a busy machine lengthens"
  echo "every task the page runs."
  echo
  awk '
    /^BenchmarkDashboard5000Hosts/ {
      for (i = 3; i < NF; i += 2) v[$(i+1)] = $i
      printf "- all 5,000 results shown %.1f s after the first (%.0f results/s through the store, the event stream and the page)\n", v["s-to-show-all"], v["results/s"]
      printf "- longest task blocking the page: %.0f ms; total blocking time (long tasks beyond 50 ms): %.0f ms\n", v["max-longtask-ms"], v["blocking-ms"]
      printf "- worst lateness of a 50 ms timer (what a click would have waited): %.0f ms\n", v["max-timer-lag-ms"]
    }' "$raw"
  echo
  echo "Each event costs the page O(log n) (a binary search in one group, one DOM"
  echo "move); events are queued and applied in 8 ms slices, and counts, progress and"
  echo "group order are redrawn once a frame. The page before this rescanned every host"
  echo "element for each result: 5,000 results meant 12.5 million element visits."
} > docs/BENCHMARKS.md
echo "wrote docs/BENCHMARKS.md" >&2

# The pages and API on a large database: its own section of the same file.
./scripts/bench-pages.sh
