// The soak's two profiles (issue 8, Prove 1): `full` (`make soak`) and `short` (in `make test`).
// Both run the same phases in the same order — healthy traffic, then each LightRAG fault
// followed by a recovery phase that lasts until the breaker has closed again, then LightRAG
// streaming slowly but healthily, then Perplexity failing, then healthy traffic — and differ
// only in sizes and pacing.
//
// A phase: `lightrag` / `perplexity` are mock behaviours (tests/mock/upstreams.mjs; null is
// healthy); `requests` is the least number issued; `until` keeps it going until a breaker
// event (`lightrag-open`, `lightrag-closed`, `perplexity-open`, `perplexity-closed`) or
// `deadlineMs`, and `minMs` for at least that long; `slowStreams` dedicates that many clients to one LightRAG stream each while the
// others send background traffic paced by `backgroundPaceMs`. `expect` says what the phase must
// show: `opens` (the breaker named trips), `closes`, `staysClosed`, `perplexityDown` (5xx
// allowed for Perplexity's cohort only).

/** The router's settings for the soak (added to wrangler.toml's [vars]). */
function routerVars(p) {
  return {
    LIGHTRAG_ROLLOUT_PERCENTAGE: "50",
    // Primary waits ≤ 3 s for its first byte, the fallback gets the other 3 s (≥ the 2 s a
    // fallback needs: core::fallback min_budget_ms).
    LIGHTRAG_INTEGRATION_TIMEOUT_SECONDS: "6",
    LIGHTRAG_CIRCUIT_BREAKER_SLOW_CALL_MS: "800",
    LIGHTRAG_CIRCUIT_BREAKER_RECOVERY_TIMEOUT: p.recoveryS,
    LIGHTRAG_CIRCUIT_BREAKER_MAX_RECOVERY_TIMEOUT: p.maxRecoveryS,
    LIGHTRAG_CIRCUIT_BREAKER_JITTER: "0",
    LIGHTRAG_CIRCUIT_BREAKER_HALF_OPEN_PROBE_SHARE: p.probeShare,
    LIGHTRAG_ENABLE_QUALITY_METRICS: "true",
    STATE_REFRESH_SECONDS: "1",
    METRICS_FLUSH_SECONDS: "10",
  };
}

const MALFORMED = { status: 200, body: '{"response": "Glucose is converted to', contentType: "application/json" };

function phases(p) {
  const fault = (name, lightrag) => [
    // At least `faultMs`, so that half-open probes meet the fault too (and reopen it).
    { name: `lightrag ${name}`, lightrag, requests: p.faultRequests, minMs: p.faultMs, until: "lightrag-open", expect: { opens: "lightrag" } },
    { name: `recovery after ${name}`, requests: p.recoveryRequests, until: "lightrag-closed", expect: { closes: "lightrag" } },
  ];
  return [
    { name: "healthy", requests: p.healthyRequests, expect: { staysClosed: "lightrag" } },
    ...fault("500", { status: 500 }),
    ...fault("429", { status: 429, headers: { "retry-after": "2" } }),
    // Past the primary's 3 s first-byte budget; the router aborts it and falls back.
    ...fault("hang", { delayMs: 8000 }),
    ...fault("reset", { reset: true }),
    // Answers, but the first byte comes after the 800 ms slow-call limit: slow calls.
    ...fault("slow first byte", { ttfbDelayMs: 1500 }),
    // Streams cut after the references line and two text lines (JSON bodies cut half-way).
    ...fault("stream cut", { cutAfterChunks: 3 }),
    ...fault("malformed JSON", MALFORMED),
    {
      name: `lightrag slow healthy streams (${p.slowStreamS} s)`,
      // The references line and the first text at once, then the rest spread over the time.
      lightrag: { chunks: 20, fastChunks: 2, streamForMs: p.slowStreamS * 1000 },
      requests: p.slowBackground,
      slowStreams: p.slowStreams,
      backgroundPaceMs: p.slowBackgroundPaceMs,
      expect: { staysClosed: "lightrag", slowStreamMs: p.slowStreamS * 1000 },
    },
    {
      name: "perplexity 500",
      perplexity: { status: 500 },
      requests: p.faultRequests,
      until: "perplexity-open",
      expect: { opens: "perplexity", perplexityDown: true },
    },
    { name: "recovery after perplexity 500", requests: p.recoveryRequests, until: "perplexity-closed", expect: { closes: "perplexity" } },
    { name: "healthy (end)", requests: p.healthyRequests, expect: { staysClosed: "lightrag" } },
  ];
}

function profile(name, p) {
  return { name, ...p, vars: routerVars(p), phases: phases(p) };
}

export const PROFILES = {
  // `make soak`: ≥ 5,000 requests, unpaced at concurrency 20, a 60 s slow stream.
  full: profile("full", {
    concurrency: 20,
    paceMs: 0,
    users: 6000,
    recoveryS: "2",
    maxRecoveryS: "4",
    probeShare: "0.1",
    healthyRequests: 600,
    faultRequests: 400,
    faultMs: 8000,
    recoveryRequests: 300,
    slowStreamS: 60,
    slowStreams: 8,
    slowBackground: 600,
    slowBackgroundPaceMs: 1000,
    deadlineMs: 120_000,
  }),
  // `make test`: the same phases compressed (~1,000 requests, ~45 s; well under 90 s).
  short: profile("short", {
    concurrency: 20,
    paceMs: 400,
    users: 2000,
    recoveryS: "1",
    maxRecoveryS: "1",
    probeShare: "0.5",
    healthyRequests: 60,
    faultRequests: 40,
    faultMs: 1500,
    recoveryRequests: 30,
    slowStreamS: 8,
    slowStreams: 6,
    slowBackground: 40,
    slowBackgroundPaceMs: 1500,
    deadlineMs: 60_000,
  }),
};
