// The soak (issue 8, Prove 1): the release router in workerd (Miniflare 4, as in the workerd
// tests), mock upstreams with switchable faults, and 20 concurrent clients sending a mix of
// JSON and SSE chat completions and seed `/query` calls for thousands of distinct users in both
// cohorts, through phases of faults (profiles.mjs). Then it checks, from three independent
// sides — what the clients got (statuses, headers, bodies), what the mock upstreams saw (their
// request logs), and what the router said (its log lines, captured, and its status document) —
// that:
// - every request was answered, every status is accounted for, and no client saw a 5xx while
//   Perplexity was healthy;
// - fallbacks = LightRAG failures before the first byte (client headers = mock log = router
//   log = the router's fallback counter, and the same request ids on both router sides);
// - the LightRAG breaker opened within its window under each real fault, stayed closed under
//   slow-but-healthy streams, and closed again after each fault stopped;
// - cut streams were marked (`stream_truncated` event, truncated counter);
// - no KV key was written more than once a second (seen by a spy wrapped around the KV
//   binding, and by the router's own counters).
// It returns the checks and a report table; run.mjs prints them, soak.test.mjs asserts them.
import os from "node:os";
import { performance } from "node:perf_hooks";
import { startCapturedStack, parseTransition } from "../node/capture.mjs";
import { positionHundredths, sseData } from "../node/common.mjs";
import { PROFILES } from "./profiles.mjs";

const SALT = "soak-salt-6d1f";
const ADMIN = "soak-admin-token";
const CLIENT = "soak-client-token";
const KEYS = { lightrag: "soak-lightrag-key-Hq2", perplexity: "soak-perplexity-key-Zm8" };
/** Every soak user id starts with this. */
const USER_PREFIX = "soak-user-";
const QUERIES = [
  "How is glucose connected to lactate in clinical metabolomics?",
  "What is the role of glutathione in oxidative stress?",
  "Which metabolites change in type 2 diabetes?",
  "Explain the TCA cycle and its link to pyruvate.",
  "What does mass spectrometry measure in a metabolomics study?",
  "How do ketone bodies relate to fasting metabolism?",
];
/** One request may take at most this long before it counts as unanswered. */
const CLIENT_TIMEOUT_MS = 150_000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** mulberry32: a seeded PRNG, so a run can be repeated (SOAK_SEED). */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function quantile(xs, q) {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

/** A LightRAG request the router could not use before the first byte reached the client. */
export function lightragFailedBeforeFirstByte(e) {
  const b = e.behaviour ?? {};
  const stream = e.path.startsWith("/query/stream");
  if (b.echo || b.reset || b.body !== undefined) return true;
  if (b.status && b.status !== 200) return true;
  // A stream's first line is the references; answer text starts with the second.
  if (b.cutAfterChunks !== undefined) return !stream || e.chunksSent < 2;
  // The router gave up waiting (a hang, or a first byte past its budget).
  return e.closedEarly && e.chunksSent === 0;
}

/** A LightRAG stream cut by the mock after answer text had been sent. */
function lightragCutAfterText(e) {
  return e.path.startsWith("/query/stream") && e.behaviour?.cutAfterChunks !== undefined && e.chunksSent >= 2 && !e.closedEarly;
}

class Soak {
  constructor(profile, seed) {
    this.p = profile;
    this.seed = seed;
    this.random = rng(seed);
    this.results = [];
    this.phaseLog = [];
    // Users in both cohorts at the rollout percentage, by the frozen cohort formula.
    const pct = Number(profile.vars.LIGHTRAG_ROLLOUT_PERCENTAGE);
    this.users = Array.from({ length: profile.users }, (_, i) => {
      const id = `${USER_PREFIX}${i}`;
      return { id, cohort: positionHundredths(SALT, id) < pct * 100 ? "lightrag" : "perplexity" };
    });
    this.lightragUsers = this.users.filter((u) => u.cohort === "lightrag");
  }

  pick(list) {
    return list[Math.floor(this.random() * list.length)];
  }

  /** One request of the mix: 70 % chat (half of them streamed), 30 % seed /query. */
  makeRequest({ slowStream = false, noLightragStreams = false } = {}) {
    const query = this.pick(QUERIES);
    if (slowStream) {
      const u = this.pick(this.lightragUsers);
      return { route: "chat", stream: true, user: u, body: { model: "sonar", messages: [{ role: "user", content: query }], user: u.id, stream: true } };
    }
    const u = this.pick(this.users);
    if (this.random() < 0.7) {
      let stream = this.random() < 0.5;
      if (stream && noLightragStreams && u.cohort === "lightrag") stream = false;
      return { route: "chat", stream, user: u, body: { model: "sonar", messages: [{ role: "user", content: query }], user: u.id, stream } };
    }
    // The seed's shape: a user id, or only a session id (the stickiness key either way).
    const ident = this.random() < 0.75 ? { user_id: u.id } : { session_id: u.id };
    return { route: "query", stream: false, user: u, body: { query_text: query, ...ident } };
  }

  async send(req, phase) {
    const path = req.route === "chat" ? "/v1/chat/completions" : "/query";
    const rec = {
      phase: phase.index,
      route: req.route,
      stream: req.stream,
      cohort: req.user.cohort,
      status: null,
      error: null,
    };
    const t0 = performance.now();
    try {
      const r = await fetch(new URL(path, this.url), {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${CLIENT}` },
        body: JSON.stringify(req.body),
        signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS),
      });
      rec.headersMs = performance.now() - t0;
      rec.status = r.status;
      rec.upstream = r.headers.get("x-route-upstream");
      rec.reason = r.headers.get("x-route-reason");
      rec.fallback = r.headers.get("x-route-fallback");
      rec.requestId = r.headers.get("x-request-id");
      const text = await r.text();
      rec.totalMs = performance.now() - t0;
      rec.bodyProblem = checkBody(req, r, text, rec);
    } catch (e) {
      rec.error = `${e.name}: ${e.message}`;
      rec.totalMs = performance.now() - t0;
    }
    this.results.push(rec);
    return rec;
  }

  async status() {
    const r = await fetch(new URL("/admin/status", this.url), { headers: { authorization: `Bearer ${ADMIN}` } });
    return r.json();
  }

  transitions() {
    return this.s.w.workerLogs().map(parseTransition).filter(Boolean);
  }

  /** Whether a phase's `until` event happened since `since` (epoch ms). */
  async reached(until, since) {
    const [upstream, what] = until.split("-");
    if (what === "open") return this.transitions().some((t) => t.upstream === upstream && t.to === "open" && t.timestamp >= since);
    const st = await this.status();
    return st.service_performance.circuit_breakers[upstream].state === "closed";
  }

  async runPhase(phase) {
    const { up } = this.s;
    up.setBehaviour("lightrag", phase.lightrag ?? null);
    up.setBehaviour("perplexity", phase.perplexity ?? null);
    const ctl = { issued: 0, stop: false };
    const start = Date.now();
    const mockStart = { lightrag: up.requests("lightrag").length, perplexity: up.requests("perplexity").length };
    const worker = async (w) => {
      if (phase.slowStreams && w < phase.slowStreams) {
        ctl.issued++;
        await this.send(this.makeRequest({ slowStream: true }), phase);
        return;
      }
      const background = Boolean(phase.slowStreams);
      const limit = phase.requests + (phase.slowStreams ?? 0);
      while (!ctl.stop && (phase.until || ctl.issued < limit)) {
        ctl.issued++;
        await this.send(this.makeRequest({ noLightragStreams: background }), phase);
        const pace = background ? phase.backgroundPaceMs : this.p.paceMs;
        if (pace) await sleep(pace * (0.5 + this.random()));
      }
    };
    const workers = Array.from({ length: this.p.concurrency }, (_, w) => worker(w));
    let timedOut = false;
    if (phase.until) {
      for (;;) {
        const long = Date.now() - start >= (phase.minMs ?? 0);
        if (ctl.issued >= phase.requests && long && (await this.reached(phase.until, start))) break;
        if (Date.now() - start > this.p.deadlineMs) {
          timedOut = true;
          break;
        }
        await sleep(100);
      }
      ctl.stop = true;
    }
    await Promise.all(workers);
    const end = Date.now();
    this.phaseLog.push({
      ...phase,
      start,
      end,
      timedOut,
      mockRange: {
        lightrag: [mockStart.lightrag, up.requests("lightrag").length],
        perplexity: [mockStart.perplexity, up.requests("perplexity").length],
      },
    });
  }

  async run() {
    const loadStart = os.loadavg();
    this.s = await startCapturedStack({
      lightragKey: KEYS.lightrag,
      perplexityKey: KEYS.perplexity,
      vars: {
        ...this.p.vars,
        LIGHTRAG_USER_HASH_SALT: SALT,
        ADMIN_TOKEN: ADMIN,
        ROUTER_CLIENT_TOKEN: CLIENT,
      },
      // Per stickiness key; far above what one soak user sends, so it never refuses.
      ratelimits: { ROUTER_RATE_LIMIT: { simple: { limit: 1000, period: 60 } } },
    });
    this.url = this.s.w.url;
    const t0 = Date.now();
    try {
      for (const [index, phase] of this.p.phases.entries()) await this.runPhase({ ...phase, index });
      // Let the isolate flush its metrics once more, then read everything. The status and the
      // spy on the binding are compared at one moment: a background write (a deferred flush)
      // may start between two reads, so read both until they agree, within a deadline (a
      // router that miscounts never agrees, and the check below reports the last pair).
      const deadline = Date.now() + 10_000;
      for (;;) {
        this.finalStatus = await this.status();
        this.kvEventsAtStatus = this.s.w.kvEvents();
        if (countsAgree(this.finalStatus.kv.ops, this.kvEventsAtStatus) || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      this.kvDump = await this.s.w.dumpKv();
    } finally {
      this.durationMs = Date.now() - t0;
      this.lightragLog = this.s.up.requests("lightrag");
      this.perplexityLog = this.s.up.requests("perplexity");
      this.logs = this.s.w.workerLogs();
      this.kvEvents = this.s.w.kvEvents();
      await this.s.close();
    }
    this.load = { start: loadStart, end: os.loadavg() };
    return analyse(this);
  }
}

/** What is wrong with an answer's body, if anything (null when it is what its status says). */
function checkBody(req, r, text, rec) {
  if (!rec.requestId || !/^[0-9a-f]{32}$/.test(rec.requestId)) return "no X-Request-Id";
  if (r.status !== 200) {
    try {
      const e = JSON.parse(text).error;
      const msg = typeof e === "string" ? e : e?.message;
      return msg && msg.includes(rec.requestId) ? null : `error body without the request id: ${text.slice(0, 200)}`;
    } catch {
      return `error body is not JSON: ${text.slice(0, 200)}`;
    }
  }
  if (req.stream) {
    const frames = sseData(text);
    if (frames.at(-1) !== "[DONE]") return `stream without [DONE]: …${text.slice(-200)}`;
    rec.truncated = frames.some((f) => f !== "[DONE]" && JSON.parse(f).error?.code === "stream_truncated");
    const content = frames.slice(0, -1).map((f) => JSON.parse(f).choices?.[0]?.delta?.content ?? "").join("");
    return content.length ? null : "stream without answer text";
  }
  try {
    const b = JSON.parse(text);
    const content = req.route === "chat" ? b.choices?.[0]?.message?.content : b.success ? b.content : null;
    return content ? null : `answer without content: ${text.slice(0, 200)}`;
  } catch {
    return `answer is not JSON: ${text.slice(0, 200)}`;
  }
}

/** The spy's operation totals. */
function spyCounts(events) {
  return { reads: events.filter((e) => e.op === "get").length, writes: events.filter((e) => e.op === "put").length, lists: events.filter((e) => e.op === "list").length };
}

/** The spy's writes per key. */
function spyWritesByKey(events) {
  const n = {};
  for (const e of events) if (e.op === "put") n[e.key] = (n[e.key] ?? 0) + 1;
  return n;
}

/** Whether the router's KV counters (status `kv.ops`) equal the spy's. */
function countsAgree(ops, events) {
  const t = spyCounts(events);
  const byKey = Object.entries(spyWritesByKey(events));
  return ops.reads === t.reads && ops.writes === t.writes && ops.lists === t.lists && byKey.every(([k, n]) => (ops.writes_by_key?.[k] ?? 0) === n);
}

function analyse(soak) {
  const { p, results, phaseLog, logs, finalStatus } = soak;
  const checks = [];
  const check = (name, ok, detail) => checks.push({ name, ok: Boolean(ok), detail });
  const transitions = logs.map(parseTransition).filter(Boolean);
  const rel = (ms) => ((ms - phaseLog[0].start) / 1000).toFixed(1);
  const inPhase = (ph, ts) => ts >= ph.start && ts <= ph.end;
  const phaseOf = (ts) => phaseLog.find((ph) => inPhase(ph, ts))?.name ?? "(between phases)";

  // ---- every request answered, every status accounted for -------------------------------
  const unanswered = results.filter((r) => r.error);
  const byStatus = {};
  for (const r of results) byStatus[r.status ?? "none"] = (byStatus[r.status ?? "none"] ?? 0) + 1;
  check(`every request answered (${results.length} sent)`, unanswered.length === 0, unanswered.slice(0, 3).map((r) => r.error).join("; ") || `${results.length} answered`);
  check(
    "every status accounted for",
    Object.values(byStatus).reduce((a, b) => a + b, 0) === results.length && !byStatus.none,
    JSON.stringify(byStatus),
  );
  const badBodies = results.filter((r) => r.bodyProblem);
  check("every body is what its status says (answers complete, errors JSON with the request id)", badBodies.length === 0, badBodies.slice(0, 3).map((r) => r.bodyProblem).join("; ") || "all");
  const healthyPhases = phaseLog.filter((ph) => !ph.expect?.perplexityDown).map((ph) => ph.index);
  const fiveXxHealthy = results.filter((r) => healthyPhases.includes(r.phase) && r.status >= 500);
  check("no client-visible 5xx while Perplexity is healthy", fiveXxHealthy.length === 0, `${fiveXxHealthy.length} (${[...new Set(fiveXxHealthy.map((r) => r.status))].join(",")})`);
  const non200 = results.filter((r) => r.status !== 200 && !r.error);
  const explained = non200.filter((r) => {
    const ph = phaseLog[r.phase];
    return ph.expect?.perplexityDown && r.status >= 500 && r.cohort === "perplexity" && !r.fallback;
  });
  check("every non-200 is a Perplexity failure while Perplexity was down", explained.length === non200.length, `${non200.length} non-200, ${explained.length} of them Perplexity's cohort during "perplexity 500"`);

  // ---- fallbacks = LightRAG failures before the first byte --------------------------------
  const headerFallbacks = results.filter((r) => r.fallback === "lightrag->perplexity");
  const otherFallbacks = results.filter((r) => r.fallback && r.fallback !== "lightrag->perplexity");
  const mockFailures = soak.lightragLog.filter(lightragFailedBeforeFirstByte);
  const failedLines = logs.filter((l) => /^request [0-9a-f]{32}: lightrag failed \(/.test(l.message));
  const failedIds = new Set(failedLines.map((l) => l.message.slice(8, 40)));
  const headerIds = new Set(headerFallbacks.map((r) => r.requestId));
  const idMismatch = [...headerIds].filter((id) => !failedIds.has(id)).length + [...failedIds].filter((id) => !headerIds.has(id)).length;
  const perf = finalStatus.service_performance.performance;
  const counterFallbacks = (perf.perplexity.fallback_count ?? 0) + (perf.lightrag.fallback_count ?? 0);
  const capped = finalStatus.key_limits.capped_samples + finalStatus.key_limits.untracked_samples;
  check(
    "fallbacks = LightRAG failures before the first byte",
    headerFallbacks.length === mockFailures.length &&
      mockFailures.length === failedLines.length &&
      counterFallbacks === headerFallbacks.length &&
      idMismatch === 0 &&
      otherFallbacks.length === 0 &&
      capped === 0,
    `X-Route-Fallback ${headerFallbacks.length} = mock LightRAG failures ${mockFailures.length} = router log "lightrag failed" ${failedLines.length} = status fallback_count ${counterFallbacks}; request ids differing ${idMismatch}; other fallbacks ${otherFallbacks.length}; capped samples ${capped}`,
  );

  // ---- cut streams are marked ---------------------------------------------------------------
  const clientTruncated = results.filter((r) => r.truncated);
  const mockCuts = soak.lightragLog.filter(lightragCutAfterText);
  const counterTruncated = (perf.lightrag.truncated_count ?? 0) + (perf.perplexity.truncated_count ?? 0);
  const brokeLines = logs.filter((l) => /^request [0-9a-f]{32}: lightrag stream broke/.test(l.message));
  check(
    "cut streams are marked",
    clientTruncated.length === mockCuts.length && mockCuts.length === counterTruncated && brokeLines.length === mockCuts.length && mockCuts.length > 0,
    `stream_truncated events ${clientTruncated.length} = mock cuts after text ${mockCuts.length} = truncated_count ${counterTruncated} = "stream broke" log lines ${brokeLines.length}`,
  );

  // ---- the breaker --------------------------------------------------------------------------
  const window = Number(p.vars.LIGHTRAG_CIRCUIT_BREAKER_WINDOW_SIZE ?? 20);
  const breakerRows = [];
  for (const ph of phaseLog) {
    const mine = transitions.filter((t) => inPhase(ph, t.timestamp));
    const row = { phase: ph.name, transitions: mine };
    if (ph.expect?.opens) {
      const u = ph.expect.opens;
      const openIdx = logs.findIndex((l) => {
        const t = l.timestamp >= ph.start && l.timestamp <= ph.end && parseTransition(l);
        return t && t.upstream === u && t.to === "open";
      });
      const open = openIdx >= 0 ? parseTransition(logs[openIdx]) : null;
      // Failures the router judged before the trip, in its log's order (exact); a slow answer
      // logs nothing, so for those the mock's count of calls it had answered by then (≥ the
      // judged ones: the router may not have read them yet).
      const failLine = new RegExp(`^request [0-9a-f]{32}: ${u} (failed \\(|stream broke)`);
      const logged = open ? logs.slice(0, openIdx).filter((l) => l.timestamp >= ph.start && failLine.test(l.message)).length : null;
      const log = u === "lightrag" ? soak.lightragLog : soak.perplexityLog;
      const [a, b] = ph.mockRange[u];
      const answered = open ? log.slice(a, b).filter((e) => e.endAt !== undefined && e.endAt <= open.timestamp).length : null;
      const slow = Boolean(ph[u]?.ttfbDelayMs);
      const judged = slow ? answered : logged;
      row.openAfterMs = open ? open.timestamp - ph.start : null;
      row.judgedBeforeOpen = judged;
      check(
        `${ph.name}: the ${u} breaker opens within its window`,
        open && judged <= window && !ph.timedOut,
        open
          ? `open ${row.openAfterMs} ms after the fault began, after ${judged} ${slow ? "slow answers (mock count)" : "logged failures"} (window ${window}; cause ${open.cause})`
          : "never opened",
      );
    }
    if (ph.expect?.closes) {
      const u = ph.expect.closes;
      const closed = mine.find((t) => t.upstream === u && t.to === "closed");
      row.closeAfterMs = closed ? closed.timestamp - ph.start : null;
      check(`${ph.name}: the ${u} breaker closes after the fault stopped`, closed && !ph.timedOut, closed ? `closed ${row.closeAfterMs} ms after the fault stopped` : "did not close");
    }
    if (ph.expect?.staysClosed) {
      const u = ph.expect.staysClosed;
      const moved = mine.filter((t) => t.upstream === u);
      check(`${ph.name}: the ${u} breaker stays closed`, moved.length === 0, moved.length ? moved.map((t) => `${t.from}->${t.to}`).join(", ") : "no transition");
    }
    if (ph.expect?.slowStreamMs) {
      const slow = results.filter((r) => r.phase === ph.index && r.route === "chat" && r.stream && r.upstream === "lightrag");
      const ok = slow.filter((r) => r.status === 200 && !r.truncated && !r.bodyProblem && r.totalMs >= ph.expect.slowStreamMs * 0.9);
      row.slowStreams = slow.length;
      check(
        `${ph.name}: every slow stream completes, unmarked, from LightRAG`,
        slow.length === ph.slowStreams && ok.length === slow.length,
        `${ok.length}/${slow.length} complete (of ${ph.slowStreams}), ${fmtMs(Math.min(...slow.map((r) => r.totalMs)))}–${fmtMs(Math.max(...slow.map((r) => r.totalMs)))} each`,
      );
    }
    breakerRows.push(row);
  }
  const lastStates = finalStatus.service_performance.circuit_breakers;
  check("both breakers closed at the end", lastStates.lightrag.state === "closed" && lastStates.perplexity.state === "closed", `lightrag ${lastStates.lightrag.state}, perplexity ${lastStates.perplexity.state}`);

  // ---- KV: writes per key ≤ 1/s --------------------------------------------------------------
  const puts = {};
  for (const e of soak.kvEvents.filter((e) => e.op === "put")) (puts[e.key] ??= []).push(e.timestamp);
  const kvRows = Object.entries(puts).map(([key, ts]) => {
    ts.sort((a, b) => a - b);
    const gaps = ts.slice(1).map((t, i) => t - ts[i]);
    return { key, writes: ts.length, minGapMs: gaps.length ? Math.min(...gaps) : null };
  });
  const ops = finalStatus.kv.ops;
  const tooClose = kvRows.filter((r) => r.minGapMs !== null && r.minGapMs < 1000);
  const statusGaps = Object.entries(ops.min_write_gap_ms ?? {}).filter(([, g]) => g < 1000);
  const atStatus = soak.kvEventsAtStatus ?? soak.kvEvents;
  const countMismatch = Object.entries(spyWritesByKey(atStatus)).filter(([key, n]) => (ops.writes_by_key?.[key] ?? 0) !== n);
  const spyTotals = spyCounts(atStatus);
  check(
    "KV writes per key ≤ 1/s",
    tooClose.length === 0 && statusGaps.length === 0 && kvRows.length > 0,
    `${kvRows.length} keys written; shortest gap ${fmtMs(Math.min(...kvRows.map((r) => r.minGapMs ?? Infinity)))} (spy), ${fmtMs(Math.min(...Object.values(ops.min_write_gap_ms ?? {}), Infinity))} (status)`,
  );
  check(
    "the router's KV counters match the spy on the binding",
    countMismatch.length === 0 && ops.reads === spyTotals.reads && ops.writes === spyTotals.writes && ops.lists === spyTotals.lists,
    `spy reads/writes/lists ${spyTotals.reads}/${spyTotals.writes}/${spyTotals.lists}, status ${ops.reads}/${ops.writes}/${ops.lists}`,
  );
  // What the router wrote during the soak holds no secret and no raw user id (the full search,
  // responses and every form included, is tests/node/secrets.test.mjs).
  const written = [
    ...logs.map((l) => l.message),
    ...soak.kvEvents.filter((e) => e.op === "put").map((e) => `${e.key} ${e.value}`),
    ...soak.kvDump.map((k) => `${k.name} ${k.value}`),
  ];
  const needles = [SALT, ADMIN, CLIENT, KEYS.lightrag, KEYS.perplexity, USER_PREFIX];
  const leaks = needles.filter((n) => written.some((w) => w.includes(n)));
  check("no secret or raw user id in the router's log or KV", leaks.length === 0, leaks.length ? `found: ${leaks.join(", ")}` : `${written.length} log lines and KV values searched`);
  const panics = logs.filter((l) => /panicked|RuntimeError|unreachable/i.test(l.message));
  check("no panic or runtime error in the router's log", panics.length === 0, panics.slice(0, 2).map((l) => l.message.slice(0, 200)).join("; ") || `${logs.length} lines read`);

  // ---- report ------------------------------------------------------------------------------
  const lines = [];
  const statusText = (rs) => {
    const m = {};
    for (const r of rs) m[r.error ? "unanswered" : r.status] = (m[r.error ? "unanswered" : r.status] ?? 0) + 1;
    return Object.entries(m).map(([k, v]) => `${k}×${v}`).join(" ");
  };
  lines.push(`soak (${p.name}): ${results.length} requests at concurrency ${p.concurrency}, ${soak.users.length} users (${soak.lightragUsers.length} in LightRAG's cohort), seed ${soak.seed}, ${(soak.durationMs / 1000).toFixed(1)} s`);
  lines.push(`machine: ${os.cpus().length} cores, load average ${soak.load.start.map((x) => x.toFixed(2)).join(" / ")} at start, ${soak.load.end.map((x) => x.toFixed(2)).join(" / ")} at end`);
  lines.push("");
  lines.push("| phase | s | requests | statuses | fallbacks | truncated | headers p50 / p95 | complete p50 / p95 | breaker |");
  lines.push("|---|---|---|---|---|---|---|---|---|");
  for (const [i, ph] of phaseLog.entries()) {
    const rs = results.filter((r) => r.phase === ph.index);
    const ok = rs.filter((r) => !r.error);
    const h = ok.map((r) => r.headersMs);
    const t = ok.map((r) => r.totalMs);
    const row = breakerRows[i];
    const br = [];
    if (row.openAfterMs != null) br.push(`open +${fmtMs(row.openAfterMs)} after ${row.judgedBeforeOpen} failures`);
    if (row.closeAfterMs != null) br.push(`closed +${fmtMs(row.closeAfterMs)}`);
    if (ph.expect?.staysClosed) br.push(row.transitions.some((x) => x.upstream === ph.expect.staysClosed) ? "MOVED" : "stayed closed");
    const others = row.transitions.length - (row.openAfterMs != null ? 1 : 0) - (row.closeAfterMs != null ? 1 : 0);
    if (others > 0 && !ph.expect?.staysClosed) br.push(`${others} more transitions`);
    lines.push(
      `| ${ph.name} | ${((ph.end - ph.start) / 1000).toFixed(1)} | ${rs.length} | ${statusText(rs)} | ${rs.filter((r) => r.fallback).length} | ${rs.filter((r) => r.truncated).length} | ${fmtMs(quantile(h, 0.5))} / ${fmtMs(quantile(h, 0.95))} | ${fmtMs(quantile(t, 0.5))} / ${fmtMs(quantile(t, 0.95))} | ${br.join("; ")} |`,
    );
  }
  const all = results.filter((r) => !r.error);
  lines.push(
    `| **all** | ${(soak.durationMs / 1000).toFixed(1)} | ${results.length} | ${statusText(results)} | ${headerFallbacks.length} | ${clientTruncated.length} | ${fmtMs(quantile(all.map((r) => r.headersMs), 0.5))} / ${fmtMs(quantile(all.map((r) => r.headersMs), 0.95))} | ${fmtMs(quantile(all.map((r) => r.totalMs), 0.5))} / ${fmtMs(quantile(all.map((r) => r.totalMs), 0.95))} | |`,
  );
  lines.push("");
  lines.push("Breaker transitions (from the router's log; open → half_open is a timer and logs nothing):");
  lines.push("");
  lines.push("| t (s) | upstream | transition | cause | generation | phase |");
  lines.push("|---|---|---|---|---|---|");
  for (const t of transitions) lines.push(`| ${rel(t.timestamp)} | ${t.upstream} | ${t.from} → ${t.to} | ${t.cause} | ${t.generation} | ${phaseOf(t.timestamp)} |`);
  lines.push("");
  lines.push(
    `KV (spy on the binding): ${spyTotals.reads} reads, ${spyTotals.writes} writes, ${spyTotals.lists} lists for ${results.length} requests (${((1000 * spyTotals.writes) / results.length).toFixed(2)} writes per 1,000); the router's counters: ${ops.reads} / ${ops.writes} / ${ops.lists}`,
  );
  lines.push("");
  lines.push("| key | writes | shortest gap between writes |");
  lines.push("|---|---|---|");
  for (const r of kvRows) lines.push(`| ${r.key} | ${r.writes} | ${r.minGapMs === null ? "—" : fmtMs(r.minGapMs)} |`);
  lines.push("");
  lines.push(`Mock upstreams: LightRAG ${soak.lightragLog.length} requests (${mockFailures.length} failed before the first byte, ${mockCuts.length} streams cut after text), Perplexity ${soak.perplexityLog.length}. Router log: ${logs.length} lines.`);
  lines.push("");
  for (const c of checks) lines.push(`${c.ok ? "ok  " : "FAIL"} ${c.name} — ${c.detail}`);
  return { checks, report: lines.join("\n"), results, durationMs: soak.durationMs };
}

function fmtMs(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "—";
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

/** Runs one profile (`full` or `short`); resolves with {checks, report}. */
export async function runSoak(name, { seed = Number(process.env.SOAK_SEED) || Date.now() % 2 ** 31 } = {}) {
  const profile = PROFILES[name];
  if (!profile) throw new Error(`unknown soak profile ${name}: ${Object.keys(PROFILES).join(", ")}`);
  return new Soak(profile, seed).run();
}
