#!/usr/bin/env bash
# `make run`: start a runner in the foreground on DATABASE_URL, then (in the background, once it
# answers) create a dev tenant, upload the example jobs and print the commands to try.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${DATABASE_URL:?DATABASE_URL must be set (make run sets it)}"
export SANDFIRE_LISTEN=${SANDFIRE_LISTEN:-127.0.0.1:8080}
URL="http://$SANDFIRE_LISTEN"
BIN=target/release/sandfire
KEY_FILE=target/dev/api-key
mkdir -p target/dev
# The runner refuses admin tokens shorter than 32 bytes: make a random one once and keep it.
if [ -z "${SANDFIRE_ADMIN_TOKEN:-}" ]; then
  [ -s target/dev/admin-token ] || od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > target/dev/admin-token
  SANDFIRE_ADMIN_TOKEN=$(cat target/dev/admin-token)
fi
export SANDFIRE_ADMIN_TOKEN
# Config values are encrypted at rest: without a key the runner serves no /v1/config. For
# development, make a random one once and keep it (never use this file in production).
if [ -z "${SANDFIRE_SECRETS_KEY:-}" ] && [ -z "${SANDFIRE_SECRETS_KEYS:-}" ]; then
  [ -s target/dev/secrets-key ] || head -c 32 /dev/urandom | base64 > target/dev/secrets-key
  SANDFIRE_SECRETS_KEY=$(cat target/dev/secrets-key)
  export SANDFIRE_SECRETS_KEY
  echo "WARNING: using the development secrets key in target/dev/secrets-key (for development only;" >&2
  echo "         set SANDFIRE_SECRETS_KEY to your own key, e.g. \$(openssl rand -base64 32), in production)" >&2
fi

setup() {
  for _ in $(seq 1 300); do
    curl -fsS "$URL/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  local key=""
  if [ -f "$KEY_FILE" ] && curl -fsS -H "Authorization: Bearer $(cat "$KEY_FILE")" "$URL/v1/jobs" >/dev/null 2>&1; then
    key=$(cat "$KEY_FILE")
  else
    key=$(curl -fsS -X POST "$URL/v1/tenants" -H "Authorization: Bearer $SANDFIRE_ADMIN_TOKEN" \
            -H 'Content-Type: application/json' -d '{"name": "dev"}' 2>/dev/null \
          || curl -fsS -X POST "$URL/v1/tenants/dev/keys" -H "Authorization: Bearer $SANDFIRE_ADMIN_TOKEN")
    key=$(printf '%s' "$key" | sed -E 's/.*"api_key":"([^"]+)".*/\1/')
    printf '%s' "$key" > "$KEY_FILE"
  fi
  for job in hello flaky spin hog panic sleep report noop snooze ticker; do
    curl -fsS -X PUT "$URL/v1/jobs/$job" -H "Authorization: Bearer $key" \
      --data-binary "@target/wasm32-wasip2/wasm/$job.wasm" >/dev/null \
      || echo "uploading $job failed" >&2
  done
  cat <<MSG

================================================================================
 Sandfire is running on $URL with the example jobs uploaded for tenant "dev".

 Dashboard: $URL/ui   (sign in with the key below, or the admin token for every tenant)
   login key:   $key
   admin token: in target/dev/admin-token (or your SANDFIRE_ADMIN_TOKEN)
 Watch a live log: start a ticker run, then open it under Runs:
   curl -s -X POST \$SANDFIRE_URL/v1/jobs/ticker/runs -H "Authorization: Bearer \$SANDFIRE_API_KEY" \\
        -H 'Content-Type: application/json' -d '{"input": {"ticks": 40, "interval_ms": 300}}'

   export SANDFIRE_URL=$URL
   export SANDFIRE_API_KEY=$key
   export SANDFIRE_ADMIN_TOKEN=\$(cat target/dev/admin-token)   # admin routes

 Trigger hello and read the run and its logs (curl):
   curl -s -X POST \$SANDFIRE_URL/v1/jobs/hello/runs -H "Authorization: Bearer \$SANDFIRE_API_KEY" \\
        -H 'Content-Type: application/json' -d '{"input": {"name": "Ada"}}'
   curl -s \$SANDFIRE_URL/v1/runs/<id> -H "Authorization: Bearer \$SANDFIRE_API_KEY"
   curl -s \$SANDFIRE_URL/v1/runs/<id>/logs -H "Authorization: Bearer \$SANDFIRE_API_KEY"

 Or with the CLI:
   $BIN run start hello --input '{"name": "Ada"}'
   $BIN run start flaky --input '{"succeed_on_attempt": 3}' --options '{"backoff_base_ms": 200}'
   $BIN run get <id>
   $BIN run logs <id>
 Stop with Ctrl-C.
================================================================================
MSG
}

setup &
exec "$BIN" serve
