#!/usr/bin/env bash
# `make fuzz`: a property-based fuzz run of the HTTP API with schemathesis, against a live runner
# on DATABASE_URL (make fuzz starts a throwaway database). It starts `sandfire serve` on a free
# port, creates a tenant, uploads the `hello` example, then lets schemathesis derive requests
# from GET /v1/openapi.json: once with the tenant's key (every tenant route) and once with the
# admin token (the admin routes). It fails on any 5xx and on any response that breaks the
# document (status, content type, body schema).
#
#   scripts/fuzz.sh SCHEMATHESIS BINARY
# Knobs: FUZZ_MAX_EXAMPLES (per operation, default 100), FUZZ_SEED, FUZZ_WORKERS (default 1: CPython 3.11 can fail parsing in hypothesis with several),
# FUZZ_KEEP=1 keeps the runner's log (target/fuzz/runner.log is printed on failure anyway).
set -euo pipefail
cd "$(dirname "$0")/.."

st=$(realpath "$1")
bin=$(realpath "$2")
: "${DATABASE_URL:?DATABASE_URL must be set (make fuzz sets it)}"
max_examples=${FUZZ_MAX_EXAMPLES:-100}
workers=${FUZZ_WORKERS:-1}
seed_args=()
[ -n "${FUZZ_SEED:-}" ] && seed_args=(--seed "$FUZZ_SEED")
out=target/fuzz
mkdir -p "$out"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
SANDFIRE_ADMIN_TOKEN=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
SANDFIRE_SECRETS_KEY=$(head -c 32 /dev/urandom | base64)
export SANDFIRE_ADMIN_TOKEN SANDFIRE_SECRETS_KEY
export SANDFIRE_LISTEN="127.0.0.1:$port"

"$bin" serve >"$out/runner.log" 2>&1 &
runner=$!
stop() {
  kill "$runner" 2>/dev/null || true
  wait "$runner" 2>/dev/null || true
}
trap stop EXIT

for _ in $(seq 1 600); do
  curl -fsS "$url/healthz" >/dev/null 2>&1 && break
  kill -0 "$runner" 2>/dev/null || { cat "$out/runner.log" >&2; echo "the runner did not start" >&2; exit 1; }
  sleep 0.1
done
curl -fsS "$url/healthz" >/dev/null

admin=(-H "Authorization: Bearer $SANDFIRE_ADMIN_TOKEN")
# A fresh tenant name, so a run on a database that saw an earlier one starts clean too.
name="fuzz-$(od -An -tx1 -N4 /dev/urandom | tr -d ' \n')"
created=$(curl -fsS -X POST "$url/v1/tenants" "${admin[@]}" -H 'Content-Type: application/json' \
  -d "{\"name\": \"$name\"}")
key=$(printf '%s' "$created" | python3 -c 'import json, sys; print(json.load(sys.stdin)["api_key"])')
tenant=(-H "Authorization: Bearer $key")
curl -fsS -X PUT "$url/v1/jobs/hello" "${tenant[@]}" \
  --data-binary @target/wasm32-wasip2/wasm/hello.wasm >/dev/null
curl -fsS "$url/v1/openapi.json" -o "$out/openapi.json"

common=(
  "$url/v1/openapi.json" --url "$url"
  --checks "${FUZZ_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,negative_data_rejection}"
  --phases examples,coverage,fuzzing
  --max-examples "$max_examples" --workers "$workers" --request-timeout 30
  --suppress-health-check all --no-shrink
  "${seed_args[@]}"
)
status=0
# schemathesis keeps its cache in the working directory: keep it under target/.
cd "$out"
out=.
echo "== fuzz: tenant routes (tenant key) =="
"$st" run "${common[@]}" --exclude-tag admin -H "Authorization: Bearer $key" \
  --report junit --report-junit-path "$out/tenant.xml" || status=1
echo "== fuzz: admin routes (admin token) =="
"$st" run "${common[@]}" --include-tag admin -H "Authorization: Bearer $SANDFIRE_ADMIN_TOKEN" \
  --report junit --report-junit-path "$out/admin.xml" || status=1
if [ "$status" != 0 ] || grep -q 'panicked' "$out/runner.log"; then
  echo "fuzz run failed; the runner's log is target/fuzz/runner.log" >&2
  grep -E 'panicked|ERROR' "$out/runner.log" | head -20 >&2 || true
  exit 1
fi
echo "fuzz run passed"
