// The requests whose replies are captured from the real lightrag-server into
// tests/fixtures/lightrag/ (tests/real/capture.mjs) and compared, live, with the mock LightRAG
// (tests/real/lightrag_wire.test.mjs). One list, so fixtures and the drift check cannot disagree
// on what was asked.

/** The one document the server indexes (the mock LLM turns its words into graph entities). */
export const DOCUMENT = {
  text:
    'Glycolysis converts glucose into pyruvate in the cytosol. Lactate dehydrogenase reduces pyruvate to ' +
    'lactate when oxygen is scarce. Clinical metabolomics measures lactate and pyruvate in plasma with mass ' +
    'spectrometry.',
  fileSource: 'glycolysis_review.txt',
};
/** Shares words with the document: retrieval finds context, the LLM answers. */
export const ANSWERABLE = 'How is pyruvate turned into lactate?';
/** Shares none: nothing above the cosine threshold, LightRAG's canned no-context reply. */
export const UNANSWERABLE = 'Who won the football world cup in 1998?';

const hist = (n, content = 'x', role = 'user') => Array.from({ length: n }, () => ({ role, content }));

/**
 * `kind` says how a reply is compared: `exact` (bytes, except volatile response_time and an
 * elided echo), `shape` (same keys in the same order, same types, canned texts equal; LLM-written
 * text differs between the mock LLM and the mock LightRAG), `ndjson-shape` (per line).
 * `elide`: the 422 echoes a huge input; fixtures store it elided.
 */
export const CASES = [
  // ---- answers -----------------------------------------------------------------------------
  { name: 'query_answer', path: '/query', body: { query: ANSWERABLE }, kind: 'shape' },
  { name: 'query_answer_no_refs', path: '/query', body: { query: ANSWERABLE, include_references: false }, kind: 'shape' },
  { name: 'query_stream_answer', path: '/query/stream', body: { query: ANSWERABLE }, kind: 'ndjson-shape' },
  {
    name: 'query_stream_answer_no_refs',
    path: '/query/stream',
    body: { query: ANSWERABLE, include_references: false },
    kind: 'ndjson-shape',
  },
  { name: 'query_stream_stream_false', path: '/query/stream', body: { query: ANSWERABLE, stream: false }, kind: 'ndjson-shape' },
  // ---- no context --------------------------------------------------------------------------
  { name: 'query_no_context', path: '/query', body: { query: UNANSWERABLE }, kind: 'exact', behaviour: { noContext: true } },
  {
    name: 'query_stream_no_context',
    path: '/query/stream',
    body: { query: UNANSWERABLE },
    kind: 'exact',
    behaviour: { noContext: true },
  },
  {
    name: 'query_stream_no_context_no_refs',
    path: '/query/stream',
    body: { query: UNANSWERABLE, include_references: false },
    kind: 'exact',
    behaviour: { noContext: true },
  },
  // ---- validation (422), limits (413), auth (403), health ----------------------------------
  { name: '422_too_short', path: '/query', body: { query: 'ab' }, kind: 'exact' },
  { name: '422_too_short_stream', path: '/query/stream', body: { query: ' ab ' }, kind: 'exact' },
  { name: '422_too_short_cjk', path: '/query', body: { query: '糖' }, kind: 'exact' },
  { name: '422_too_short_yijing', path: '/query', body: { query: '䷀䷁' }, kind: 'exact' },
  { name: '422_empty', path: '/query', body: { query: '   ' }, kind: 'exact' },
  { name: '422_empty_bypass', path: '/query', body: { query: ' ', mode: 'bypass' }, kind: 'exact' },
  { name: '422_missing_query', path: '/query', body: { mode: 'mix' }, kind: 'exact' },
  { name: '422_query_not_string', path: '/query', body: { query: 5 }, kind: 'exact' },
  { name: '422_mode', path: '/query', body: { query: 'glucose', mode: 'deep' }, kind: 'exact' },
  { name: '422_body_not_object', path: '/query', body: [1], kind: 'exact' },
  { name: '422_json_invalid', path: '/query', raw: '{oops', kind: 'json_invalid' },
  {
    name: '422_not_json_content_type',
    path: '/query',
    raw: '{"query":"glucose"}',
    headers: { 'content-type': 'text/plain' },
    kind: 'exact',
  },
  { name: '422_history_not_list', path: '/query', body: { query: ANSWERABLE, conversation_history: 'hello' }, kind: 'exact' },
  {
    name: '422_history_entry_not_dict',
    path: '/query',
    body: { query: ANSWERABLE, conversation_history: ['hi', 5] },
    kind: 'exact',
  },
  {
    name: '422_history_no_role',
    path: '/query',
    body: { query: ANSWERABLE, conversation_history: [{ content: 'x' }] },
    kind: 'exact',
  },
  {
    name: '422_history_role_empty',
    path: '/query',
    body: { query: ANSWERABLE, conversation_history: [{ role: ' ', content: 'x' }] },
    kind: 'exact',
  },
  {
    name: '422_history_role_too_long',
    path: '/query',
    body: { query: ANSWERABLE, conversation_history: hist(1, 'x', 'r'.repeat(65)) },
    kind: 'exact',
  },
  {
    name: '422_history_no_content',
    path: '/query',
    body: { query: ANSWERABLE, conversation_history: [{ role: 'user' }] },
    kind: 'exact',
  },
  {
    name: '422_history_content_not_string',
    path: '/query',
    body: { query: ANSWERABLE, conversation_history: [{ role: 'user', content: 5 }] },
    kind: 'exact',
  },
  { name: '422_history_too_many', path: '/query', body: { query: ANSWERABLE, conversation_history: hist(129) }, kind: 'exact' },
  {
    name: '422_history_content_too_long',
    path: '/query',
    body: { query: ANSWERABLE, conversation_history: hist(1, 'x'.repeat(32 * 1024 + 1)) },
    kind: 'exact',
    elide: true,
  },
  {
    name: '422_total_too_long',
    path: '/query',
    body: { query: ANSWERABLE, conversation_history: hist(5, 'x'.repeat(30000)) },
    kind: 'exact',
    elide: true,
  },
  { name: '422_query_too_long', path: '/query', body: { query: 'x'.repeat(64 * 1024 + 1) }, kind: 'exact', elide: true },
  {
    name: '422_user_prompt_too_long',
    path: '/query',
    body: { query: ANSWERABLE, user_prompt: 'u'.repeat(64 * 1024 + 1) },
    kind: 'exact',
    elide: true,
  },
  { name: '422_two_field_errors', path: '/query', body: { query: 'glucose', mode: 'deep', conversation_history: 'x' }, kind: 'exact' },
  { name: '413_body_too_large', path: '/query', body: { query: 'x'.repeat(1100 * 1024) }, kind: 'exact' },
  { name: '403_api_key_required', path: '/query', body: { query: 'ab' }, headers: { 'x-api-key': '' }, kind: 'exact' },
  { name: '403_invalid_api_key', path: '/query/stream', body: { query: ANSWERABLE }, headers: { 'x-api-key': 'wrong' }, kind: 'exact' },
  { name: 'health_public', path: '/health', method: 'GET', headers: { 'x-api-key': '' }, kind: 'health' },
];

/**
 * Requests that pass validation on the live server (checked by the wire test beside the 422s):
 * the limits are inclusive, history roles are free strings, extra keys are allowed.
 */
export const ACCEPTED = [
  { query: 'abc' },
  { query: '糖酵' },
  { query: '糖a' },
  { query: 'ힰힱ' }, // Hangul Jamo Extended-B weighs 2 on the server
  { query: 'hi', mode: 'bypass' },
  { query: ANSWERABLE, conversation_history: hist(128) },
  { query: ANSWERABLE, conversation_history: [{ role: 'robot', content: 'x', name: 'extra keys allowed' }] },
  { query: ANSWERABLE, conversation_history: hist(1, 'x'.repeat(32 * 1024), 'r'.repeat(64)) },
  { query: 'x'.repeat(64 * 1024) },
];

/**
 * A body whose model-facing text (query + user_prompt + serialized history, as LightRAG's
 * input_limits.py counts it) is exactly `total` characters, measured with `measure`.
 */
export function bodyWithTotal(total, measure) {
  const body = { query: 'abc', conversation_history: hist(4, 'x'.repeat(32 * 1024)) };
  const over = measure(body) - total;
  if (over < 0 || over > 32 * 1024) throw new Error(`bodyWithTotal: cannot reach ${total}`);
  body.conversation_history[3].content = 'x'.repeat(32 * 1024 - over);
  return body;
}

/** Sends one case to a server (real or mock) and returns what came back, with the time taken. */
export async function sendCase(baseUrl, apiKey, c) {
  const headers = { 'content-type': 'application/json', ...(apiKey ? { 'x-api-key': apiKey } : {}), ...(c.headers || {}) };
  for (const [k, v] of Object.entries(headers)) if (v === '') delete headers[k];
  const t0 = performance.now();
  const r = await fetch(baseUrl + c.path, {
    method: c.method || 'POST',
    headers,
    body: (c.method || 'POST') === 'GET' ? undefined : c.raw ?? JSON.stringify(c.body),
  });
  const text = await r.text();
  return { status: r.status, contentType: r.headers.get('content-type'), text, elapsedMs: Math.round(performance.now() - t0) };
}

/** A 422 body with each echoed `input` longer than 200 characters replaced by a marker. */
export function elideInputs(text) {
  const j = JSON.parse(text);
  for (const d of j.detail || []) {
    const n = JSON.stringify(d.input).length;
    if (n > 200) d.input = `<elided: ${n} characters of JSON echoed from the request>`;
  }
  return JSON.stringify(j);
}
