// Self-test of the mock upstreams: `node --test tests/mock/`.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import {
  startUpstreams,
  keyTerms,
  lightragQueryWeight,
  pyJson,
  LIGHTRAG_NO_CONTEXT,
  LIGHTRAG_NO_RESULT,
  LIGHTRAG_LLM_DOWN_MS,
  splitAt,
} from './upstreams.mjs';
import { CASES, ACCEPTED, elideInputs } from '../real/cases.mjs';

let up;
before(async () => {
  up = await startUpstreams({ lightragKey: 'lr-key', perplexityKey: 'px-key' });
});
after(async () => {
  await up.close();
});
beforeEach(() => up.reset());

const lr = (path, body, headers = {}) =>
  fetch(up.lightragUrl + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': 'lr-key', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
const px = (body, headers = {}) =>
  fetch(up.perplexityUrl + '/chat/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer px-key', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
const ask = (q, extra = {}) => ({ model: 'sonar', messages: [{ role: 'user', content: q }], ...extra });

test('keyTerms drops stop words', () => {
  assert.deepEqual(keyTerms('What is the role of NAD+ in ageing?'), ['nad+', 'ageing']);
});

test('LightRAG /query answers depend on the query and carry references', async () => {
  const r = await lr('/query', { query: 'How does glycolysis regulate lactate?', mode: 'hybrid' });
  assert.equal(r.status, 200);
  const j = await r.json();
  assert.match(j.response, /LightRAG hybrid/);
  assert.match(j.response, /glycolysis/);
  assert.match(j.response, /metabolites/);
  assert.equal(j.references[0].reference_id, '1');
  assert.match(j.references[0].file_path, /glycolysis/);
  const log = up.requests('lightrag');
  assert.equal(log.length, 1);
  assert.equal(log[0].path, '/query');
  assert.equal(log[0].body.mode, 'hybrid');
  assert.equal(log[0].headers['x-api-key'], 'lr-key');
});

test('LightRAG validation and auth', async () => {
  assert.equal((await lr('/query', { query: 'ab' })).status, 422);
  assert.equal((await lr('/query', { query: 'valid query', mode: 'deep' })).status, 422);
  assert.equal((await lr('/query', '{oops')).status, 422);
  assert.equal((await lr('/query', { query: 'glucose' }, { 'x-api-key': 'wrong' })).status, 403);
  const h = await fetch(up.lightragUrl + '/health', { headers: { 'x-api-key': 'lr-key' } });
  assert.equal((await h.json()).status, 'healthy');
  assert.equal((await fetch(up.lightragUrl + '/nope')).status, 404);
});

test('LightRAG /query/stream is NDJSON: references first, then chunks', async () => {
  const r = await lr('/query/stream', { query: 'pyruvate metabolism', mode: 'mix' });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /ndjson/);
  const lines = (await r.text()).trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(lines[0].references.length > 0);
  assert.ok(lines.length > 3);
  const text = lines.slice(1).map((l) => l.response).join('');
  assert.match(text, /pyruvate/);
});

test('Perplexity non-stream: OpenAI shape with citations and search_results', async () => {
  const r = await px(ask('latest news on NAD+ supplements'));
  assert.equal(r.status, 200);
  const j = await r.json();
  assert.equal(j.object, 'chat.completion');
  assert.match(j.choices[0].message.content, /Perplexity sonar/);
  assert.match(j.choices[0].message.content, /nad\+/);
  assert.equal(j.citations.length, 2);
  assert.equal(j.search_results[0].url, j.citations[0]);
});

test('Perplexity stream: real shape, cumulative message, finish_reason, no [DONE]', async () => {
  const r = await px(ask('ketone bodies', { stream: true }));
  assert.match(r.headers.get('content-type'), /text\/event-stream/);
  const events = (await r.text()).split('\r\n\r\n').filter(Boolean).map((e) => e.replace(/^data: /, ''));
  assert.ok(!events.includes('[DONE]'), 'the real API sends no [DONE] (api-discussion#209)');
  const chunks = events.map((e) => JSON.parse(e));
  const text = chunks.map((c) => c.choices[0].delta.content ?? '').join('');
  assert.match(text, /ketone/);
  assert.ok(chunks.every((c) => c.object === 'chat.completion' && c.usage && c.citations.length > 0));
  assert.equal(chunks.at(-1).choices[0].message.content, text, 'message is cumulative');
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
  assert.ok(chunks.slice(0, -1).every((c) => c.choices[0].finish_reason === null));
});

test('Perplexity stream: sendDone appends [DONE] like OpenAI-style proxies', async () => {
  up.setBehaviour('perplexity', { sendDone: true });
  const r = await px(ask('ketone bodies', { stream: true }));
  const events = (await r.text()).split('\r\n\r\n').filter(Boolean);
  assert.equal(events.at(-1), 'data: [DONE]');
});

test('Perplexity auth and malformed body', async () => {
  assert.equal((await px(ask('x'), { authorization: 'Bearer nope' })).status, 401);
  assert.equal((await px('{not json')).status, 400);
  assert.equal((await px({ model: 'sonar', messages: [] })).status, 400);
  const r = await px({ messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(r.status, 400);
  assert.match((await r.json()).error.message, /model/);
});

test('behaviour: status 500 for one request, then healthy', async () => {
  up.setBehaviour('lightrag', { status: 500, times: 1 });
  assert.equal((await lr('/query', { query: 'glucose' })).status, 500);
  assert.equal((await lr('/query', { query: 'glucose' })).status, 200);
});

test('behaviour: html body', async () => {
  up.setBehaviour('perplexity', { status: 502, body: '<html><body>Bad Gateway</body></html>' });
  const r = await px(ask('glucose'));
  assert.equal(r.status, 502);
  assert.match(r.headers.get('content-type'), /text\/html/);
  assert.match(await r.text(), /Bad Gateway/);
});

test('behaviour: reset destroys the connection', async () => {
  up.setBehaviour('perplexity', { reset: true });
  await assert.rejects(px(ask('glucose')));
  assert.equal(up.requests('perplexity').length, 1);
});

test('behaviour: delayMs delays the headers', async () => {
  up.setBehaviour('lightrag', { delayMs: 150, times: 2 });
  // A client with a shorter time-to-first-byte budget gives up.
  await assert.rejects(
    fetch(up.lightragUrl + '/query', {
      method: 'POST',
      headers: { 'x-api-key': 'lr-key' },
      body: JSON.stringify({ query: 'glucose' }),
      signal: AbortSignal.timeout(50),
    }),
  );
  const t0 = Date.now();
  assert.equal((await lr('/query', { query: 'glucose' })).status, 200);
  assert.ok(Date.now() - t0 >= 140);
});

test('behaviour: cutAfterChunks ends the stream abruptly', async () => {
  up.setBehaviour('lightrag', { cutAfterChunks: 2 });
  const r = await lr('/query/stream', { query: 'glucose metabolism' });
  assert.equal(r.status, 200);
  const reader = r.body.getReader();
  let text = '';
  const dec = new TextDecoder();
  await assert.rejects(async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += dec.decode(value, { stream: true });
    }
  });
  assert.equal(text.trim().split('\n').length, 2);
});

test('behaviour: ttfbDelayMs delays the first chunk after headers', async () => {
  up.setBehaviour('perplexity', { ttfbDelayMs: 120 });
  const t0 = Date.now();
  const r = await px(ask('glucose', { stream: true }));
  const tHeaders = Date.now() - t0;
  await r.text();
  assert.ok(tHeaders < 120, `headers after ${tHeaders} ms`);
  assert.ok(Date.now() - t0 >= 120);
});

test('behaviour: chunks splits the answer into about that many stream chunks', async () => {
  // splitChunks puts ceil(words / n) words in each chunk, so n is an upper bound.
  up.setBehaviour('lightrag', { chunks: 12 });
  const r = await lr('/query/stream', { query: 'glucose metabolism' });
  const lines = (await r.text()).trim().split('\n').map((l) => JSON.parse(l));
  const n = lines.filter((l) => 'response' in l).length;
  assert.ok(n >= 9 && n <= 12, `${n} chunks`);
  up.setBehaviour('perplexity', { chunks: 9 });
  const p = await px(ask('glucose metabolism', { stream: true }));
  const m = (await p.text()).split('\r\n\r\n').filter((f) => f.startsWith('data: {')).length;
  assert.ok(m >= 7 && m <= 9, `${m} chunks`);
});

test('behaviour: stallAfterChunks pauses a stream mid-way, then finishes it', async () => {
  up.setBehaviour('lightrag', { stallAfterChunks: 2, stallMs: 300 });
  const r = await lr('/query/stream', { query: 'glucose metabolism' });
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let text = '';
  const arrivals = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    text += dec.decode(value, { stream: true });
    arrivals.push([Date.now(), text.split('\n').length - 1]);
  }
  const before = arrivals.filter(([, n]) => n <= 2).at(-1)[0];
  const after = arrivals.find(([, n]) => n > 2)[0];
  assert.ok(after - before >= 280, `gap ${after - before} ms`);
  assert.equal(text.trim().split('\n').length, 6, 'references + 5 chunks');
});

test('the log says when the caller closed the connection before the response ended', async () => {
  up.setBehaviour('lightrag', { chunks: 20, chunkDelayMs: 100 });
  const ac = new AbortController();
  const r = await fetch(up.lightragUrl + '/query/stream', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': 'lr-key' },
    body: JSON.stringify({ query: 'glucose metabolism' }),
    signal: ac.signal,
  });
  const reader = r.body.getReader();
  await reader.read();
  ac.abort();
  await assert.rejects(reader.read());
  const deadline = Date.now() + 5000;
  while (!up.requests('lightrag')[0].closedEarly && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
  assert.equal(up.requests('lightrag')[0].closedEarly, true);
  // A body the mock cut itself, and one that finished, are not "closed early".
  up.reset();
  up.setBehaviour('lightrag', { cutAfterChunks: 2, times: 1 });
  await lr('/query/stream', { query: 'glucose metabolism' }).then((x) => x.text()).catch(() => {});
  await lr('/query', { query: 'glucose metabolism' }).then((x) => x.text());
  await new Promise((res) => setTimeout(res, 50));
  assert.deepEqual(up.requests('lightrag').map((e) => e.closedEarly), [false, false]);
});

test('CLI prints both URLs and exits cleanly on SIGTERM', async () => {
  const script = fileURLToPath(new URL('./upstreams.mjs', import.meta.url));
  const child = spawn(process.execPath, [script, '--lightrag-port', '0', '--perplexity-port', '0']);
  let out = '';
  await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('PERPLEXITY_BASE_URL=')) resolve();
    });
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`exited early with ${code}`)));
  });
  const url = out.match(/LIGHTRAG_BASE_URL=(\S+)/)[1];
  const r = await fetch(url + '/query', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: 'glucose' }),
  });
  assert.equal(r.status, 200);
  const code = await new Promise((resolve) => {
    child.removeAllListeners('exit');
    child.on('exit', (c) => resolve(c));
    child.kill('SIGTERM');
  });
  assert.equal(code, 0);
});

test('behaviour: cutAfterChunks on a non-streamed body gives a truncated body', async () => {
  up.setBehaviour('perplexity', { cutAfterChunks: 0 });
  const r = await px(ask('glucose'));
  assert.equal(r.status, 200);
  await assert.rejects(r.text());
});

test('behaviour: streamError puts an error line into the stream', async () => {
  up.setBehaviour('lightrag', { streamError: 'LLM timeout' });
  const r = await lr('/query/stream', { query: 'glucose metabolism' });
  const lines = (await r.text()).trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.at(-1).error, 'LLM timeout');
});

// ---- LightRAG 1.5.7 fidelity, offline: the mock against the fixtures captured from the real
// server (tests/fixtures/lightrag/; the live comparison is tests/real/lightrag_wire.test.mjs).

const FIX = new URL('../fixtures/lightrag/', import.meta.url);
const fixture = (name) => readFileSync(new URL(name, FIX), 'utf8');
const manifest = JSON.parse(fixture('manifest.json'));
const captured = (name) => manifest.cases.find((c) => c.name === name);
const stableTime = (text) => text.replace(/"response_time": ?[0-9.]+/g, '"response_time":0');
const ndjsonLines = (text) => text.split('\n').filter(Boolean).map((l) => JSON.parse(l));

/** Sends a tests/real/cases.mjs case to the mock, as sendCase does to the real server. */
async function mockCase(c) {
  const headers = { 'content-type': 'application/json', 'x-api-key': 'lr-key', ...(c.headers || {}) };
  for (const [k, v] of Object.entries(headers)) if (v === '') delete headers[k];
  if (headers['x-api-key'] === 'fixture-key') headers['x-api-key'] = 'lr-key';
  if (c.behaviour) up.setBehaviour('lightrag', { ...c.behaviour, times: 1 });
  const r = await fetch(up.lightragUrl + c.path, {
    method: c.method || 'POST',
    headers,
    body: (c.method || 'POST') === 'GET' ? undefined : c.raw ?? JSON.stringify(c.body),
  });
  return { status: r.status, contentType: r.headers.get('content-type'), text: await r.text() };
}

test('LightRAG fixtures: every byte-exact case (no-context, 422, 413, 403) is what the mock sends', async () => {
  const exact = CASES.filter((c) => c.kind === 'exact');
  assert.ok(exact.length >= 25);
  for (const c of exact) {
    const got = await mockCase(c);
    const want = captured(c.name);
    assert.equal(got.status, want.status, c.name);
    const norm = (t) => stableTime(c.elide ? elideInputs(t) : t);
    assert.equal(norm(got.text), stableTime(fixture(want.file)), c.name);
  }
});

test('LightRAG fixtures: answer shapes, /query references carry content: null', async () => {
  for (const name of ['query_answer', 'query_answer_no_refs']) {
    const c = CASES.find((x) => x.name === name);
    const got = JSON.parse((await mockCase(c)).text);
    const want = JSON.parse(fixture(captured(name).file));
    assert.deepEqual(Object.keys(got), Object.keys(want), name);
    assert.equal(got.llm_generated, true);
    if (want.references) assert.deepEqual(Object.keys(got.references[0]), Object.keys(want.references[0]));
    else assert.equal(got.references, null);
  }
});

test('LightRAG fixtures: stream layouts (references line first, chunks; stream:false one line) in json.dumps bytes', async () => {
  const layout = (text) => {
    const sigs = ndjsonLines(text).map((l) => Object.keys(l).join(','));
    return sigs.filter((x, i) => i === 0 || x !== sigs[i - 1]);
  };
  for (const name of ['query_stream_answer', 'query_stream_answer_no_refs', 'query_stream_stream_false']) {
    const c = CASES.find((x) => x.name === name);
    const got = await mockCase(c);
    assert.match(got.contentType, /application\/x-ndjson/);
    assert.deepEqual(layout(got.text), layout(fixture(captured(name).file)), name);
    for (const line of got.text.split('\n').filter(Boolean)) assert.equal(line, pyJson(JSON.parse(line)));
  }
});

test('LightRAG noContext: the canned reply, one NDJSON line with llm_generated false and no references line', async () => {
  up.setBehaviour('lightrag', { noContext: true, times: 2 });
  const j = await (await lr('/query', { query: 'Who won the football world cup in 1998?' })).json();
  assert.equal(j.response, "Sorry, I'm not able to provide an answer to that question.[no-context]");
  assert.equal(j.response, LIGHTRAG_NO_CONTEXT);
  assert.deepEqual(j.references, []);
  assert.equal(j.llm_generated, false);
  const text = await (await lr('/query/stream', { query: 'Who won the football world cup in 1998?' })).text();
  assert.equal(text, fixture('query_stream_no_context.ndjson'));
  assert.deepEqual(ndjsonLines(text), [{ response: LIGHTRAG_NO_CONTEXT, llm_generated: false, references: [] }]);
});

test('LightRAG llmDown: a slow 200 with "No relevant context found for the query." and llm_generated false', async () => {
  assert.ok(LIGHTRAG_LLM_DOWN_MS >= 7000 && LIGHTRAG_LLM_DOWN_MS <= 9000);
  assert.ok(captured('query_llm_down').elapsed_ms >= 7000, 'the captured server took its retries');
  up.setBehaviour('lightrag', { llmDown: true, llmDownMs: 150, times: 2 });
  const t0 = Date.now();
  const r = await lr('/query', { query: 'How is pyruvate turned into lactate?' });
  assert.ok(Date.now() - t0 >= 140);
  assert.equal(stableTime(await r.text()), stableTime(fixture('query_llm_down.json')));
  const s = await (await lr('/query/stream', { query: 'How is pyruvate turned into lactate?' })).text();
  assert.equal(s, fixture('query_stream_llm_down.ndjson'));
  assert.equal(ndjsonLines(s)[0].response, LIGHTRAG_NO_RESULT);
});

test('LightRAG cacheHit: /query/stream answers in one complete line, like the captured hit', async () => {
  up.setBehaviour('lightrag', { cacheHit: true });
  const text = await (await lr('/query/stream', { query: 'How is pyruvate turned into lactate?' })).text();
  const lines = ndjsonLines(text);
  const want = ndjsonLines(fixture('query_stream_cache_hit.ndjson'));
  assert.equal(lines.length, 1);
  assert.equal(want.length, 1);
  assert.deepEqual(Object.keys(lines[0]), Object.keys(want[0]));
  assert.equal(lines[0].llm_generated, true);
  assert.match(lines[0].response, /LightRAG mix/);
});

test('LightRAG query weight: CJK blocks count 2, the rest 1, after Python-style stripping', () => {
  assert.equal(lightragQueryWeight('ab'), 2);
  assert.equal(lightragQueryWeight('  abc  '), 3);
  assert.equal(lightragQueryWeight('糖'), 2);
  assert.equal(lightragQueryWeight('糖a'), 3);
  assert.equal(lightragQueryWeight('ힰ'), 2, 'Hangul Jamo Extended-B');
  assert.equal(lightragQueryWeight('䷀'), 1, 'Yijing hexagrams sit between two CJK blocks');
  assert.equal(lightragQueryWeight('\ufeffab'), 3, 'U+FEFF is not whitespace to Python');
  assert.equal(lightragQueryWeight('\x1cab\x1f'), 2, '\\x1c-\\x1f are whitespace to Python');
  assert.equal(lightragQueryWeight('𠀀'), 2, 'plane 2');
});

test('LightRAG validation: every request the live server accepted passes the mock too', async () => {
  for (const body of ACCEPTED) {
    const r = await lr('/query', body);
    assert.equal(r.status, 200, `${JSON.stringify(body).slice(0, 80)}: ${(await r.text()).slice(0, 200)}`);
  }
});

test('LightRAG auth and health as 1.5.7: 403 texts, JSON decoded before auth, /health public', async () => {
  const noKey = await fetch(up.lightragUrl + '/query', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: 'glucose' }),
  });
  assert.equal(noKey.status, 403);
  assert.deepEqual(await noKey.json(), { detail: 'API Key required' });
  const wrong = await lr('/query', { query: 'glucose' }, { 'x-api-key': 'wrong' });
  assert.deepEqual(await wrong.json(), { detail: 'Invalid API Key' });
  const bad = await fetch(up.lightragUrl + '/query', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{oops' });
  assert.equal(bad.status, 422, 'a malformed JSON body is refused before the key is checked');
  const h = await fetch(up.lightragUrl + '/health');
  assert.equal(h.status, 200);
  assert.equal((await h.json()).status, 'healthy');
});

test('LightRAG 500 body as utils_api.internal_server_error writes it: generic text and an error id', async () => {
  up.setBehaviour('lightrag', { status: 500, times: 1 });
  const r = await lr('/query', { query: 'glucose' });
  assert.equal(r.status, 500);
  assert.match((await r.json()).detail, /^Internal server error \(error_id: [0-9a-f]{12}\)$/);
});

test('behaviour: echo answers an error quoting the key and headers it received', async () => {
  up.setBehaviour('lightrag', { echo: true });
  const r = await lr('/query', { query: 'glucose metabolism' });
  assert.equal(r.status, 500);
  const text = await r.text();
  assert.match(text, /Incorrect API key provided: lr-key/);
  assert.match(text, /x-api-key/);
  up.setBehaviour('perplexity', { echo: true, status: 401 });
  const p = await px(ask('glucose'));
  assert.equal(p.status, 401);
  assert.match(await p.text(), /Bearer px-key/);
});

test('behaviour: fastChunks + streamForMs: the first lines at once, the rest spread over the time', async () => {
  up.setBehaviour('lightrag', { chunks: 6, fastChunks: 2, streamForMs: 600 });
  const t0 = Date.now();
  const r = await lr('/query/stream', { query: 'glucose metabolism' });
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let text = '';
  let firstText = null;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    text += dec.decode(value, { stream: true });
    if (firstText === null && text.split('\n').length > 2) firstText = Date.now() - t0;
  }
  const took = Date.now() - t0;
  assert.ok(firstText < 300, `the references and the first text after ${firstText} ms`);
  assert.ok(took >= 580, `the stream took ${took} ms`);
  const e = up.requests('lightrag')[0];
  assert.equal(e.chunksSent, text.trim().split('\n').length);
});

test('the log records each request\'s behaviour, the chunks sent and when its response closed', async () => {
  up.setBehaviour('lightrag', { status: 500, times: 1 });
  assert.equal((await lr('/query', { query: 'glucose metabolism' })).status, 500);
  assert.equal((await lr('/query/stream', { query: 'glucose metabolism' })).status, 200);
  await waitForClose(() => up.requests('lightrag'));
  const [a, b] = up.requests('lightrag');
  assert.deepEqual(a.behaviour, { status: 500, times: 1 });
  assert.deepEqual(b.behaviour, {});
  assert.equal(a.chunksSent, 0);
  assert.equal(b.chunksSent, 6, 'references + 5 chunks');
  for (const e of [a, b]) assert.ok(e.endAt >= e.receivedAt && !e.closedEarly);
});

/** Polls until every logged response has closed (its 'close' event may follow the body). */
async function waitForClose(log) {
  const deadline = Date.now() + 5000;
  while (!log().every((e) => e.endAt !== undefined)) {
    if (Date.now() > deadline) throw new Error('responses did not close');
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('LightRAG lineSplits: the same bytes, delivered in pieces cut where asked (the marker split across chunks)', async () => {
  assert.deepEqual(splitAt('abc[no-context]xyz', ['[no-con']), ['abc[no-con', 'text]xyz']);
  assert.deepEqual(splitAt('abcdef', [4, 2, 99, 'zz']), ['ab', 'cd', 'ef']);
  up.setBehaviour('lightrag', { noContext: true, lineSplits: ['[no-con'], chunkDelayMs: 30 });
  const r = await lr('/query/stream', { query: 'Who won the football world cup in 1998?' });
  const pieces = [];
  const dec = new TextDecoder();
  for await (const chunk of r.body) pieces.push(dec.decode(chunk));
  assert.equal(pieces.join(''), fixture('query_stream_no_context.ndjson'), 'byte-identical to the captured reply');
  assert.ok(pieces.length >= 2, `arrived in ${pieces.length} piece(s)`);
  assert.ok(pieces[0].endsWith('[no-con'), JSON.stringify(pieces[0]));
});

test('LightRAG answerText replaces the LLM text; Perplexity annotates claims when its prompt asks for confidence scores', async () => {
  up.setBehaviour('lightrag', { answerText: 'I do not have enough information to answer.' });
  const j = await (await lr('/query', { query: 'How is pyruvate turned into lactate?' })).json();
  assert.equal(j.response, 'I do not have enough information to answer.');
  assert.equal(j.llm_generated, true);
  const ask = (system) =>
    fetch(up.perplexityUrl + '/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer px-key' },
      body: JSON.stringify({ model: 'sonar', messages: [...(system ? [{ role: 'system', content: system }] : []), { role: 'user', content: 'glucose?' }] }),
    }).then((r) => r.json());
  const plain = await ask(null);
  assert.doesNotMatch(plain.choices[0].message.content, /confidence score/);
  const scored = await ask('For each source/claim, provide a confidence score from 0.0-1.0, formatted as (confidence score: X.X)');
  assert.match(scored.choices[0].message.content, /\(confidence score: 0\.9\) \[1\]/);
});
