// A small OpenAI-compatible LLM + embeddings server for running the REAL lightrag-server offline.
//
// Why: the router's LightRAG mock (tests/mock/upstreams.mjs) must send what the real server sends,
// and the only way to know that for sure is to run the real server. lightrag-server needs an LLM
// (keyword extraction, entity extraction, answers) and an embedding model; this stands in for
// both, deterministically, so its replies — and the graph it builds — are the same on every run.
//
// What LightRAG 1.5.7 asks of it (read in the installed package, lightrag/prompt.py and
// lightrag/llm/openai.py):
//   - keyword extraction: prompt "You are an expert keyword extractor…", `response_format:
//     {"type": "json_object"}`, answer `{"high_level_keywords": [...], "low_level_keywords": [...]}`;
//   - entity extraction: system prompt "You are a Knowledge Graph Specialist responsible for
//     extracting entities…", answer rows `entity<|#|>name<|#|>type<|#|>description` and
//     `relation<|#|>src<|#|>tgt<|#|>keywords<|#|>description`, then `<|COMPLETE|>`; a second
//     "gleaning" turn ("Based on the last extraction task…") gets `<|COMPLETE|>` alone;
//   - description summaries ("proficient in data curation"): plain text;
//   - answers (system prompt rag_response / naive_rag_response with a "Reference Document List"):
//     JSON, or SSE when `stream: true` (the openai SDK sets stream_options too);
//   - `/v1/embeddings` with `encoding_format: "base64"` (float32 little-endian) and `dimensions`.
//
// Embeddings are signed feature hashing of the words: texts that share words are similar, texts
// that share none are nearly orthogonal (so a question about something not in the documents finds
// nothing above LightRAG's cosine threshold of 0.2 and gets its no-context reply).
//
//   import { startMockLlm } from './mock_llm.mjs';
//   const llm = await startMockLlm({ dim: 256 });   // llm.url = http://127.0.0.1:<port>/v1
//   llm.setFailure({ status: 500 });                 // "the LLM is down" (chat only by default)
//   llm.setFailure(null); llm.requests(); await llm.close();
//
// CLI: node tests/real/mock_llm.mjs [--port 0] [--dim 256]   (prints MOCK_LLM_URL=…)

import http from 'node:http';
import { pathToFileURL } from 'node:url';

const TUPLE = '<|#|>';
const COMPLETE = '<|COMPLETE|>';
const STOP = new Set(
  ('a an and are as at be by can do does for from has have how in is it its of on or that the their this to was were ' +
    'what when where which who why with about between into than then these those through also such not only more most ' +
    'tell me explain role user query output answer').split(' '),
);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Lower-cased content words (3+ letters or digits, not stop words), in order. */
export function words(text) {
  return (String(text).toLowerCase().match(/[\p{L}\p{N}]{3,}/gu) || []).filter((w) => !STOP.has(w));
}

const unique = (xs) => [...new Set(xs)];
const titleCase = (w) => w.charAt(0).toUpperCase() + w.slice(1);

/** FNV-1a 32-bit of a string's UTF-8 bytes. */
function fnv1a(s) {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(s, 'utf8')) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Deterministic unit vector: signed feature hashing of the text's words (bag of words). */
export function embed(text, dim) {
  const v = new Float32Array(dim);
  for (const w of words(text)) {
    const h = fnv1a(w);
    v[h % dim] += h & 0x80000000 ? -1 : 1;
  }
  let n = 0;
  for (const x of v) n += x * x;
  if (n === 0) {
    v[fnv1a(String(text)) % dim] = 1; // no words: still a valid unit vector
    return v;
  }
  n = Math.sqrt(n);
  for (let i = 0; i < dim; i++) v[i] /= n;
  return v;
}

function messageText(m) {
  if (typeof m?.content === 'string') return m.content;
  if (Array.isArray(m?.content)) return m.content.map((p) => (typeof p?.text === 'string' ? p.text : '')).join('\n');
  return '';
}

/** What LightRAG is asking for, judged from its own prompt texts (lightrag/prompt.py, 1.5.7). */
export function classify(body) {
  const msgs = Array.isArray(body?.messages) ? body.messages : [];
  const all = msgs.map(messageText).join('\n');
  const last = messageText(msgs.at(-1));
  if (all.includes('expert keyword extractor')) return 'keywords';
  if (all.includes('extracting entities and relationships')) {
    return last.includes('Based on the last extraction task') ? 'gleaning' : 'entities';
  }
  if (all.includes('proficient in data curation')) return 'summary';
  return 'answer';
}

function keywordsReply(body) {
  const all = (body.messages || []).map(messageText).join('\n');
  const m = all.match(/User Query:\s*([\s\S]*?)\n\s*\n---Output---/);
  const query = m ? m[1] : messageText(body.messages?.at(-1));
  const terms = unique(words(query)).slice(0, 6);
  return JSON.stringify({ high_level_keywords: terms.slice(0, 2), low_level_keywords: terms });
}

/** Entity rows for the fenced input text: its distinctive words, related within a sentence. */
function entitiesReply(body) {
  const user = messageText(body.messages?.at(-1));
  const m = user.match(/---Input Text---\s*```\s*([\s\S]*?)```/);
  const text = m ? m[1] : user;
  const sentences = text.split(/(?<=[.!?])\s+/).filter((s) => s.trim());
  const names = new Map(); // word -> {name, description}
  const relations = [];
  for (const s of sentences) {
    const terms = unique(words(s).filter((w) => w.length >= 5)).slice(0, 4);
    for (const t of terms) if (!names.has(t)) names.set(t, { name: titleCase(t), description: s.trim() });
    for (let i = 1; i < terms.length; i++) relations.push([terms[i - 1], terms[i], s.trim()]);
  }
  const picked = [...names.keys()].slice(0, 12);
  const rows = picked.map((t) => ['entity', names.get(t).name, 'Concept', names.get(t).description].join(TUPLE));
  for (const [a, b, s] of relations) {
    if (picked.includes(a) && picked.includes(b)) {
      rows.push(['relation', titleCase(a), titleCase(b), 'co-occurrence', s].join(TUPLE));
    }
  }
  rows.push(COMPLETE);
  return rows.join('\n');
}

function summaryReply(body) {
  const user = messageText(body.messages?.at(-1));
  const m = user.match(/Description List:\s*```\s*([\s\S]*?)```/);
  return (m ? m[1] : user).replace(/\s+/g, ' ').trim().slice(0, 2000);
}

/** The answer: names the query's words and cites the references LightRAG put in the prompt. */
export function answerText(body) {
  const msgs = body.messages || [];
  const system = msgs.filter((m) => m.role === 'system').map(messageText).join('\n');
  const query = messageText(msgs.filter((m) => m.role === 'user').at(-1));
  const refs = [];
  const list = system.match(/Reference Document List[^\n]*\n+```\n([\s\S]*?)```/);
  if (list) for (const line of list[1].split('\n')) if (/^\[\d+\]/.test(line.trim())) refs.push(line.trim());
  const terms = unique(words(query)).slice(0, 4);
  const topic = terms.length ? terms.join(', ') : 'the question';
  let text = `Mock LLM answer about ${topic}. The knowledge base links ${terms[0] || 'this topic'} to the indexed documents`;
  text += refs.length ? ` [${refs[0].match(/^\[(\d+)\]/)[1]}].` : '.';
  if (refs.length) text += `\n\n### References\n\n${refs.slice(0, 5).map((r) => `- ${r}`).join('\n')}`;
  return text;
}

function replyFor(kind, body) {
  if (kind === 'keywords') return keywordsReply(body);
  if (kind === 'entities') return entitiesReply(body);
  if (kind === 'gleaning') return COMPLETE;
  if (kind === 'summary') return summaryReply(body);
  return answerText(body);
}

function splitWords(text, n) {
  const parts = text.split(/(?<= )/);
  const per = Math.max(1, Math.ceil(parts.length / n));
  const out = [];
  for (let i = 0; i < parts.length; i += per) out.push(parts.slice(i, i + per).join(''));
  return out;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendJson(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

const approxTokens = (s) => Math.max(1, Math.ceil(String(s).length / 4));

/**
 * Starts the mock on 127.0.0.1.
 * @param {{port?: number, dim?: number, chunkDelayMs?: number}} opts
 */
export async function startMockLlm({ port = 0, dim = 256, chunkDelayMs = 5 } = {}) {
  let failure = null; // {status, scope: 'chat' | 'all'} or {cutStreamAfter: n}
  const log = [];
  const server = http.createServer(async (req, res) => {
    try {
      const raw = await readBody(req);
      let body = null;
      try {
        body = raw ? JSON.parse(raw) : null;
      } catch {
        return sendJson(res, 400, { error: { message: 'could not parse JSON body', type: 'invalid_request_error' } });
      }
      const path = (req.url || '/').split('?')[0];
      const isChat = path.endsWith('/chat/completions');
      const isEmb = path.endsWith('/embeddings');
      log.push({ path, kind: isChat ? classify(body) : isEmb ? 'embeddings' : 'other', body, at: Date.now() });
      if (failure?.status && (isChat || failure.scope === 'all')) {
        return sendJson(res, failure.status, {
          error: { message: 'mock LLM is down', type: 'server_error', code: 'mock_down' },
        });
      }
      if (req.method !== 'POST' || (!isChat && !isEmb)) {
        return sendJson(res, 404, { error: { message: `no route ${req.method} ${path}`, type: 'invalid_request_error' } });
      }
      const model = body?.model ?? 'mock';
      const created = Math.floor(Date.now() / 1000);
      if (isEmb) {
        const input = Array.isArray(body.input) ? body.input : [body.input];
        const d = Number.isInteger(body.dimensions) ? body.dimensions : dim;
        const base64 = body.encoding_format === 'base64';
        const data = input.map((t, index) => {
          const v = embed(t, d);
          return {
            object: 'embedding',
            index,
            embedding: base64 ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') : Array.from(v),
          };
        });
        const tokens = input.reduce((n, t) => n + approxTokens(t), 0);
        return sendJson(res, 200, { object: 'list', data, model, usage: { prompt_tokens: tokens, total_tokens: tokens } });
      }
      const kind = classify(body);
      const text = replyFor(kind, body);
      const prompt = (body.messages || []).map(messageText).join('\n');
      const usage = {
        prompt_tokens: approxTokens(prompt),
        completion_tokens: approxTokens(text),
        total_tokens: approxTokens(prompt) + approxTokens(text),
      };
      const id = `chatcmpl-mock-${log.length}`;
      if (body.stream !== true) {
        return sendJson(res, 200, {
          id,
          object: 'chat.completion',
          created,
          model,
          choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
          usage,
        });
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      const frame = (o) => `data: ${JSON.stringify(o)}\n\n`;
      const base = { id, object: 'chat.completion.chunk', created, model };
      res.write(frame({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] }));
      const cut = failure?.cutStreamAfter ?? Infinity;
      const parts = splitWords(text, 6);
      for (let i = 0; i < parts.length; i++) {
        const part = parts[i];
        if (chunkDelayMs) await sleep(chunkDelayMs);
        if (i >= cut) {
          // The provider drops the connection mid-answer.
          await new Promise((resolve) => res.write('', () => resolve()));
          res.socket?.destroy();
          return;
        }
        res.write(frame({ ...base, choices: [{ index: 0, delta: { content: part }, finish_reason: null }] }));
      }
      res.write(frame({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }));
      if (body.stream_options?.include_usage) res.write(frame({ ...base, choices: [], usage }));
      res.end('data: [DONE]\n\n');
    } catch (e) {
      if (!res.headersSent) sendJson(res, 500, { error: { message: `mock error: ${e.message}`, type: 'server_error' } });
      else res.destroy();
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const url = `http://127.0.0.1:${server.address().port}/v1`;
  return {
    url,
    dim,
    /**
     * null: healthy. {status: 500}: chat completions fail; {status, scope: 'all'}: embeddings too;
     * {cutStreamAfter: n}: streamed answers are cut (connection destroyed) after n chunks.
     */
    setFailure(f) {
      if (!f) failure = null;
      else if (Number.isInteger(f.cutStreamAfter)) failure = { cutStreamAfter: f.cutStreamAfter };
      else failure = { status: f.status ?? 500, scope: f.scope ?? 'chat' };
    },
    /** Requests received so far: [{path, kind: keywords|entities|gleaning|summary|answer|embeddings, body, at}]. */
    requests() {
      return log.slice();
    },
    clear() {
      log.length = 0;
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const opt = (name, dflt) => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) : dflt;
  };
  const llm = await startMockLlm({ port: opt('--port', 0), dim: opt('--dim', 256) });
  console.log(`MOCK_LLM_URL=${llm.url}`);
  const stop = async () => {
    await llm.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
