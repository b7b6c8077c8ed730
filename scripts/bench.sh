#!/usr/bin/env bash
# Runs every benchmark and writes the figures, with the command that produced
# them and the machine they ran on, to docs/BENCHMARKS.md. Benchmarks that
# compare against a peer (ssh fan-out vs the ansible CLI) run both sides in
# the same process on the same machine, so their ratio is what matters: the
# machine is shared and noisy.
set -euo pipefail
cd "$(dirname "$0")/.."
benchtime="${BENCHTIME:-2s}"
cmd=(go test -run='^$' -bench=. -benchmem -benchtime="$benchtime" -count=1 ./...)
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
echo "running: ${cmd[*]}" >&2
"${cmd[@]}" 2>&1 | tee "$raw" >&2

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
    /^BenchmarkFanout\/ssh/     { for (i = 3; i < NF; i += 2) if ($(i+1) == "hosts/s") ssh = $i }
    /^BenchmarkFanout\/ansible/ { for (i = 3; i < NF; i += 2) if ($(i+1) == "hosts/s") ans = $i }
    /^Benchmark(AEAD|Legacy)(Seal|Open)\// {
      split($1, p, "/"); name = p[1]; size = p[2]; sub(/-[0-9]+$/, "", size)
      for (i = 3; i < NF; i += 2) if ($(i+1) == "MB/s") mbs[name "/" size] = $i
    }
    END {
      if (ssh > 0 && ans > 0)
        printf "- module 1003 on 8 hosts through the master: native SSH backend %.2f hosts/s, ansible CLI backend %.2f hosts/s: **SSH is %.1fx the throughput of driving ansible** (the original OMServer drove ansible/salt).\n", ssh, ans, ssh / ans
      n = split("Seal/1KiB Seal/64KiB Open/1KiB Open/64KiB", ops, " ")
      for (k = 1; k <= n; k++) {
        split(ops[k], o, "/")
        a = mbs["BenchmarkAEAD" o[1] "/" o[2]]; l = mbs["BenchmarkLegacy" o[1] "/" o[2]]
        if (a > 0 && l > 0)
          printf "- cipher %s %s: authenticated (XChaCha20-Poly1305) %.0f MB/s vs legacy RC4 %.0f MB/s: ratio %.2f\n", tolower(o[1]), o[2], a, l, a / l
      }
    }' "$raw"
} > docs/BENCHMARKS.md
echo "wrote docs/BENCHMARKS.md" >&2

# The pages and API on a large database: its own section of the same file.
./scripts/bench-pages.sh
