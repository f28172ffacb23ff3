// `GET /metrics` as a scraper sees it (issue 9 item 8): the fleet's counters from the cron
// controller's committed minutes, read back with a real exposition-format parser
// (parse-prometheus-text-format, pinned in package.json), plus the answering isolate's own
// series labelled `scope="isolate"`. The counters must add up to the traffic sent, the
// histogram must be a histogram (cumulative buckets, `+Inf` = `_count`), and nothing may shrink
// when an isolate dies (its flush key expires) or double when the controller ticks again.
import { test } from "node:test";
import assert from "node:assert/strict";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { auth, chatBody, post, startStack } from "./common.mjs";

const Q = "What is the role of glutathione in oxidative stress?";

async function scrape(w) {
  const r = await w.fetch("/metrics", { headers: auth });
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type"), /^text\/plain; version=0\.0\.4/);
  const text = await r.text();
  return { text, families: Object.fromEntries(parsePrometheusTextFormat(text).map((f) => [f.name, f])) };
}

/**
 * Each labelled series of histogram `name`, parsed by the parser on its own. Version 1.1.1
 * handles only unlabelled histograms: its `flattenMetrics` merges the series of a labelled one
 * into one object and drops `_sum`/`_count` lines that carry labels. So the test hands it one
 * series at a time, with that series' own labels (all but `le`) taken off.
 */
function histogramSeries(text, name) {
  const groups = new Map();
  for (const line of text.split("\n")) {
    const m = line.match(new RegExp(`^(${name}_(?:bucket|sum|count))\\{(.*)\\} (\\S+)$`));
    if (!m) continue;
    const le = m[2].match(/(?:^|,)(le="[^"]*")/);
    const labels = m[2].replace(/,?le="[^"]*"/, "");
    if (!groups.has(labels)) groups.set(labels, []);
    groups.get(labels).push(`${m[1]}${le ? `{${le[1]}}` : ""} ${m[3]}`);
  }
  return [...groups].map(([labels, lines]) => {
    const [family] = parsePrometheusTextFormat(`# TYPE ${name} histogram\n${lines.join("\n")}\n`);
    assert.equal(family.metrics.length, 1);
    return { labels, ...family.metrics[0] };
  });
}

const sum = (family, pick = () => true) =>
  (family?.metrics ?? []).filter((m) => pick(m.labels ?? {})).reduce((a, m) => a + Number(m.value), 0);

test("/metrics: fleet counters from the controller parse as Prometheus text, add up, and never shrink", async () => {
  const s = await startStack({ vars: { LIGHTRAG_ROLLOUT_PERCENTAGE: "50" } });
  try {
    // Traffic in this isolate, by upstream.
    const sent = { lightrag: 0, perplexity: 0 };
    const why = {};
    for (let i = 0; i < 12; i++) {
      const r = await post(s.w, "/v1/chat/completions", chatBody(Q, { user: `metrics-${i}` }));
      await r.arrayBuffer();
      assert.equal(r.status, 200);
      sent[r.headers.get("x-route-upstream")] += 1;
      why[r.headers.get("x-route-reason")] = (why[r.headers.get("x-route-reason")] ?? 0) + 1;
    }
    assert.ok(sent.lightrag > 0 && sent.perplexity > 0, JSON.stringify(sent));

    // Before the controller has committed anything there are no fleet counters yet, only
    // this isolate's gauges.
    let { families } = await scrape(s.w);
    assert.equal(families.cmo_router_requests_total, undefined);
    assert.equal(sum(families.cmo_router_isolate_requests), 12);
    for (const m of families.cmo_router_isolate_requests.metrics) assert.equal(m.labels.scope, "isolate");

    // The isolate's real flush, as another isolate that served this traffic five minutes ago
    // and has since died would have left it: the same windows, slots moved back five minutes
    // so that the controller's pass finds them settled (a minute is committed two flush
    // periods after it ended).
    const kv = await s.w.kv();
    const { flushed } = await (await s.w.fetch("/admin/metrics/flush", { method: "POST", headers: auth })).json();
    const doc = JSON.parse(await kv.get(flushed));
    assert.ok(doc.reasons, "the flush carries the same requests by reason");
    for (const w of [...Object.values(doc.windows), ...Object.values(doc.reasons)]) for (const slot of w.slots) slot.t -= 5;
    doc.isolate = "gone-isolate";
    await kv.put("metrics/gone-isolate", JSON.stringify(doc));

    const tick = async () => (await s.w.fetch("/admin/controller/tick", { method: "POST", headers: auth })).json();
    const rep = await tick();
    assert.equal(rep.completed, true);

    let text;
    ({ text, families } = await scrape(s.w));
    const req = families.cmo_router_requests_total;
    assert.equal(req.type, "COUNTER");
    for (const m of req.metrics) {
      assert.deepEqual(Object.keys(m.labels).sort(), ["arm", "outcome", "upstream"]);
      assert.ok(["treatment", "control", "none"].includes(m.labels.arm));
    }
    // Committed: exactly the traffic of the dead isolate's settled minutes (this isolate's own
    // minutes are not settled yet, so they are not counted twice).
    for (const u of ["lightrag", "perplexity"]) {
      assert.equal(sum(req, (l) => l.upstream === u && l.outcome === "success"), sent[u], u);
    }
    assert.equal(sum(req, (l) => l.outcome === "error"), 0);
    // The same requests by X-Route-Reason.
    const dec = families.cmo_router_decisions_total;
    assert.equal(dec.type, "COUNTER");
    assert.deepEqual(Object.keys(why).sort(), ["rollout_in", "rollout_out"]);
    for (const [reason, n] of Object.entries(why)) assert.equal(sum(dec, (l) => l.reason === reason), n, reason);
    assert.equal(sum(dec), 12);

    const lat = families.cmo_router_latency_seconds;
    assert.equal(lat.type, "HISTOGRAM");
    const series = histogramSeries(text, "cmo_router_latency_seconds");
    assert.ok(series.length >= 2, "one histogram per upstream and arm");
    assert.equal(series.reduce((a, m) => a + Number(m.count), 0), 12);
    for (const m of series) {
      const entries = Object.entries(m.buckets);
      assert.ok(entries.length >= 10, "a histogram has buckets");
      assert.equal(entries.at(-1)[0], "+Inf");
      const bounds = entries.slice(0, -1).map(([le]) => Number(le));
      for (let i = 1; i < bounds.length; i++) assert.ok(bounds[i] > bounds[i - 1], "le bounds ascend");
      const counts = entries.map(([, c]) => Number(c));
      for (let i = 1; i < counts.length; i++) assert.ok(counts[i] >= counts[i - 1], `cumulative buckets for ${m.labels}`);
      assert.equal(counts.at(-1), Number(m.count), "+Inf bucket = _count");
      assert.ok(Number(m.sum) > 0 && Number(m.sum) < Number(m.count) * 60, "the sum is in seconds");
    }
    assert.equal(families.cmo_router_quality_score.type, "SUMMARY");
    assert.equal(families.cmo_router_breaker_trips_total.type, "COUNTER");
    const through = Number(families.cmo_router_fleet_counted_through_seconds.metrics[0].value);
    assert.ok(through * 1000 <= Date.now() - 120_000 + 60_000, "counted through a settled minute");

    // The isolate dies (its key expires): the counters do not shrink. Another tick does not
    // count the same minutes again.
    await kv.delete("metrics/gone-isolate");
    await tick();
    await tick();
    const after = (await scrape(s.w)).families;
    for (const u of ["lightrag", "perplexity"]) {
      assert.equal(sum(after.cmo_router_requests_total, (l) => l.upstream === u), sent[u], u);
    }
    assert.equal(sum(after.cmo_router_decisions_total), 12);
    const again = histogramSeries((await scrape(s.w)).text, "cmo_router_latency_seconds");
    assert.equal(again.reduce((a, m) => a + Number(m.count), 0), 12);
  } finally {
    await s.close();
  }
});

// The deferred flush (issue 14, core::fleet::schedule): a request that leaves counts unflushed
// names a later flush, and the invocation stays alive under ctx.waitUntil until it is due (here
// METRICS_FLUSH_SECONDS = 10, the smallest allowed, so ~10 s after the isolate started) and
// writes them. Without it the counts would wait for the isolate's next request, which this
// test never sends.
test("an idle isolate's counts reach KV within the flush period without a second request", async () => {
  const s = await startStack({ vars: { METRICS_FLUSH_SECONDS: "10" } });
  try {
    const kv = await s.w.kv();
    const r = await post(s.w, "/v1/chat/completions", chatBody(Q, { user: "idle-isolate" }));
    await r.arrayBuffer();
    assert.equal(r.status, 200);
    const upstream = r.headers.get("x-route-upstream");
    // No more traffic. Poll KV for this isolate's flush carrying that one request.
    const deadline = Date.now() + 60_000;
    let counted = 0;
    while (Date.now() < deadline) {
      const { keys } = await kv.list({ prefix: "metrics/" });
      counted = 0;
      for (const k of keys) {
        const doc = JSON.parse(await kv.get(k.name));
        for (const [key, w] of Object.entries(doc.windows ?? {})) {
          if (key.startsWith(`${upstream}.`)) for (const slot of w.slots) counted += slot.s.count ?? 0;
        }
      }
      if (counted > 0) break;
      await new Promise((done) => setTimeout(done, 250));
    }
    assert.equal(counted, 1, "the request's count reached KV without a second request");
  } finally {
    await s.close();
  }
});
