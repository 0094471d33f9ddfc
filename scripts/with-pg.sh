#!/usr/bin/env bash
# Runs a command with DATABASE_URL pointing at a throwaway PostgreSQL that is stopped afterwards.
# If DATABASE_URL is already set, runs the command as it is.
#
#   scripts/with-pg.sh DIR PORT MODE -- command ...
set -euo pipefail
dir=$1; port=$2; mode=$3; shift 3
[ "${1:-}" = "--" ] && shift
if [ -n "${DATABASE_URL:-}" ]; then
  exec "$@"
fi
here=$(cd "$(dirname "$0")" && pwd)
"$here/pg.sh" start "$dir" "$port" "$mode"
trap '"$here/pg.sh" stop "$dir"' EXIT
export DATABASE_URL
DATABASE_URL=$("$here/pg.sh" url "$port")
"$@"
