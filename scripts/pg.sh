#!/usr/bin/env bash
# A throwaway PostgreSQL cluster from the system's binaries, for `make run`, `make test` and
# `make bench`. Never touches a system cluster.
#
#   scripts/pg.sh start DIR PORT [MODE]   initdb if needed, start, wait until ready
#                                         (MODE: durable (default), fast, crashsafe)
#   scripts/pg.sh stop DIR                stop (fast shutdown)
#   scripts/pg.sh crash DIR               stop the way a crash would (immediate shutdown: no
#                                         checkpoint; the next start runs crash recovery)
#   scripts/pg.sh url PORT                print the DATABASE_URL
#   scripts/pg.sh clean ROOT              stop every cluster found under ROOT, then delete it
#
# `fast` turns off durability (fsync, synchronous_commit): for tests only, never for benchmarks
# that claim durable figures. `crashsafe` turns off fsync only: a commit still reaches the
# kernel before it is acknowledged, so it survives a crash of PostgreSQL (not of the machine);
# the chaos test uses it. initdb refuses to run as root, so as root the cluster runs as the
# `postgres` user.
set -euo pipefail

cmd=${1:?usage: pg.sh start DIR PORT [fast|crashsafe] | stop DIR | crash DIR | url PORT}

find_bin() {
  local dir
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
    pg_config --bindir; return
  fi
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$dir/initdb" ] && { echo "$dir"; return; }
  done
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ -z "${SANDFIRE_NO_INSTALL:-}" ]; then
    echo "PostgreSQL server binaries not found: installing Debian's postgresql package" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
      [ -x "$dir/initdb" ] && { echo "$dir"; return; }
    done
  fi
  echo "PostgreSQL server binaries not found: install them (Debian: apt-get install postgresql)" >&2
  exit 1
}

as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

case "$cmd" in
  start)
    dir=$(realpath -m "${2:?DIR}"); port=${3:?PORT}; mode=${4:-durable}
    bin=$(find_bin)
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
      id postgres >/dev/null 2>&1 || useradd --system --home-dir "$dir" postgres
      chown postgres: "$dir"
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    if as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
      echo "PostgreSQL already running in $dir" >&2
      exit 0
    fi
    opts="-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=400"
    opts="$opts -c shared_buffers=256MB"
    # pg_stat_statements when this PostgreSQL ships it: loaded, tracking nothing. A bench that
    # wants the time its statements took turns tracking on for its own database only (the
    # dashboard part of runner/benches/scale.rs), so no other figure pays for it.
    pkglib=$("$bin/pg_config" --pkglibdir 2>/dev/null || echo "$bin/../lib")
    if [ -f "$pkglib/pg_stat_statements.so" ]; then
      opts="$opts -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=none"
    fi
    if [ "$mode" = fast ]; then
      opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    elif [ "$mode" = crashsafe ]; then
      opts="$opts -c fsync=off -c full_page_writes=off"
    fi
    # A port still held for a moment by a process that is ending (a browser's, a client's)
    # fails the start: try three times, a second apart.
    for try in 1 2 3; do
      as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -o "$opts" -w -t 60 start \
        >/dev/null && break
      if [ "$try" = 3 ] || ! tail -5 "$dir/postgres.log" | grep -q "Address already in use"; then
        tail -20 "$dir/postgres.log" >&2
        exit 1
      fi
      echo "port $port busy; retrying in 1 s" >&2
      sleep 1
    done
    ;;
  stop)
    dir=$(realpath -m "${2:?DIR}")
    bin=$(find_bin)
    if [ -f "$dir/data/postmaster.pid" ]; then
      as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    fi
    ;;
  crash)
    dir=$(realpath -m "${2:?DIR}")
    bin=$(find_bin)
    if [ -f "$dir/data/postmaster.pid" ]; then
      as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null || true
    fi
    ;;
  clean)
    # Every cluster under ROOT (make run/test/bench, the chaos and cluster benches, dev ones):
    # stop each, and delete it only once it has stopped, so no server is left running on
    # deleted files.
    root=$(realpath -m "${2:?ROOT}")
    bin=$(find_bin)
    for pgdata in $(find "$root" -maxdepth 4 -name PG_VERSION -path '*/data/PG_VERSION' 2>/dev/null | xargs -r -n1 dirname); do
      dir=$(dirname "$pgdata")
      if [ -f "$pgdata/postmaster.pid" ]; then
        as_owner "$bin/pg_ctl" -D "$pgdata" -m fast -w -t 60 stop >/dev/null \
          || as_owner "$bin/pg_ctl" -D "$pgdata" -m immediate -w stop >/dev/null || true
      fi
      if [ -f "$pgdata/postmaster.pid" ] && as_owner "$bin/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
        echo "PostgreSQL in $dir is still running: not deleting it" >&2
        continue
      fi
      rm -rf "$dir"
      echo "deleted $dir"
    done
    ;;
  url)
    echo "postgres://postgres@127.0.0.1:${2:?PORT}/postgres"
    ;;
  *)
    echo "unknown command $cmd" >&2; exit 2 ;;
esac
