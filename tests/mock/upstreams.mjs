// Mock upstreams for the edge router: a LightRAG-like server and a Perplexity-like server, real
// HTTP on 127.0.0.1, speaking the real wire formats (see src/core/wire/). Used by `make dev` and
// by integration tests, with fault injection (status, delays, resets, cut streams, HTML bodies,
// and `echo`: an error body quoting the credentials and headers the mock received).
//
// The LightRAG half speaks what the real lightrag-server 1.5.7 sends, captured from it
// (tests/fixtures/lightrag/README.md, re-checked live by tests/real/lightrag_wire.test.mjs):
// behaviours `noContext`, `llmDown`, `cacheHit` give its three single-line replies, and requests
// are validated as its QueryRequest model does (422 bodies in FastAPI's shape). `lineSplits`
// delivers each NDJSON line in pieces (cut after each given string or at each character offset):
// the server writes a line at once, but TCP and any proxy on the way may split it anywhere, so
// the router must not care where (the "marker split across chunks" case). `answerText` replaces
// the mock LLM's answer text (an LLM that declines in its own words).
//
// The Perplexity half annotates its claims with `(confidence score: X.X)` before their citation
// numbers when the system prompt asks for it (the previous service's prompt does; the real model
// follows that instruction, as the previous service's own parser of those annotations shows).
//
// Node 20+, ESM, no dependencies.
//
//   import { startUpstreams } from './tests/mock/upstreams.mjs';
//   const up = await startUpstreams({ lightragKey: 'k1', perplexityKey: 'k2' });
//   up.setBehaviour('lightrag', { status: 500, times: 1 });
//   ... up.requests('lightrag') ... up.reset(); await up.close();
//
// CLI: node tests/mock/upstreams.mjs --lightrag-port 9621 --perplexity-port 9622
//        [--lightrag-key K] [--perplexity-key K]
// prints LIGHTRAG_BASE_URL=... and PERPLEXITY_BASE_URL=... and runs until SIGINT/SIGTERM.

import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';

const UPSTREAMS = ['lightrag', 'perplexity'];
const LIGHTRAG_MODES = ['local', 'global', 'hybrid', 'naive', 'mix', 'bypass'];
const STOP_WORDS = new Set(
  ('a an and are as at be by can do does for from how in is it its of on or the this to was what when where which who why with ' +
    'about between into latest recent news tell me explain role effect effects affect').split(' '),
);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Key terms of a query: lower-cased words of 3+ letters that are not stop words, in order, unique. */
export function keyTerms(query) {
  const words = String(query).toLowerCase().match(/[\p{L}\p{N}+-]{3,}/gu) || [];
  return [...new Set(words.filter((w) => !STOP_WORDS.has(w)))].slice(0, 4);
}

/** Splits text into `n` roughly equal chunks on word boundaries (each chunk keeps its spaces). */
export function splitChunks(text, n = 5) {
  const words = text.split(/(?<= )/);
  const per = Math.max(1, Math.ceil(words.length / n));
  const out = [];
  for (let i = 0; i < words.length; i += per) out.push(words.slice(i, i + per).join(''));
  return out;
}

// ---- LightRAG 1.5.7 facts (source next to each; fixtures in tests/fixtures/lightrag/) --------

/** The canned no-context reply: lightrag/prompt.py PROMPTS["fail_response"] (fixture query_no_context.json). */
export const LIGHTRAG_NO_CONTEXT = "Sorry, I'm not able to provide an answer to that question.[no-context]";
/**
 * What /query and /query/stream substitute when the query produced no content, e.g. when the
 * server's own LLM fails (lightrag/api/routers/query_routes.py; fixture query_llm_down.json).
 */
export const LIGHTRAG_NO_RESULT = 'No relevant context found for the query.';
/** ~8.1 s measured: 3 LLM attempts, tenacity wait 4 s between them (lightrag/llm/openai.py). */
export const LIGHTRAG_LLM_DOWN_MS = 8000;
/** lightrag/constants.py (1.5.7): not env knobs. */
export const LIGHTRAG_LIMITS = Object.freeze({
  MAX_QUERY_CHARS: 64 * 1024,
  MAX_MESSAGE_CHARS: 32 * 1024,
  MAX_REQUEST_TEXT_CHARS: 128 * 1024,
  MAX_MESSAGES_PER_REQUEST: 128,
  MAX_ROLE_CHARS: 64,
  MIN_RAG_QUERY_WEIGHT: 3,
  MAX_REQUEST_BODY_BYTES: 1024 * 1024,
});
const TOO_SHORT =
  'RAG query is too short. Enter at least 3 English characters or an equivalent combination where each ' +
  'Chinese, Japanese or Korean character counts as 2.'; // lightrag/query_validation.py _TOO_SHORT_MESSAGE

// lightrag/query_validation.py _WIDE_CODEPOINT_RANGES: whole CJK blocks weigh 2 (verified live:
// '糖' → 422, '糖酵' and '糖a' → 200, U+4DC0 Yijing hexagrams weigh 1, U+D7B0 Hangul Jamo Ext-B 2).
const WIDE_RANGES = [
  [0x1100, 0x11ff], [0x2e80, 0x33ff], [0x3400, 0x4dbf], [0x4e00, 0x9fff], [0xa960, 0xa97f], [0xac00, 0xd7ff],
  [0xf900, 0xfaff], [0xfe30, 0xfe4f], [0xff00, 0xffee], [0x16fe0, 0x16fff], [0x1aff0, 0x1b2ff], [0x20000, 0x3fffd],
];
// Python's str.isspace() set, which str.strip() removes: unlike JS \s it has \x1c-\x1f and \x85
// and lacks U+FEFF (the wire test found that one: '\ufeff\ufeff' is "too short", not "empty").
const PY_WS = '[\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]';
const PY_STRIP = new RegExp(`^${PY_WS}+|${PY_WS}+$`, 'g');
/** Python's str.strip(). */
const pyStrip = (s) => s.replace(PY_STRIP, '');
/** Length in code points, as Python's len(). */
const pyLen = (s) => [...s].length;

/** LightRAG's English-equivalent query weight: each character of a CJK block counts 2. */
export function lightragQueryWeight(query) {
  let w = 0;
  for (const ch of pyStrip(String(query))) {
    const cp = ch.codePointAt(0);
    w += WIDE_RANGES.some(([a, b]) => cp >= a && cp <= b) ? 2 : 1;
  }
  return w;
}

/**
 * Python json.dumps() with its default ", " / ": " separators: with `ascii` (the default, as
 * /query/stream writes its NDJSON lines) every character outside ' '..'~' is a \uXXXX escape.
 */
export function pyJson(v, ascii = true) {
  if (Array.isArray(v)) return `[${v.map((x) => pyJson(x, ascii)).join(', ')}]`;
  if (v && typeof v === 'object') {
    const entries = Object.entries(v).filter(([, x]) => x !== undefined);
    return `{${entries.map(([k, x]) => `${pyJson(k, ascii)}: ${pyJson(x, ascii)}`).join(', ')}}`;
  }
  if (typeof v === 'string') {
    const s = JSON.stringify(v);
    return ascii ? s.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) : s;
  }
  return JSON.stringify(v ?? null);
}

const detail = (type, loc, msg, input, ctx) => ({ type, loc: ['body', ...loc], msg, input, ...(ctx ? { ctx } : {}) });
const valueError = (loc, msg, input) => detail('value_error', loc, `Value error, ${msg}`, input, { error: {} });

/**
 * lightrag/api/input_limits.py count_conversation_input_chars: query + user_prompt +
 * json.dumps(history, ensure_ascii=False), in code points (the query already stripped).
 */
export function lightragRequestTextChars(body) {
  const h = body.conversation_history;
  return pyLen(body.query ?? '') + pyLen(body.user_prompt ?? '') + (Array.isArray(h) && h.length ? pyLen(pyJson(h, false)) : 0);
}

/** One conversation_history entry's error, in the order QueryRequest checks (query_routes.py). */
function historyEntryError(m) {
  const L = LIGHTRAG_LIMITS;
  if (!('role' in m)) return "Each message must have a 'role' key.";
  if (typeof m.role !== 'string' || !pyStrip(m.role)) return "Each message 'role' must be a non-empty string.";
  if (pyLen(m.role) > L.MAX_ROLE_CHARS) return `Each message 'role' must be at most ${L.MAX_ROLE_CHARS} characters.`;
  if (!('content' in m)) return "Each message must have a 'content' key.";
  if (typeof m.content !== 'string') return "Each message 'content' must be a string.";
  if (pyLen(m.content) > L.MAX_MESSAGE_CHARS) return `Each message 'content' must be at most ${L.MAX_MESSAGE_CHARS} characters.`;
  return null;
}

/**
 * Validates a parsed /query body as LightRAG's pydantic QueryRequest does and returns the 422
 * body, or null when valid. Field errors are all reported, in field order; the model checks
 * (query minimum, then the total text budget) run only when the fields are valid. Bodies are
 * byte-identical to the server's (fixtures 422_*.json).
 */
export function lightragValidate(body) {
  const L = LIGHTRAG_LIMITS;
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return { detail: [detail('model_attributes_type', [], 'Input should be a valid dictionary or object to extract fields from', body)] };
  }
  const errs = [];
  if (!('query' in body)) errs.push(detail('missing', ['query'], 'Field required', body));
  else if (typeof body.query !== 'string') errs.push(detail('string_type', ['query'], 'Input should be a valid string', body.query));
  else if (pyLen(body.query) > L.MAX_QUERY_CHARS) {
    errs.push(detail('string_too_long', ['query'], `String should have at most ${L.MAX_QUERY_CHARS} characters`, body.query, { max_length: L.MAX_QUERY_CHARS }));
  } else if (!pyStrip(body.query)) errs.push(valueError(['query'], 'Query must not be empty.', body.query));
  if ('mode' in body && !LIGHTRAG_MODES.includes(body.mode)) {
    const expected = "'local', 'global', 'hybrid', 'naive', 'mix' or 'bypass'";
    errs.push(detail('literal_error', ['mode'], `Input should be ${expected}`, body.mode, { expected }));
  }
  const hist = body.conversation_history;
  if (hist !== undefined && hist !== null) {
    if (!Array.isArray(hist)) errs.push(detail('list_type', ['conversation_history'], 'Input should be a valid list', hist));
    else {
      const notDicts = hist.flatMap((m, i) =>
        m === null || typeof m !== 'object' || Array.isArray(m)
          ? [detail('dict_type', ['conversation_history', i], 'Input should be a valid dictionary', m)]
          : [],
      );
      if (notDicts.length) errs.push(...notDicts);
      else if (hist.length > L.MAX_MESSAGES_PER_REQUEST) {
        errs.push(valueError(['conversation_history'], `conversation_history must hold at most ${L.MAX_MESSAGES_PER_REQUEST} messages`, hist));
      } else {
        const msg = hist.map(historyEntryError).find(Boolean);
        if (msg) errs.push(valueError(['conversation_history'], msg, hist));
      }
    }
  }
  if (typeof body.user_prompt === 'string' && pyLen(body.user_prompt) > L.MAX_QUERY_CHARS) {
    errs.push(detail('string_too_long', ['user_prompt'], `String should have at most ${L.MAX_QUERY_CHARS} characters`, body.user_prompt, { max_length: L.MAX_QUERY_CHARS }));
  }
  if (errs.length) return { detail: errs };
  const query = pyStrip(body.query);
  if ((body.mode ?? 'mix') !== 'bypass' && lightragQueryWeight(query) < L.MIN_RAG_QUERY_WEIGHT) {
    return { detail: [valueError([], TOO_SHORT, body)] };
  }
  const total = lightragRequestTextChars({ ...body, query });
  if (total > L.MAX_REQUEST_TEXT_CHARS) {
    return { detail: [valueError([], `total request text is ${total} characters, over the ${L.MAX_REQUEST_TEXT_CHARS} character limit`, body)] };
  }
  return null;
}

function lightragAnswer(query, mode) {
  const terms = keyTerms(query);
  const topic = terms.length ? terms.join(', ') : 'the question';
  const response =
    `[LightRAG ${mode}] Knowledge-graph answer about ${topic}. ` +
    `In the indexed metabolomics literature, ${terms[0] || 'this topic'} is connected to metabolites ` +
    `such as glucose, lactate and pyruvate through glycolysis and the TCA cycle; ` +
    `mass spectrometry studies report these relationships in clinical cohorts.`;
  const slug = (terms[0] || 'metabolomics').replace(/[^a-z0-9]+/g, '_');
  const references = [
    { reference_id: '1', file_path: `papers/${slug}_review_2024.pdf` },
    { reference_id: '2', file_path: 'hmdb/HMDB0000122_glucose.xml' },
  ];
  return { response, references };
}

function perplexityAnswer(query, model, annotate = false) {
  const terms = keyTerms(query);
  const topic = terms.length ? terms.join(', ') : 'the question';
  const q = encodeURIComponent(terms.join(' ') || 'metabolomics');
  // With a prompt asking for confidence scores, each claim carries one before its citations.
  const content = annotate
    ? `[Perplexity ${model}] Web answer about ${topic}. ` +
      `Research on ${terms[0] || 'this topic'} links it to glycolysis (confidence score: 0.9) [1] ` +
      `and new clinical metabolomics findings were published this year (confidence score: 0.7) [2].`
    : `[Perplexity ${model}] Web answer about ${topic}. ` +
      `According to recent sources [1][2], research on ${terms[0] || 'this topic'} ` +
      `continues to evolve, with new clinical metabolomics findings published this year.`;
  const citations = [`https://pubmed.ncbi.nlm.nih.gov/?term=${q}`, `https://hmdb.ca/unearth/q?query=${q}`];
  const search_results = [
    { title: `PubMed results for ${topic}`, url: citations[0], date: '2025-01-15' },
    { title: `HMDB search: ${topic}`, url: citations[1], date: null },
  ];
  return { content, citations, search_results };
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendJson(res, status, obj, extraHeaders = {}) {
  const body = JSON.stringify(obj);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...extraHeaders,
  });
  res.end(body);
}

function destroy(res) {
  // An abrupt end: no terminating chunk, the client sees a reset / truncated body.
  res.mockCut = true;
  res.socket?.destroy();
}

/**
 * Writes `chunks` as a streamed body, honouring ttfbDelayMs / chunkDelayMs / cutAfterChunks and
 * stallAfterChunks + stallMs (a healthy start, then silence, then the rest: a stalled stream).
 * `fastChunks` (default 1) chunks go out before the first gap; `streamForMs` spreads the rest
 * evenly over that long instead of chunkDelayMs (a slow but steady stream of a known length,
 * whatever the answer's chunk count: LightRAG's references line and first text at once, then
 * the text over `streamForMs`). Returns once the body is ended (or cut, or the client went away).
 */
async function streamChunks(res, chunks, behaviour, contentType) {
  res.writeHead(200, {
    'content-type': contentType,
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  res.flushHeaders();
  if (behaviour.ttfbDelayMs) await sleep(behaviour.ttfbDelayMs);
  const cut = Number.isInteger(behaviour.cutAfterChunks) ? behaviour.cutAfterChunks : Infinity;
  const fast = Math.max(1, behaviour.fastChunks ?? 1);
  const gap = behaviour.streamForMs ? behaviour.streamForMs / Math.max(1, chunks.length - fast) : (behaviour.chunkDelayMs ?? 2);
  for (let i = 0; i < chunks.length; i++) {
    if (i >= cut) {
      destroy(res);
      return;
    }
    if (i >= fast && gap) await sleep(gap);
    if (i > 0 && i === behaviour.stallAfterChunks) await sleep(behaviour.stallMs ?? 0);
    if (res.destroyed) return;
    // Wait until the chunk is handed to the socket, so a later cut never swallows it.
    await new Promise((resolve) => res.write(chunks[i], () => resolve()));
    if (res.mockEntry) res.mockEntry.chunksSent += 1;
  }
  res.end();
}

/** Applies the pre-response part of a behaviour; returns true when the response was already handled. */
async function applyFaults(req, res, behaviour, errorBody) {
  if (behaviour.delayMs) await sleep(behaviour.delayMs);
  if (res.destroyed) return true;
  if (behaviour.reset) {
    res.mockCut = true;
    req.socket.destroy();
    return true;
  }
  if (behaviour.echo) {
    // Not something LightRAG or Perplexity send: a misbehaving upstream (or a proxy in front of
    // one) whose error quotes what it received, the router's key among it, as some provider
    // errors quote a refused key. The router must keep all of it from clients, logs and KV.
    const key = req.headers['x-api-key'] ?? req.headers.authorization ?? '';
    const text = `Incorrect API key provided: ${key}. Request headers: ${JSON.stringify(req.headers)}`;
    sendJson(res, behaviour.status ?? 500, { detail: text, error: { message: text } });
    return true;
  }
  if (behaviour.body !== undefined) {
    const body = String(behaviour.body);
    const status = behaviour.status ?? 200;
    res.writeHead(status, {
      'content-type': behaviour.contentType ?? (body.trimStart().startsWith('<') ? 'text/html' : 'application/json'),
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
    return true;
  }
  if (behaviour.status && behaviour.status !== 200) {
    sendJson(res, behaviour.status, errorBody(behaviour.status), behaviour.headers ?? {});
    return true;
  }
  return false;
}

function createState(opts) {
  return {
    keys: { lightrag: opts.lightragKey ?? null, perplexity: opts.perplexityKey ?? null },
    behaviours: { lightrag: null, perplexity: null },
    logs: { lightrag: [], perplexity: [] },
  };
}

/** The behaviour for the next request; a behaviour with `times` is consumed `times` requests. */
function takeBehaviour(state, upstream) {
  const b = state.behaviours[upstream];
  if (!b) return {};
  if (Number.isInteger(b.times)) {
    if (b.times <= 1) state.behaviours[upstream] = null;
    else state.behaviours[upstream] = { ...b, times: b.times - 1 };
  }
  return b;
}

/**
 * Logs a request. `closedEarly` becomes true when the caller (the router) closed the connection
 * before the mock finished its response — an aborted fetch — as opposed to a cut the mock made;
 * `behaviour` is the behaviour it was answered with ({} when healthy); `chunksSent` counts the
 * streamed chunks handed to the socket; `endAt` is when its connection's response closed
 * (epoch ms; `finishedAt` when the mock finished it, null when it did not).
 */
function logRequest(state, upstream, req, res, raw) {
  let body = raw;
  try {
    body = raw ? JSON.parse(raw) : null;
  } catch {
    /* keep the raw text */
  }
  const entry = {
    method: req.method,
    path: req.url,
    headers: { ...req.headers },
    body,
    raw,
    closedEarly: false,
    behaviour: {},
    chunksSent: 0,
    receivedAt: Date.now(),
    finishedAt: null,
  };
  res.mockEntry = entry;
  res.on('finish', () => {
    entry.finishedAt = Date.now();
  });
  res.on('close', () => {
    entry.endAt = Date.now();
    if (!res.writableFinished && !res.mockCut) entry.closedEarly = true;
  });
  state.logs[upstream].push(entry);
  return entry;
}

/** FastAPI's JSON-decode 422 (fixture 422_json_invalid.json; ctx.error is Python's json message). */
function jsonInvalid(raw, e) {
  const pos = Number((String(e.message).match(/position (\d+)/) || [])[1] ?? 0);
  return { detail: [{ type: 'json_invalid', loc: ['body', pos], msg: 'JSON decode error', input: {}, ctx: { error: 'Expecting value' } }] };
}

/** lightrag/api/utils_api.py internal_server_error(): generic text plus a 12-hex correlation id. */
export function lightrag500Body() {
  return { detail: `Internal server error (error_id: ${randomBytes(6).toString('hex')})` };
}

/**
 * Cuts `text` into pieces after each of `splits`: a string (cut right after its first occurrence)
 * or a character offset. Pieces are never empty.
 */
export function splitAt(text, splits = []) {
  const cuts = [];
  for (const sp of splits) {
    const at = typeof sp === 'number' ? sp : text.indexOf(sp) >= 0 ? text.indexOf(sp) + sp.length : -1;
    if (at > 0 && at < text.length) cuts.push(at);
  }
  cuts.sort((a, b) => a - b);
  const out = [];
  let from = 0;
  for (const c of cuts) {
    if (c > from) out.push(text.slice(from, c));
    from = c;
  }
  out.push(text.slice(from));
  return out;
}

/** NDJSON lines as the chunks to write: each line whole, or in pieces with `lineSplits`. */
function lineChunks(lines, behaviour) {
  return behaviour.lineSplits ? lines.flatMap((l) => splitAt(l, behaviour.lineSplits)) : lines;
}

/** The single NDJSON line LightRAG writes for a complete (non-streamed) result (query_routes.py). */
function completeLine(response, llmGenerated, references, includeRefs) {
  const line = { response, llm_generated: llmGenerated };
  if (includeRefs) line.references = references;
  return pyJson(line) + '\n';
}

function lightragHandler(state) {
  return async (req, res) => {
    const raw = await readBody(req);
    const path = (req.url || '/').split('?')[0];
    const entry = logRequest(state, 'lightrag', req, res, raw);
    const behaviour = takeBehaviour(state, 'lightrag');
    entry.behaviour = behaviour;
    const errorBody = (s) => (s === 500 ? lightrag500Body() : { detail: `mock LightRAG failure (status ${s})` });
    if (await applyFaults(req, res, behaviour, errorBody)) return;

    // BodyLimitMiddleware runs first (fixture 413_body_too_large.json; note json.dumps spacing).
    if (Buffer.byteLength(raw) > LIGHTRAG_LIMITS.MAX_REQUEST_BODY_BYTES) {
      const body = pyJson({ detail: `Request body too large. This endpoint accepts at most ${LIGHTRAG_LIMITS.MAX_REQUEST_BODY_BYTES} bytes.` });
      res.writeHead(413, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      return res.end(body);
    }
    if (path !== '/health' && path !== '/query' && path !== '/query/stream') {
      return sendJson(res, 404, { detail: 'Not Found' });
    }
    const expected = state.keys.lightrag;
    const given = req.headers['x-api-key'];
    const authorized = !expected || given === expected;
    if (path === '/health') {
      if (req.method !== 'GET') return sendJson(res, 405, { detail: 'Method Not Allowed' });
      // 1.5.7: /health is a public liveness probe (always 200); configuration only with a valid key
      // (fixtures health_public.json / health_authorized.json).
      const pub = { status: 'healthy', auth_mode: 'disabled', core_version: '1.5.7', api_version: '0344' };
      return sendJson(res, 200, authorized ? { ...pub, working_directory: '/mock/rag_storage' } : pub);
    }
    if (req.method !== 'POST') return sendJson(res, 405, { detail: 'Method Not Allowed' });
    // FastAPI decodes a JSON body before the auth dependency runs, so a malformed body is a 422
    // even without a key (fixture 422_json_invalid.json); any other content type is not decoded.
    const isJson = /^application\/(.+\+)?json/i.test(req.headers['content-type'] || '');
    let body = raw;
    if (isJson) {
      if (!raw.length) body = null;
      else {
        try {
          body = JSON.parse(raw);
        } catch (e) {
          return sendJson(res, 422, jsonInvalid(raw, e));
        }
      }
    }
    // Auth (utils_api.get_combined_auth_dependency): 403 for a missing/empty or a wrong X-API-Key.
    if (!authorized) return sendJson(res, 403, { detail: given ? 'Invalid API Key' : 'API Key required' });
    if (body === null) return sendJson(res, 422, { detail: [{ type: 'missing', loc: ['body'], msg: 'Field required', input: null }] });
    const invalid = lightragValidate(body);
    if (invalid) return sendJson(res, 422, invalid);

    const mode = body.mode ?? 'mix';
    const query = pyStrip(body.query);
    const includeRefs = body.include_references !== false;
    const stream = path === '/query/stream';

    // Replies that are not LLM-written answers: one complete result (query_routes.py).
    let canned = null;
    if (behaviour.noContext) canned = { text: LIGHTRAG_NO_CONTEXT }; // fixtures query_no_context.*
    if (behaviour.llmDown) {
      // fixtures query_llm_down.*: 200 after LightRAG's own retries, nothing generated.
      await sleep(behaviour.llmDownMs ?? LIGHTRAG_LLM_DOWN_MS);
      if (res.destroyed) return;
      canned = { text: LIGHTRAG_NO_RESULT };
    }
    if (canned) {
      if (!stream) {
        return sendJson(res, 200, {
          response: canned.text,
          references: includeRefs ? [] : null,
          response_time: 0.07,
          llm_generated: false,
        });
      }
      return streamChunks(res, lineChunks([completeLine(canned.text, false, [], includeRefs)], behaviour), behaviour, 'application/x-ndjson');
    }

    const answer = lightragAnswer(query, mode);
    if (behaviour.answerText !== undefined) answer.response = String(behaviour.answerText);
    if (!stream) {
      if (behaviour.cutAfterChunks !== undefined) {
        // A non-streamed body cut half-way.
        const full = JSON.stringify({ response: answer.response, references: answer.references });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(full) });
        await new Promise((resolve) => res.write(full.slice(0, Math.floor(full.length / 2)), () => resolve()));
        destroy(res);
        return;
      }
      if (behaviour.ttfbDelayMs) await sleep(behaviour.ttfbDelayMs);
      // fixture query_answer.json: /query references carry `content: null` (ReferenceItem.content).
      return sendJson(res, 200, {
        response: answer.response,
        references: includeRefs ? answer.references.map((r) => ({ ...r, content: null })) : null,
        response_time: 0.01,
        llm_generated: true,
      });
    }
    // `stream: false` and LLM-cache hits are one complete line, no references line first
    // (fixtures query_stream_stream_false.ndjson, query_stream_cache_hit.ndjson).
    if (body.stream === false || behaviour.cacheHit) {
      return streamChunks(res, lineChunks([completeLine(answer.response, true, answer.references, includeRefs)], behaviour), behaviour, 'application/x-ndjson');
    }
    // `endlessLineBytes`: a line that never ends — `{"response": "` and then that many bytes
    // of text without a newline, in 64 KiB writes — as a broken upstream might send.
    if (behaviour.endlessLineBytes) {
      const piece = 'x'.repeat(64 * 1024);
      const pieces = ['{"response": "', ...Array.from({ length: Math.ceil(behaviour.endlessLineBytes / piece.length) }, () => piece)];
      return streamChunks(res, pieces, behaviour, 'application/x-ndjson');
    }
    // fixture query_stream_answer.ndjson: a references line first, then {"response": chunk} lines.
    const lines = [];
    if (includeRefs) lines.push(pyJson({ references: answer.references }) + '\n');
    for (const c of splitChunks(answer.response, behaviour.chunks ?? 5)) lines.push(pyJson({ response: c }) + '\n');
    // fixture query_stream_cut.ndjson: a generation error mid-stream is an {"error": ...} line.
    if (behaviour.streamError) lines.push(pyJson({ error: String(behaviour.streamError) }) + '\n');
    await streamChunks(res, lineChunks(lines, behaviour), behaviour, 'application/x-ndjson');
  };
}

function perplexityError(status, message, type = 'invalid_request_error') {
  return { error: { message, type, code: status } };
}

function perplexityHandler(state) {
  return async (req, res) => {
    const raw = await readBody(req);
    const path = (req.url || '/').split('?')[0];
    const entry = logRequest(state, 'perplexity', req, res, raw);
    const behaviour = takeBehaviour(state, 'perplexity');
    entry.behaviour = behaviour;
    if (await applyFaults(req, res, behaviour, (s) => perplexityError(s, `mock Perplexity failure (status ${s})`, 'api_error')))
      return;

    if (path !== '/chat/completions') return sendJson(res, 404, perplexityError(404, 'Not Found', 'not_found'));
    if (req.method !== 'POST') return sendJson(res, 405, perplexityError(405, 'Method Not Allowed', 'method_not_allowed'));

    const expected = state.keys.perplexity;
    if (expected && req.headers.authorization !== `Bearer ${expected}`) {
      return sendJson(res, 401, perplexityError(401, 'Invalid API key provided', 'invalid_api_key'));
    }
    let body;
    try {
      body = JSON.parse(raw);
    } catch (e) {
      return sendJson(res, 400, perplexityError(400, `Invalid JSON body: ${e.message}`));
    }
    if (!body || typeof body !== 'object' || Array.isArray(body)) {
      return sendJson(res, 400, perplexityError(400, 'Request body must be a JSON object'));
    }
    if (typeof body.model !== 'string' || !body.model) {
      return sendJson(res, 400, perplexityError(400, '`model` is required'));
    }
    const messages = body.messages;
    if (!Array.isArray(messages) || messages.length === 0) {
      return sendJson(res, 400, perplexityError(400, '`messages` must be a non-empty array'));
    }
    for (const [i, m] of messages.entries()) {
      if (!m || typeof m.role !== 'string' || typeof m.content !== 'string') {
        return sendJson(res, 400, perplexityError(400, `messages[${i}] must have string role and content`));
      }
    }
    const last = messages[messages.length - 1];
    if (last.role !== 'user') {
      return sendJson(res, 400, perplexityError(400, 'Last message must have role `user`'));
    }
    const asksScores = messages.some((m) => m.role === 'system' && /confidence score/i.test(m.content));
    const answer = perplexityAnswer(last.content, body.model, asksScores);
    const id = `mock-${Date.now().toString(36)}-${state.logs.perplexity.length}`;
    const created = Math.floor(Date.now() / 1000);
    const usage = { prompt_tokens: 10, completion_tokens: 40, total_tokens: 50 };

    if (body.stream !== true) {
      if (behaviour.cutAfterChunks !== undefined) {
        const full = JSON.stringify({ id, object: 'chat.completion', choices: [] });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(full) + 100 });
        await new Promise((resolve) => res.write(full.slice(0, 10), () => resolve()));
        destroy(res);
        return;
      }
      if (behaviour.ttfbDelayMs) await sleep(behaviour.ttfbDelayMs);
      return sendJson(res, 200, {
        id,
        model: body.model,
        created,
        usage,
        object: 'chat.completion',
        choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: answer.content } }],
        citations: answer.citations,
        search_results: answer.search_results,
      });
    }
    // What the real API streams (perplexityai/api-discussion#209 and #193, captured 2025-03;
    // tests/fixtures/perplexity/README.md): every chunk is `"object": "chat.completion"` with a
    // cumulative `message` beside the `delta`, `citations`, `search_results` and `usage`; the last
    // chunk carries `finish_reason: "stop"`, and there is NO `data: [DONE]` afterwards.
    // `sendDone: true` appends one, as OpenAI-style proxies do.
    const base = { id, model: body.model, created, object: 'chat.completion' };
    const frame = (obj) => `data: ${JSON.stringify(obj)}\r\n\r\n`;
    const events = [];
    const parts = splitChunks(answer.content, behaviour.chunks ?? 5);
    let sofar = '';
    parts.forEach((text, i) => {
      sofar += text;
      const last = i === parts.length - 1;
      events.push(
        frame({
          ...base,
          usage: { ...usage, completion_tokens: i + 1, total_tokens: usage.prompt_tokens + i + 1 },
          citations: answer.citations,
          search_results: answer.search_results,
          choices: [
            {
              index: 0,
              finish_reason: last && !behaviour.streamError ? 'stop' : null,
              message: { role: 'assistant', content: sofar },
              delta: { role: 'assistant', content: text },
            },
          ],
        }),
      );
    });
    if (behaviour.streamError) events.push(frame({ error: { message: String(behaviour.streamError), type: 'api_error' } }));
    if (behaviour.sendDone) events.push('data: [DONE]\r\n\r\n');
    // `eventSplits` cuts every event into pieces (`splitAt`), written `chunkDelayMs` apart: the
    // network may hand a reader an event in any number of reads.
    const pieces = behaviour.eventSplits ? events.flatMap((e) => splitAt(e, behaviour.eventSplits)) : events;
    await streamChunks(res, pieces, behaviour, 'text/event-stream; charset=utf-8');
  };
}

function listen(server, port, host) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address().port);
    });
  });
}

function wrap(handler) {
  return (req, res) => {
    handler(req, res).catch((e) => {
      if (!res.headersSent) sendJson(res, 500, { detail: `mock error: ${e.message}` });
      else destroy(res);
    });
  };
}

/**
 * Starts both mock upstreams on 127.0.0.1.
 * @param {{lightragPort?: number, perplexityPort?: number, lightragKey?: string, perplexityKey?: string, host?: string}} opts
 */
export async function startUpstreams(opts = {}) {
  const { lightragPort = 0, perplexityPort = 0, host = '127.0.0.1' } = opts;
  const state = createState(opts);
  const servers = {
    lightrag: http.createServer(wrap(lightragHandler(state))),
    perplexity: http.createServer(wrap(perplexityHandler(state))),
  };
  const lport = await listen(servers.lightrag, lightragPort, host);
  let pport;
  try {
    pport = await listen(servers.perplexity, perplexityPort, host);
  } catch (e) {
    servers.lightrag.close();
    throw e;
  }
  const check = (upstream) => {
    if (!UPSTREAMS.includes(upstream)) throw new Error(`unknown upstream '${upstream}': use lightrag or perplexity`);
  };
  let closed = false;
  return {
    lightragUrl: `http://${host}:${lport}`,
    perplexityUrl: `http://${host}:${pport}`,
    /** Sets the behaviour of one upstream ({} or null: healthy). `times: n` limits it to n requests. */
    setBehaviour(upstream, behaviour) {
      check(upstream);
      state.behaviours[upstream] = behaviour && Object.keys(behaviour).length ? { ...behaviour } : null;
    },
    /** Sets (or clears with null) the API key an upstream expects. */
    setKey(upstream, key) {
      check(upstream);
      state.keys[upstream] = key ?? null;
    },
    /**
     * The log of requests one upstream received: [{method, path, headers, body, raw, closedEarly,
     * receivedAt, finishedAt, endAt, behaviour, chunksSent}] (`finishedAt`: when the mock's
     * response ended, else null; `endAt`: when its connection's response closed).
     */
    requests(upstream) {
      check(upstream);
      return state.logs[upstream].slice();
    },
    /** Clears logs and behaviours (keys stay as configured). */
    reset() {
      for (const u of UPSTREAMS) {
        state.logs[u] = [];
        state.behaviours[u] = null;
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all(
        Object.values(servers).map(
          (s) =>
            new Promise((resolve) => {
              s.close(() => resolve());
              s.closeAllConnections();
            }),
        ),
      );
    },
  };
}

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const port = () => {
      const p = Number(next());
      if (!Number.isInteger(p) || p < 0 || p > 65535) throw new Error(`${a} must be a port number 0-65535`);
      return p;
    };
    if (a === '--lightrag-port') out.lightragPort = port();
    else if (a === '--perplexity-port') out.perplexityPort = port();
    else if (a === '--lightrag-key') out.lightragKey = next();
    else if (a === '--perplexity-key') out.perplexityKey = next();
    else if (a === '--help' || a === '-h') out.help = true;
    else throw new Error(`unknown argument ${a}`);
  }
  return out;
}

async function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`upstreams.mjs: ${e.message}`);
    process.exit(2);
  }
  if (args.help) {
    console.log(
      'usage: node tests/mock/upstreams.mjs [--lightrag-port 9621] [--perplexity-port 9622] [--lightrag-key K] [--perplexity-key K]',
    );
    return;
  }
  const up = await startUpstreams(args);
  console.log(`LIGHTRAG_BASE_URL=${up.lightragUrl}`);
  console.log(`PERPLEXITY_BASE_URL=${up.perplexityUrl}`);
  const stop = async (sig) => {
    console.error(`upstreams.mjs: ${sig}, closing`);
    await up.close();
    process.exit(0);
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e) => {
    console.error(`upstreams.mjs: ${e.message}`);
    process.exit(1);
  });
}
