// Captures the real lightrag-server's replies into tests/fixtures/lightrag/ (bytes as sent, plus
// manifest.json with status, content type and time taken). Re-run after moving the pin in
// scripts/lightrag/setup.sh:   node tests/real/capture.mjs
//
// Why a script and not hand-written fixtures: every fact the mock LightRAG relies on must come
// from the server itself; this is the record of what it sent, reproducible in ~40 s.
import { writeFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { startLightrag, ROOT, LIGHTRAG_VERSION } from './lightrag_server.mjs';
import { CASES, DOCUMENT, ANSWERABLE, UNANSWERABLE, sendCase, elideInputs } from './cases.mjs';

const OUT = path.join(ROOT, 'tests', 'fixtures', 'lightrag');
const KEY = 'fixture-key';
mkdirSync(OUT, { recursive: true });
for (const f of readdirSync(OUT)) if (/\.(json|ndjson)$/.test(f)) rmSync(path.join(OUT, f));

const entries = [];
function requestSummary(c) {
  const body = c.raw ?? (c.body === undefined ? undefined : JSON.stringify(c.body));
  return {
    method: c.method || 'POST',
    path: c.path,
    headers: c.headers,
    body: body && body.length > 300 ? `<${body.length} bytes: ${body.slice(0, 120)}…>` : body,
  };
}
function record(c, got, note) {
  const ext = /ndjson/.test(got.contentType || '') ? 'ndjson' : 'json';
  const file = `${c.name}.${ext}`;
  const text = c.elide ? elideInputs(got.text) : got.text;
  writeFileSync(path.join(OUT, file), text);
  entries.push({
    name: c.name,
    file,
    request: requestSummary(c),
    status: got.status,
    content_type: got.contentType,
    elapsed_ms: got.elapsedMs,
    ...(c.elide ? { elided: 'detail[].input longer than 200 characters' } : {}),
    ...(note ? { note } : {}),
  });
  console.log(`${c.name}: ${got.status} ${got.contentType} ${got.elapsedMs} ms`);
}

const started = Date.now();
let rag = await startLightrag({ apiKey: KEY });
try {
  await rag.insert(DOCUMENT.text, DOCUMENT.fileSource);
  for (const c of CASES) record(c, await sendCase(rag.url, KEY, c));

  rag.llm.setFailure({ cutStreamAfter: 2 });
  record(
    { name: 'query_stream_cut', path: '/query/stream', body: { query: ANSWERABLE } },
    await sendCase(rag.url, KEY, { path: '/query/stream', body: { query: ANSWERABLE } }),
    "the server's LLM dropped the connection after 2 SSE chunks (mock LLM cutStreamAfter: 2)",
  );
  rag.llm.setFailure({ status: 500 });
  rag.llm.clear();
  for (const p of ['/query', '/query/stream']) {
    const c = { name: p === '/query' ? 'query_llm_down' : 'query_stream_llm_down', path: p, body: { query: ANSWERABLE } };
    record(c, await sendCase(rag.url, KEY, c), "every call to the server's LLM answers 500 (mock LLM setFailure({status: 500}))");
  }
  const calls = rag.llm.requests().filter((r) => r.path.endsWith('/chat/completions'));
  const gaps = calls.slice(1).map((r, i) => r.at - calls[i].at);
  entries.push({
    name: 'llm_down_attempts',
    note: `LLM calls during the two LLM-down queries: ${calls.length} (${calls.map((r) => r.kind).join(', ')}); ms between them: ${gaps.join(', ')}`,
  });
} finally {
  await rag.stop();
}

rag = await startLightrag({ apiKey: KEY, llmCache: true });
try {
  await rag.insert(DOCUMENT.text, DOCUMENT.fileSource);
  const c = { path: '/query/stream', body: { query: ANSWERABLE } };
  const j = { path: '/query', body: { query: ANSWERABLE } };
  record({ name: 'query_stream_cache_miss', ...c }, await sendCase(rag.url, KEY, c), 'ENABLE_LLM_CACHE=true, first time');
  record(
    { name: 'query_stream_cache_streamed_not_stored', ...c },
    await sendCase(rag.url, KEY, c),
    'ENABLE_LLM_CACHE=true, same query again: streamed answers are never cached (lightrag/utils.py save_to_cache)',
  );
  record({ name: 'query_cache_store', ...j }, await sendCase(rag.url, KEY, j), 'ENABLE_LLM_CACHE=true: a /query answer is cached');
  record(
    { name: 'query_stream_cache_hit', ...c },
    await sendCase(rag.url, KEY, c),
    'ENABLE_LLM_CACHE=true, after the same query on /query: served from the cache as one complete line',
  );
  record({ name: 'query_cache_hit', ...j }, await sendCase(rag.url, KEY, j), 'ENABLE_LLM_CACHE=true: /query from the cache looks the same');
  const nc = { path: '/query/stream', body: { query: UNANSWERABLE } };
  record({ name: 'query_stream_no_context_cache_on', ...nc }, await sendCase(rag.url, KEY, nc), 'ENABLE_LLM_CACHE=true');
} finally {
  await rag.stop();
}

writeFileSync(
  path.join(OUT, 'manifest.json'),
  JSON.stringify(
    {
      server: `lightrag-hku[api]==${LIGHTRAG_VERSION} (lightrag-server, core 1.5.7, api 0344), PyPI`,
      captured_at: new Date().toISOString(),
      captured_by: 'node tests/real/capture.mjs',
      llm: 'tests/real/mock_llm.mjs (answers are its text; shapes, canned texts and errors are the server\'s)',
      document: DOCUMENT,
      cases: entries,
    },
    null,
    2,
  ) + '\n',
);
console.log(`captured ${entries.length} entries in ${Math.round((Date.now() - started) / 1000)} s`);
