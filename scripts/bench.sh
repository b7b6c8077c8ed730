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
  if [ -f docs/BENCHMARKS.notes.md ]; then cat docs/BENCHMARKS.notes.md; fi
} > docs/BENCHMARKS.md
echo "wrote docs/BENCHMARKS.md" >&2
