// Mock upstreams for the edge router: a LightRAG-like server and a Perplexity-like server, real
// HTTP on 127.0.0.1, speaking the real wire formats (see src/core/wire/). Used by `make dev` and
// by integration tests, with fault injection (status, delays, resets, cut streams, HTML bodies).
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

function perplexityAnswer(query, model) {
  const terms = keyTerms(query);
  const topic = terms.length ? terms.join(', ') : 'the question';
  const q = encodeURIComponent(terms.join(' ') || 'metabolomics');
  const content =
    `[Perplexity ${model}] Web answer about ${topic}. ` +
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
  res.socket?.destroy();
}

/**
 * Writes `chunks` as a streamed body, honouring ttfbDelayMs / chunkDelayMs / cutAfterChunks.
 * Returns once the body is ended (or cut).
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
  const gap = behaviour.chunkDelayMs ?? 2;
  for (let i = 0; i < chunks.length; i++) {
    if (i >= cut) {
      destroy(res);
      return;
    }
    if (i > 0 && gap) await sleep(gap);
    if (res.destroyed) return;
    // Wait until the chunk is handed to the socket, so a later cut never swallows it.
    await new Promise((resolve) => res.write(chunks[i], () => resolve()));
  }
  res.end();
}

/** Applies the pre-response part of a behaviour; returns true when the response was already handled. */
async function applyFaults(req, res, behaviour, errorBody) {
  if (behaviour.delayMs) await sleep(behaviour.delayMs);
  if (res.destroyed) return true;
  if (behaviour.reset) {
    req.socket.destroy();
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

function logRequest(state, upstream, req, raw) {
  let body = raw;
  try {
    body = raw ? JSON.parse(raw) : null;
  } catch {
    /* keep the raw text */
  }
  state.logs[upstream].push({ method: req.method, path: req.url, headers: { ...req.headers }, body, raw });
}

function fastapi422(loc, msg, input) {
  return { detail: [{ type: 'value_error', loc: ['body', ...loc], msg, input }] };
}

function lightragHandler(state) {
  return async (req, res) => {
    const raw = await readBody(req);
    const path = (req.url || '/').split('?')[0];
    logRequest(state, 'lightrag', req, raw);
    const behaviour = takeBehaviour(state, 'lightrag');
    if (await applyFaults(req, res, behaviour, (s) => ({ detail: `mock LightRAG failure (status ${s})` }))) return;

    if (path !== '/health' && path !== '/query' && path !== '/query/stream') {
      return sendJson(res, 404, { detail: 'Not Found' });
    }
    // Like the real server, every route (health included) sits behind the API key when one is set.
    const expected = state.keys.lightrag;
    if (expected && req.headers['x-api-key'] !== expected) {
      return sendJson(res, 403, { detail: 'API Key required' });
    }
    if (path === '/health') {
      if (req.method !== 'GET') return sendJson(res, 405, { detail: 'Method Not Allowed' });
      return sendJson(res, 200, { status: 'healthy', working_directory: '/mock/rag_storage', core_version: 'mock' });
    }
    if (req.method !== 'POST') return sendJson(res, 405, { detail: 'Method Not Allowed' });
    let body;
    try {
      body = JSON.parse(raw);
    } catch (e) {
      return sendJson(res, 422, fastapi422([], `JSON decode error: ${e.message}`, raw));
    }
    if (!body || typeof body !== 'object' || Array.isArray(body)) {
      return sendJson(res, 422, fastapi422([], 'Input should be a valid dictionary', body));
    }
    if (typeof body.query !== 'string') {
      return sendJson(res, 422, fastapi422(['query'], 'Field required', body));
    }
    const mode = body.mode ?? 'mix';
    if (!LIGHTRAG_MODES.includes(mode)) {
      return sendJson(res, 422, fastapi422(['mode'], `Input should be ${LIGHTRAG_MODES.join(', ')}`, mode));
    }
    const query = body.query.trim();
    if (!query || (mode !== 'bypass' && [...query].length < 3)) {
      return sendJson(res, 422, fastapi422(['query'], 'Query must be at least 3 characters', body.query));
    }

    const answer = lightragAnswer(query, mode);
    const includeRefs = body.include_references !== false;
    if (path === '/query') {
      if (behaviour.cutAfterChunks !== undefined) {
        // A non-streamed body cut half-way.
        const full = JSON.stringify({ response: answer.response, references: answer.references });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(full) });
        await new Promise((resolve) => res.write(full.slice(0, Math.floor(full.length / 2)), () => resolve()));
        destroy(res);
        return;
      }
      if (behaviour.ttfbDelayMs) await sleep(behaviour.ttfbDelayMs);
      return sendJson(res, 200, {
        response: answer.response,
        references: includeRefs ? answer.references : null,
        response_time: 0.01,
        llm_generated: true,
      });
    }
    const lines = [];
    if (includeRefs) lines.push(JSON.stringify({ references: answer.references }) + '\n');
    if (body.stream === false) {
      lines.push(JSON.stringify({ response: answer.response, llm_generated: true }) + '\n');
    } else {
      for (const c of splitChunks(answer.response, 5)) lines.push(JSON.stringify({ response: c }) + '\n');
    }
    if (behaviour.streamError) lines.push(JSON.stringify({ error: String(behaviour.streamError) }) + '\n');
    await streamChunks(res, lines, behaviour, 'application/x-ndjson');
  };
}

function perplexityError(status, message, type = 'invalid_request_error') {
  return { error: { message, type, code: status } };
}

function perplexityHandler(state) {
  return async (req, res) => {
    const raw = await readBody(req);
    const path = (req.url || '/').split('?')[0];
    logRequest(state, 'perplexity', req, raw);
    const behaviour = takeBehaviour(state, 'perplexity');
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
    const answer = perplexityAnswer(last.content, body.model);
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
    const parts = splitChunks(answer.content, 5);
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
    await streamChunks(res, events, behaviour, 'text/event-stream; charset=utf-8');
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
    /** The log of requests one upstream received: [{method, path, headers, body, raw}]. */
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
