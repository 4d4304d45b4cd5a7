#!/usr/bin/env bash
# The profile of issue 15 (docs/performance.md): `minqing serve --workers 2 --projections external`
# on PostgreSQL in production mode, wrk (2 threads, 16 connections, 15 s) on POST /cases, then on
# POST /cases/{id}/classify, with `py-spy record --gil` on both workers; prints the requests, the
# transactions PostgreSQL committed, and the share of the workers' CPU by stage of the request.
#
#   bash bench/profile_write_path.sh [VENV] [TAG]      # needs wrk and py-spy (pip install py-spy)
set -u
V=$(cd "${1:-.venv}" && pwd)
TAG=${2:-profile}
HERE=$(cd "$(dirname "$0")" && pwd)
LUA=${LUA:-/work/shared/bench}  # the scripts of ../shared/bench/side_by_side.sh
OUT=$(mktemp -d)
DB=bench_profile
psql_() { psql -h 127.0.0.1 -U postgres -qAt "$@"; }
commits() { psql_ -c "select xact_commit from pg_stat_database where datname='$DB'"; }
psql_ -c "drop database if exists $DB" -c "create database $DB" 2>/dev/null
export MINQING_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/$DB
export MINQING_JWT_SECRET=profile-secret-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
export MINQING_MASTER_KEY=$("$V/bin/minqing" keys new | tail -1)
export MINQING_RATE_LIMIT_PER_MINUTE=100000000
(cd "$OUT" && exec "$V/bin/minqing" serve --host 127.0.0.1 --port 9131 --workers 2 --projections external \
  > "$OUT/serve.log" 2>&1) &
SERVER=$!
for _ in $(seq 1 400); do curl -sf http://127.0.0.1:9131/healthz >/dev/null && break; sleep 0.3; done
WORKERS=$(for p in $(pgrep -P "$SERVER"); do grep -qa spawn_main /proc/$p/cmdline && echo $p; done)
echo "workers: $WORKERS"
export TOKEN=$("$V/bin/minqing" token issue --role intake_clerk --sub CL001 | tail -1)
wrk -t2 -c4 -d2s -s "$LUA/register.lua" http://127.0.0.1:9131/cases >/dev/null
phase() {  # name lua url
  local c0 spies=""; c0=$(commits)
  for w in $WORKERS; do
    "$V/bin/py-spy" record -p "$w" -d 14 -r 250 --gil -f raw -o "$OUT/$1-$w.txt" >/dev/null 2>&1 &
    spies="$spies $!"
  done
  sleep 0.3
  echo "$1: $(wrk -t2 -c16 -d15s -s "$LUA/$2" "$3" | grep RESULT), transactions $(( $(commits) - c0 ))"
  wait $spies
  cat "$OUT/$1"-*.txt > "$TAG-$1.txt"
  "$V/bin/python" "$HERE/profile_categories.py" "$TAG-$1.txt"
}
phase register register.lua http://127.0.0.1:9131/cases
psql_ -d $DB -c "select originator_id from cases_events where originator_version=1 and topic like '%Registered%'" > "$OUT/ids"
IDS=$OUT/ids phase classify classify.lua http://127.0.0.1:9131
kill $SERVER; wait $SERVER 2>/dev/null
rm -rf "$OUT"
