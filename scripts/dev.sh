#!/usr/bin/env bash
# `make dev`: two demo upstreams on loopback that speak the real wire formats (LightRAG
# server, Perplexity API), then the router under workerd (`wrangler dev`) with local KV and its
# vars pointed at them. Ctrl-C stops everything: the trap kills the upstreams, wrangler takes
# workerd down with it.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${DEV_PORT:-8787}"
LR_PORT="${DEV_LIGHTRAG_PORT:-9621}"
PX_PORT="${DEV_PERPLEXITY_PORT:-9622}"
ROLLOUT="${DEV_ROLLOUT_PERCENTAGE:-25}"

# Local secrets for the demo (real ones come from `wrangler secret put`). Kept if present.
if [ ! -f .dev.vars ]; then
  cat > .dev.vars <<VARS
ADMIN_TOKEN=dev-admin-token
PERPLEXITY_API=demo-perplexity-key
LIGHTRAG_API_KEY=demo-lightrag-key
VARS
fi
admin_token=$(grep '^ADMIN_TOKEN=' .dev.vars | cut -d= -f2-)
px_key=$(grep '^PERPLEXITY_API=' .dev.vars | cut -d= -f2-)
lr_key=$(grep '^LIGHTRAG_API_KEY=' .dev.vars | cut -d= -f2-)

pids=()
cleanup() {
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

node tests/mock/upstreams.mjs --lightrag-port "$LR_PORT" --perplexity-port "$PX_PORT" \
  --lightrag-key "$lr_key" --perplexity-key "$px_key" &
pids+=($!)
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PX_PORT") 2>/dev/null && break; sleep 0.1
done

cat <<MSG

  Demo upstreams: LightRAG http://127.0.0.1:$LR_PORT   Perplexity http://127.0.0.1:$PX_PORT
  Router (starting):  http://127.0.0.1:$PORT   — rollout $ROLLOUT %, admin token in .dev.vars
  ROUTER_ENV=development: no client token needed; cohort/position headers need the admin token

  Try:
    curl -s http://127.0.0.1:$PORT/healthz
    curl -s http://127.0.0.1:$PORT/v1/chat/completions -H 'content-type: application/json' \\
      -d '{"user":"user-42","messages":[{"role":"user","content":"How does the TCA cycle affect lactate?"}]}'
    curl -s http://127.0.0.1:$PORT/query -H 'content-type: application/json' \\
      -d '{"query_text":"What is trimethylamine N-oxide?","user_id":"user-7"}'
    curl -s http://127.0.0.1:$PORT/admin/status -H "authorization: Bearer $admin_token"
  Browser: http://127.0.0.1:$PORT/preview/   (routing preview, wasm in the page)

MSG

# ROUTER_ENV=development: the loopback http upstreams may receive the demo keys, and the
# client token is optional (add ROUTER_CLIENT_TOKEN=... to .dev.vars to try it; clients then
# send `Authorization: Bearer <it>`). Deployed environments never set it.
WORKER_OPT=0 npx wrangler dev --port "$PORT" --ip 127.0.0.1 \
  --var "ROUTER_ENV:development" \
  --var "LIGHTRAG_BASE_URL:http://127.0.0.1:$LR_PORT" \
  --var "PERPLEXITY_BASE_URL:http://127.0.0.1:$PX_PORT" \
  --var "LIGHTRAG_INTEGRATION_ENABLED:true" \
  --var "LIGHTRAG_ROLLOUT_PERCENTAGE:$ROLLOUT" &
pids+=($!)
wait "${pids[1]}"
