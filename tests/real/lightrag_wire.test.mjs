// The mock LightRAG (tests/mock/upstreams.mjs) against the REAL lightrag-server, live: the same
// requests go to both and the replies must agree — status, content type, canned texts, 422/413/403
// bodies byte for byte, answer shapes key for key, NDJSON line layout and Python's json.dumps
// spacing. This is what keeps the mock from drifting from the service it stands in for.
// Run by `make test-lightrag` (not by `make test`: it needs the server installed, ~1 min).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startLightrag, ndjson } from './lightrag_server.mjs';
import { CASES, ACCEPTED, DOCUMENT, ANSWERABLE, sendCase, elideInputs, bodyWithTotal } from './cases.mjs';
import { startUpstreams, pyJson, lightragRequestTextChars, LIGHTRAG_NO_RESULT } from '../mock/upstreams.mjs';

const KEY = 'wire-key';
let rag;
let up;
before(async () => {
  [rag, up] = await Promise.all([startLightrag({ apiKey: KEY }), startUpstreams({ lightragKey: KEY })]);
  await rag.insert(DOCUMENT.text, DOCUMENT.fileSource);
});
after(async () => {
  await Promise.all([rag?.stop(), up?.close()]);
});

/** Asks the real server and the mock (with `behaviour`, for the next request only). */
async function both(c) {
  const real = await sendCase(rag.url, KEY, c);
  up.setBehaviour('lightrag', c.behaviour ? { ...c.behaviour, times: 1 } : null);
  const mock = await sendCase(up.lightragUrl, KEY, c);
  return { real, mock };
}

const mediaType = (ct) => (ct || '').split(';')[0].trim();
const stableTime = (text) => text.replace(/"response_time": ?[0-9.]+/g, '"response_time":0');

/** Keys in order with the JSON type of each value, recursively into arrays of objects. */
function shape(v) {
  if (Array.isArray(v)) return v.length ? [shape(v[0])] : [];
  if (v && typeof v === 'object') return Object.entries(v).map(([k, x]) => [k, shape(x)]);
  return v === null ? 'null' : typeof v;
}

/** A stream's layout: each line's key set, consecutive repeats collapsed (chunk counts differ). */
function layout(text) {
  const sigs = ndjson(text).map((l) => Object.keys(l).join(','));
  return sigs.filter((s, i) => i === 0 || s !== sigs[i - 1]);
}

/** Every NDJSON line is written as Python's json.dumps writes it (", " / ": ", \u escapes). */
function assertPythonLines(text, who) {
  for (const line of text.split('\n').filter(Boolean)) assert.equal(line, pyJson(JSON.parse(line)), `${who} line bytes`);
  assert.ok(text.endsWith('\n'), `${who} ends with a newline`);
}

function compare(c, { real, mock }) {
  const label = `${c.name}: real ${real.status} ${real.text.slice(0, 300)}\nmock ${mock.status} ${mock.text.slice(0, 300)}`;
  assert.equal(mock.status, real.status, label);
  assert.equal(mediaType(mock.contentType), mediaType(real.contentType), label);
  if (c.kind === 'exact') {
    const norm = (t) => stableTime(c.elide ? elideInputs(t) : t);
    assert.equal(norm(mock.text), norm(real.text), label);
  } else if (c.kind === 'shape') {
    const r = JSON.parse(real.text);
    const m = JSON.parse(mock.text);
    assert.deepEqual(shape(m), shape(r), label);
    assert.equal(m.llm_generated, r.llm_generated, label);
  } else if (c.kind === 'ndjson-shape') {
    assert.deepEqual(layout(mock.text), layout(real.text), label);
    assertPythonLines(real.text, 'real');
    assertPythonLines(mock.text, 'mock');
    const r = ndjson(real.text);
    const m = ndjson(mock.text);
    assert.deepEqual(shape(m[0]), shape(r[0]), label);
    assert.deepEqual(shape(m.at(-1)), shape(r.at(-1)), label);
  } else if (c.kind === 'json_invalid') {
    const strip = (t) => JSON.parse(t).detail.map(({ type, loc, msg }) => ({ type, loc, msg }));
    assert.deepEqual(strip(mock.text), strip(real.text), label);
  } else if (c.kind === 'health') {
    const r = JSON.parse(real.text);
    const m = JSON.parse(mock.text);
    for (const [k, v] of Object.entries(m)) assert.deepEqual(v, r[k], `${label}\nkey ${k}`);
  } else {
    throw new Error(`unknown kind ${c.kind}`);
  }
}

for (const c of CASES) {
  test(`mock = real: ${c.name}`, async () => compare(c, await both(c)));
}

test('mock = real: requests the server accepts (inclusive limits, free roles, extra keys)', async () => {
  for (const body of ACCEPTED) {
    const c = { name: JSON.stringify(body).slice(0, 80), path: '/query', body };
    const { real, mock } = await both(c);
    assert.equal(real.status, 200, `${c.name}: real ${real.text.slice(0, 300)}`);
    assert.equal(mock.status, 200, `${c.name}: mock ${mock.text.slice(0, 300)}`);
  }
});

test('mock = real: the 128 Ki-character total is inclusive, counted on serialized history', async () => {
  const ok = bodyWithTotal(128 * 1024, lightragRequestTextChars);
  const over = bodyWithTotal(128 * 1024 + 1, lightragRequestTextChars);
  const a = await both({ name: 'total=131072', path: '/query', body: ok });
  assert.equal(a.real.status, 200, a.real.text.slice(0, 300));
  assert.equal(a.mock.status, 200, a.mock.text.slice(0, 300));
  const c = { name: 'total=131073', path: '/query', body: over, kind: 'exact', elide: true };
  const b = await both(c);
  compare(c, b);
  assert.match(b.real.text, /total request text is 131073 characters/);
});

test('mock = real: query weight at every CJK block boundary, and Python whitespace stripping', async () => {
  const ranges = [
    [0x1100, 0x11ff], [0x2e80, 0x33ff], [0x3400, 0x4dbf], [0x4e00, 0x9fff], [0xa960, 0xa97f], [0xac00, 0xd7ff],
    [0xf900, 0xfaff], [0xfe30, 0xfe4f], [0xff00, 0xffee], [0x16fe0, 0x16fff], [0x1aff0, 0x1b2ff], [0x20000, 0x3fffd],
  ];
  const points = new Set();
  for (const [a, b] of ranges) for (const p of [a - 1, a, b, b + 1]) if (p < 0xd800 || p > 0xdfff) points.add(p);
  const queries = [...points].map((p) => String.fromCodePoint(p).repeat(2));
  queries.push('\u3000ab\u3000', '\x1cab\x1f', '\x85ab', '\u00a0ab', 'a\u200bb', '\ufeffab');
  for (const query of queries) {
    const c = { name: `query ${JSON.stringify(query)} (${[...query].map((x) => x.codePointAt(0).toString(16))})`, path: '/query', body: { query } };
    const { real, mock } = await both(c);
    assert.equal(mock.status, real.status, `${c.name}: real ${real.status}, mock ${mock.status}`);
    if (real.status === 422) assert.equal(mock.text, real.text, c.name);
  }
});

test("mock = real: a generation error mid-stream is an {\"error\"} line after the chunks so far", async () => {
  rag.llm.setFailure({ cutStreamAfter: 2 });
  try {
    const c = { name: 'cut', path: '/query/stream', body: { query: ANSWERABLE }, kind: 'ndjson-shape' };
    const real = await sendCase(rag.url, KEY, c);
    up.setBehaviour('lightrag', { streamError: 'Connection error.', times: 1 });
    const mock = await sendCase(up.lightragUrl, KEY, c);
    compare(c, { real, mock });
    assert.deepEqual(ndjson(real.text).at(-1), { error: 'Connection error.' });
    assert.deepEqual(ndjson(mock.text).at(-1), { error: 'Connection error.' });
  } finally {
    rag.llm.setFailure(null);
  }
});

test('mock = real: LLM down → 200, "No relevant context found for the query.", llm_generated false', async (t) => {
  rag.llm.setFailure({ status: 500 });
  rag.llm.clear();
  let reals;
  try {
    const t0 = Date.now();
    reals = await Promise.all(
      ['/query', '/query/stream'].map((p) => sendCase(rag.url, KEY, { path: p, body: { query: ANSWERABLE } })),
    );
    t.diagnostic(`real server answered after ${Date.now() - t0} ms (its own retries)`);
  } finally {
    rag.llm.setFailure(null);
  }
  // Three attempts per query (tenacity stop_after_attempt(3) in lightrag/llm/openai.py).
  const attempts = rag.llm.requests().filter((r) => r.kind === 'keywords').length;
  assert.equal(attempts, 6, 'three keyword-extraction attempts per query');
  for (const [i, p] of ['/query', '/query/stream'].entries()) {
    const c = { name: `llm down ${p}`, path: p, body: { query: ANSWERABLE }, kind: 'exact' };
    up.setBehaviour('lightrag', { llmDown: true, llmDownMs: 20, times: 1 });
    const mock = await sendCase(up.lightragUrl, KEY, c);
    compare(c, { real: reals[i], mock });
    assert.match(reals[i].text, new RegExp(LIGHTRAG_NO_RESULT.replace('.', '\\.')));
  }
});

test('mock = real: LLM cache hit on /query/stream is one complete line (cache on; streamed answers are not stored)', async () => {
  const cached = await startLightrag({ apiKey: KEY, llmCache: true });
  try {
    await cached.insert(DOCUMENT.text, DOCUMENT.fileSource);
    const c = { name: 'cache', path: '/query/stream', body: { query: ANSWERABLE }, kind: 'ndjson-shape' };
    const first = await sendCase(cached.url, KEY, c);
    const again = await sendCase(cached.url, KEY, c);
    assert.ok(ndjson(first.text).length > 2 && ndjson(again.text).length > 2, 'streamed answers are never cached');
    assert.equal((await sendCase(cached.url, KEY, { path: '/query', body: { query: ANSWERABLE } })).status, 200);
    const hit = await sendCase(cached.url, KEY, c);
    assert.equal(cached.llm.requests().filter((r) => r.kind === 'answer').length, 3, 'no LLM call for the hit');
    assert.equal(ndjson(hit.text).length, 1);
    up.setBehaviour('lightrag', { cacheHit: true, times: 1 });
    const mock = await sendCase(up.lightragUrl, KEY, c);
    compare(c, { real: hit, mock });
    assert.deepEqual(Object.keys(ndjson(hit.text)[0]), ['response', 'llm_generated', 'references']);
  } finally {
    await cached.stop();
  }
});
