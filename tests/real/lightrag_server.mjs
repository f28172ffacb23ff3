// Runs the REAL lightrag-server (PyPI lightrag-hku[api], pinned in scripts/lightrag/setup.sh)
// offline for tests: a mock OpenAI-compatible LLM (./mock_llm.mjs), the server on a free loopback
// port with a temporary WORKING_DIR and an environment built from scratch (no `.env`: the server
// runs in an empty temp directory, and nothing of the caller's environment but PATH/HOME/LANG is
// passed), document insertion, and a clean stop.
//
// Why: the router's mock LightRAG is only as good as its agreement with the real server; this is
// how tests/real/ gets the real server's bytes.
//
//   import { startLightrag } from './lightrag_server.mjs';
//   const rag = await startLightrag({ apiKey: 'k' });
//   await rag.insert('Glycolysis converts glucose to pyruvate.', 'glycolysis.txt');
//   const r = await rag.fetch('/query', { method: 'POST', body: JSON.stringify({ query: '…' }) });
//   await rag.stop();

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, openSync, closeSync, readFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startMockLlm } from './mock_llm.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CACHE = process.env.CMO_CACHE_DIR || path.join(homedir(), '.cache', 'cmo-edge-router');
export const VENV = process.env.LIGHTRAG_VENV || path.join(CACHE, 'lightrag-venv');
export const TIKTOKEN_DIR = process.env.TIKTOKEN_CACHE_DIR || path.join(CACHE, 'tiktoken');
export const LIGHTRAG_VERSION = '1.5.7';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let setupDone = false;
/** Runs scripts/lightrag/setup.sh once per process (idempotent; ~1 s when installed). */
export function ensureInstalled() {
  if (setupDone) return;
  execFileSync('bash', [path.join(ROOT, 'scripts', 'lightrag', 'setup.sh')], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, LIGHTRAG_VENV: VENV, TIKTOKEN_CACHE_DIR: TIKTOKEN_DIR },
  });
  setupDone = true;
}

/** A free TCP port on 127.0.0.1 (bound, read, released). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes. */
export async function until(fn, { timeoutMs = 60000, intervalMs = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      if (e.fatal) throw e;
      last = e;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

/**
 * Starts a mock LLM and a real lightrag-server wired to it.
 * @param {{apiKey?: string, llmCache?: boolean, dim?: number, env?: Record<string,string>, startTimeoutMs?: number}} o
 */
export async function startLightrag({ apiKey = '', llmCache = false, dim = 256, env = {}, startTimeoutMs = 90000 } = {}) {
  ensureInstalled();
  const llm = await startMockLlm({ dim });
  const dir = mkdtempSync(path.join(tmpdir(), 'lightrag-real-'));
  const port = await freePort();
  const logPath = path.join(dir, 'server.log');
  const logFd = openSync(logPath, 'a');
  const childEnv = {
    PATH: `${path.join(VENV, 'bin')}:${process.env.PATH}`,
    HOME: process.env.HOME || homedir(),
    LANG: 'C.UTF-8',
    TIKTOKEN_CACHE_DIR: TIKTOKEN_DIR,
    HOST: '127.0.0.1',
    PORT: String(port),
    WORKING_DIR: path.join(dir, 'rag_storage'),
    INPUT_DIR: path.join(dir, 'inputs'),
    LLM_BINDING: 'openai',
    LLM_BINDING_HOST: llm.url,
    LLM_BINDING_API_KEY: 'dummy',
    LLM_MODEL: 'mock-llm',
    EMBEDDING_BINDING: 'openai',
    EMBEDDING_BINDING_HOST: llm.url,
    EMBEDDING_BINDING_API_KEY: 'dummy',
    EMBEDDING_MODEL: 'mock-embedding',
    EMBEDDING_DIM: String(dim),
    ENABLE_LLM_CACHE: llmCache ? 'true' : 'false',
    ENABLE_LLM_CACHE_FOR_EXTRACT: 'false',
    LOG_LEVEL: 'INFO',
    ...(apiKey ? { LIGHTRAG_API_KEY: apiKey } : {}),
    ...env,
  };
  const child = spawn(path.join(VENV, 'bin', 'lightrag-server'), [], {
    cwd: dir, // an empty directory: no .env to read
    env: childEnv,
    stdio: ['ignore', logFd, logFd],
    detached: true, // its own process group, so stop() can end it and anything it spawned
  });
  closeSync(logFd);
  let exited = null;
  child.on('exit', (code, signal) => {
    exited = { code, signal };
  });
  // Should the test process die without stop(), take the server (our own process group) with it.
  const killOnExit = () => {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  };
  process.on('exit', killOnExit);
  const url = `http://127.0.0.1:${port}`;
  const headers = apiKey ? { 'x-api-key': apiKey } : {};
  const rag = {
    url,
    port,
    dir,
    llm,
    pid: child.pid,
    apiKey,
    log: () => (existsSync(logPath) ? readFileSync(logPath, 'utf8') : ''),
    /** fetch against the server with the API key and a JSON content type. */
    fetch(p, init = {}) {
      return fetch(url + p, {
        ...init,
        headers: { 'content-type': 'application/json', ...headers, ...(init.headers || {}) },
      });
    },
    /** Inserts a text document and waits until LightRAG reports it processed. */
    async insert(text, fileSource, { timeoutMs = 60000 } = {}) {
      const r = await rag.fetch('/documents/text', {
        method: 'POST',
        body: JSON.stringify({ text, file_source: fileSource }),
      });
      const j = await r.json();
      if (r.status !== 200 || !j.track_id) throw new Error(`insert failed: ${r.status} ${JSON.stringify(j)}`);
      let last;
      await until(
        async () => {
          const s = await (await rag.fetch(`/documents/track_status/${encodeURIComponent(j.track_id)}`)).json();
          last = s;
          const docs = s.documents || [];
          if (docs.some((d) => d.status === 'failed')) {
            const e = new Error(`document failed: ${JSON.stringify(s)}`);
            e.fatal = true;
            throw e;
          }
          return docs.length > 0 && docs.every((d) => d.status === 'processed');
        },
        { timeoutMs, intervalMs: 200, what: `document ${fileSource} processed (last: ${JSON.stringify(last)})` },
      );
      return j.track_id;
    },
    async stop() {
      if (exited === null) {
        try {
          process.kill(-child.pid, 'SIGTERM');
        } catch {
          /* already gone */
        }
        const deadline = Date.now() + 15000;
        while (exited === null && Date.now() < deadline) await sleep(50);
        if (exited === null) {
          try {
            process.kill(-child.pid, 'SIGKILL');
          } catch {
            /* already gone */
          }
          while (exited === null) await sleep(50);
        }
      }
      process.off('exit', killOnExit);
      await llm.close();
      if (!process.env.KEEP_LIGHTRAG_DIR) rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await until(
      async () => {
        if (exited) {
          const e = new Error(`lightrag-server exited (${JSON.stringify(exited)}):\n${rag.log().slice(-3000)}`);
          e.fatal = true;
          throw e;
        }
        const r = await fetch(url + '/health', { headers });
        return r.status === 200;
      },
      { timeoutMs: startTimeoutMs, intervalMs: 200, what: `lightrag-server /health on ${url}` },
    );
  } catch (e) {
    await rag.stop();
    throw e;
  }
  return rag;
}

/** Parses an NDJSON body into objects (one per non-empty line). */
export function ndjson(text) {
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}
