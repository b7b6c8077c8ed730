#!/usr/bin/env bash
# Measures every page and API list of the web tier on a large database and
# writes the "Pages and API" section of docs/BENCHMARKS.md (the rest of the
# file is left as it is). The database (50,000 servers, 500,000 history
# rows, 1,000,000 runs; see scripts/gendb) is generated once, in the
# original schema, and kept between runs in its own MariaDB database;
# `omserver migrate` then brings it to the current schema.
#
#   OMSERVER_BENCH_MYSQL_DSN  MariaDB server, default root@tcp(127.0.0.1:3306)/
#   OMSERVER_BENCH_DB         database name, default omserver_bench
#   PAGEBENCH_N               timed requests per endpoint, default 50
#   GENDB_FLAGS               e.g. "-force" to rebuild the database
set -euo pipefail
cd "$(dirname "$0")/.."
server="${OMSERVER_BENCH_MYSQL_DSN:-root@tcp(127.0.0.1:3306)/}"
db="${OMSERVER_BENCH_DB:-omserver_bench}"
n="${PAGEBENCH_N:-50}"
dsn="${server%/}/${db}"

go build -o bin/omserver ./cmd/omserver
gen=(go run ./scripts/gendb -dsn "$server" -db "$db" ${GENDB_FLAGS:-})
bench=(go run ./scripts/pagebench -omserver bin/omserver -dsn "$dsn" -n "$n")
echo "running: ${gen[*]}" >&2
"${gen[@]}" >&2
echo "running: ${bench[*]}" >&2
"${bench[@]}" -cmdline "$(printf '%s\n%s' "${gen[*]}" "${bench[*]}")"
echo "wrote the pages section of docs/BENCHMARKS.md" >&2
