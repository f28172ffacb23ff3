// The router (release bundle, real workerd via Miniflare) in front of the REAL lightrag-server:
// a LightRAG-cohort user gets the server's own answer and its references as citations, streamed
// and not; a Perplexity-cohort user gets the mock Perplexity; the server's no-context reply (and
// its LLM-down reply) falls back to Perplexity (issue 11); a conversation reaches the server
// whole, within its limits.
// Run by `make test-lightrag` (needs `make build` and the server, scripts/lightrag/setup.sh).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startLightrag, ndjson } from './lightrag_server.mjs';
import { DOCUMENT, ANSWERABLE, UNANSWERABLE } from './cases.mjs';
import { startWorker } from '../node/harness.mjs';
import { chatBody, post, sseData, userIn, ADMIN } from '../node/common.mjs';
import { startUpstreams, LIGHTRAG_NO_CONTEXT } from '../mock/upstreams.mjs';

const SALT = 'cmo_lightrag_2025';
const LR = userIn(SALT, 50, true, 'real-lr'); // inside the 50 % rollout → LightRAG
const PX = userIn(SALT, 50, false, 'real-px'); // outside → Perplexity
const LR_KEY = 'router-real-key';
const PX_KEY = 'px-key';

let rag;
let up;
let w;
before(async () => {
  [rag, up] = await Promise.all([startLightrag({ apiKey: LR_KEY }), startUpstreams({ perplexityKey: PX_KEY })]);
  await rag.insert(DOCUMENT.text, DOCUMENT.fileSource);
  w = await startWorker({
    bindings: {
      LIGHTRAG_INTEGRATION_ENABLED: 'true',
      LIGHTRAG_ROLLOUT_PERCENTAGE: '50',
      LIGHTRAG_BASE_URL: rag.url,
      LIGHTRAG_API_KEY: LR_KEY,
      PERPLEXITY_BASE_URL: up.perplexityUrl,
      PERPLEXITY_API: PX_KEY,
      ADMIN_TOKEN: ADMIN,
      // Room for a conversation over the server's own limits (the router trims it).
      LIGHTRAG_MAX_BODY_BYTES: '1048576',
      // The cohort header is operator detail (hidden by default).
      ROUTER_EXPOSE_ROUTING_DETAIL: 'true',
      // A real server with a mock LLM answers in ~0.1 s; leave the default budget alone.
    },
  });
});
after(async () => {
  await w?.close();
  await Promise.all([rag?.stop(), up?.close()]);
});

/** What the real server answers to `query` asked directly (the mock LLM is deterministic). */
async function direct(query) {
  const r = await rag.fetch('/query', { method: 'POST', body: JSON.stringify({ query, mode: 'mix', include_references: true }) });
  assert.equal(r.status, 200);
  return r.json();
}

/** The text and the final chunk of an OpenAI SSE body from the router. */
function sseAnswer(text) {
  const frames = sseData(text);
  assert.equal(frames.at(-1), '[DONE]');
  const objs = frames.slice(0, -1).map((f) => JSON.parse(f));
  assert.ok(objs.every((o) => !o.error), text);
  return { content: objs.map((o) => o.choices?.[0]?.delta?.content ?? '').join(''), last: objs.at(-1), objs };
}

/** The citations the router should derive: the server's reference file paths, in order. */
const paths = (answer) => answer.references.map((r) => r.file_path);

test('LightRAG cohort, not streamed: the real server answer with its references as citations', async () => {
  const expected = await direct(ANSWERABLE);
  assert.equal(expected.llm_generated, true);
  const r = await post(w, '/v1/chat/completions', chatBody(ANSWERABLE, { user: LR }));
  const b = await r.json();
  assert.equal(r.status, 200, JSON.stringify(b));
  assert.equal(r.headers.get('x-route-upstream'), 'lightrag');
  assert.equal(r.headers.get('x-route-fallback'), null);
  assert.equal(b.choices[0].message.content, expected.response);
  assert.deepEqual(paths(expected), [DOCUMENT.fileSource]);
  assert.deepEqual(b.citations, paths(expected));
  assert.equal(up.requests('perplexity').length, 0);
});

test('LightRAG cohort, streamed: the real NDJSON stream becomes OpenAI SSE with the same text and citations', async () => {
  const expected = await direct(ANSWERABLE);
  const r = await post(w, '/v1/chat/completions', chatBody(ANSWERABLE, { user: LR, stream: true }));
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /text\/event-stream/);
  assert.equal(r.headers.get('x-route-upstream'), 'lightrag');
  const { content, last, objs } = sseAnswer(await r.text());
  assert.equal(content, expected.response);
  assert.ok(objs.length >= 4, 'several delta chunks, as the server streamed them');
  assert.equal(last.choices[0].finish_reason, 'stop');
  assert.deepEqual(last.citations, paths(expected));
});

test('LightRAG cohort on the seed /query: content and citations from the real server', async () => {
  const expected = await direct(ANSWERABLE);
  const r = await post(w, '/query', JSON.stringify({ query_text: ANSWERABLE, user_id: LR }));
  const b = await r.json();
  assert.equal(r.status, 200, JSON.stringify(b));
  assert.equal(b.service_used, 'lightrag');
  assert.equal(b.success, true);
  assert.equal(b.content, expected.response);
  const titles = b.citations.map((c) => (typeof c === 'string' ? c : c.title));
  assert.deepEqual(titles, paths(expected), JSON.stringify(b.citations));
});

test('Perplexity cohort: answered by the mock Perplexity, LightRAG not asked', async () => {
  up.reset();
  const before = rag.llm.requests().length;
  const r = await post(w, '/v1/chat/completions', chatBody(ANSWERABLE, { user: PX }));
  const b = await r.json();
  assert.equal(r.status, 200, JSON.stringify(b));
  assert.equal(r.headers.get('x-route-upstream'), 'perplexity');
  assert.match(b.choices[0].message.content, /Perplexity/);
  assert.equal(up.requests('perplexity').length, 1);
  assert.equal(rag.llm.requests().length, before, 'the LightRAG server did no work');
});

// Issue 11, Deliver 1 (this test recorded the pre-issue behaviour as `CURRENT (pre issue 11)…` and
// is now flipped): the real no-context reply never reaches the client; Perplexity answers
// instead, marked `X-Route-Fallback: no_context`, and LightRAG's breaker stays closed.
test('the real no-context reply falls back to Perplexity (JSON and stream), nothing of it reaches the client', async () => {
  const expected = await direct(UNANSWERABLE);
  assert.equal(expected.response, LIGHTRAG_NO_CONTEXT);
  assert.equal(expected.llm_generated, false);

  up.reset();
  const r = await post(w, '/v1/chat/completions', chatBody(UNANSWERABLE, { user: LR }));
  const text = await r.text();
  assert.equal(r.status, 200, text);
  assert.equal(r.headers.get('x-route-upstream'), 'perplexity');
  assert.equal(r.headers.get('x-route-cohort'), 'lightrag');
  assert.equal(r.headers.get('x-route-fallback'), 'no_context');
  const b = JSON.parse(text);
  assert.match(b.choices[0].message.content, /^\[Perplexity/);
  assert.equal(b.routing.fallback_used, true);
  assert.doesNotMatch(text, /no-context|not able to provide/);

  const s = await post(w, '/v1/chat/completions', chatBody(UNANSWERABLE, { user: LR, stream: true }));
  const stext = await s.text();
  assert.equal(s.status, 200);
  assert.equal(s.headers.get('x-route-upstream'), 'perplexity');
  assert.equal(s.headers.get('x-route-fallback'), 'no_context');
  assert.match(sseAnswer(stext).content, /^\[Perplexity/);
  assert.doesNotMatch(stext, /no-context|not able to provide/);
  assert.equal(up.requests('perplexity').length, 2);

  // What the server sent for it on /query/stream: one complete line, no references line first.
  const raw = await rag.fetch('/query/stream', { method: 'POST', body: JSON.stringify({ query: UNANSWERABLE, include_references: true }) });
  assert.deepEqual(ndjson(await raw.text()), [{ response: LIGHTRAG_NO_CONTEXT, llm_generated: false, references: [] }]);

  const st = await (await w.fetch('/admin/status', { headers: { authorization: `Bearer ${ADMIN}` } })).json();
  assert.equal(st.service_performance.circuit_breakers.lightrag.state, 'closed');
  assert.ok(st.answer_aware.no_context.by_arm.treatment.no_context >= 2, JSON.stringify(st.answer_aware.no_context));
});

test('a multi-turn chat reaches the real server with its conversation_history and user_prompt, over-long ones trimmed', async () => {
  const before = rag.llm.requests().filter((x) => x.kind === 'answer').length;
  const messages = [
    { role: 'system', content: 'Answer for clinicians.' },
    { role: 'user', content: 'What does glycolysis produce?' },
    { role: 'assistant', content: 'Pyruvate, ATP and NADH.' },
    { role: 'user', content: ANSWERABLE },
  ];
  const r = await post(w, '/v1/chat/completions', JSON.stringify({ model: 'sonar', user: LR, messages }));
  const b = await r.json();
  assert.equal(r.status, 200, JSON.stringify(b));
  assert.equal(r.headers.get('x-route-upstream'), 'lightrag', 'the real server accepted the conversation');
  // The server put the earlier turns into its LLM call.
  const answers = rag.llm.requests().filter((x) => x.kind === 'answer');
  assert.ok(answers.length > before);
  assert.match(JSON.stringify(answers.at(-1).body), /Pyruvate, ATP and NADH/);
  // Over every limit (140 turns, one turn over 32,768 characters, > 131,072 in all): trimmed, accepted.
  const long = [];
  for (let i = 0; i < 140; i++) long.push({ role: i % 2 ? 'assistant' : 'user', content: `turn ${i}: ` + 'glycolysis '.repeat(100) });
  long[131] = { role: 'assistant', content: 'y'.repeat(40_000) };
  long.push({ role: 'user', content: ANSWERABLE });
  const r2 = await post(w, '/v1/chat/completions', JSON.stringify({ model: 'sonar', user: LR, messages: long }));
  const b2 = await r2.json();
  assert.equal(r2.status, 200, JSON.stringify(b2));
  assert.equal(r2.headers.get('x-route-upstream'), 'lightrag');
  assert.equal(r2.headers.get('x-route-fallback'), null, 'no 422 from the real server');
});

test("the real server with its LLM down: its slow no-context reply falls back too", async (t) => {
  rag.llm.setFailure({ status: 500 });
  try {
    up.reset();
    const t0 = Date.now();
    const r = await post(w, '/v1/chat/completions', chatBody(ANSWERABLE, { user: LR }));
    const text = await r.text();
    t.diagnostic(`answered after ${Date.now() - t0} ms (LightRAG's own retries first)`);
    assert.equal(r.status, 200, text);
    assert.equal(r.headers.get('x-route-upstream'), 'perplexity');
    assert.equal(r.headers.get('x-route-fallback'), 'no_context');
    assert.doesNotMatch(text, /No relevant context/);
  } finally {
    rag.llm.setFailure(null);
  }
});
