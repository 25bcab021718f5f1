/**
 * One evaluation worker of the server: its own node-seal instance, the
 * export's weights encoded once, and the evaluation keys of the sessions
 * pinned to it. It never holds a secret key (its backends have no client).
 *
 * Masked refresh inside the synchronous interpreter: the worker posts the
 * masked ciphertext to the main thread and blocks (Atomics.wait on a shared
 * flag) until the main thread puts the client's answer on the reply port.
 */
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import type { Ciphertext, Plaintext } from 'node-seal';
import { loadExport } from '../export/artifact.js';
import type { ServerKeys } from '../he/client.js';
import { CkksContext } from '../he/context.js';
import { SealBackend } from '../he/seal-backend.js';
import { freePrepared, prepare, run, type Prepared } from '../plan/interpreter.js';
import type { ToWorker, FromWorker, RefreshReply } from './worker-protocol.js';

const port = parentPort!;
const { exportDir, plaintextBudget, refreshTimeoutMs, replyPort, signal } = workerData as {
  exportDir: string;
  plaintextBudget?: number;
  refreshTimeoutMs: number;
  replyPort: MessagePort;
  signal: SharedArrayBuffer;
};
const flag = new Int32Array(signal);
const post = (m: FromWorker) => port.postMessage(m);

class Refused extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Blocks until the main thread answers refresh `round` of `job` (stale answers of earlier jobs are dropped). */
function awaitReply(job: string, round: number): RefreshReply {
  const deadline = Date.now() + refreshTimeoutMs;
  for (;;) {
    const m = receiveMessageOnPort(replyPort)?.message as RefreshReply | undefined;
    if (m && m.job === job && m.round === round) return m;
    if (m) continue;
    const left = deadline - Date.now();
    if (left <= 0)
      throw new Refused(408, `no answer to refresh round ${round} within ${refreshTimeoutMs / 1000} s; the inference was dropped`);
    Atomics.wait(flag, 0, 0, Math.min(left, 1000));
    Atomics.store(flag, 0, 0);
  }
}

const { plan } = await loadExport(exportDir);
const ctx = await CkksContext.create(plan.params);
const weights = new SealBackend(ctx, null);
const prepared: Prepared<Plaintext> = prepare(weights, plan, { plaintextBudget });
const sessions = new Map<string, SealBackend>();
const zstd = ctx.m.ComprModeType.zstd;

/** Loads ciphertext bytes under this context, checked to be fresh top-level ciphertexts of the model's scale. */
function loadCiphertext(b: SealBackend, bytes: Uint8Array, what: string): Ciphertext {
  const c = new ctx.m.Ciphertext();
  try {
    c.loadFromArray(ctx.context, bytes);
  } catch (e) {
    c.delete();
    const msg = (e as { message?: unknown }).message;
    throw new Refused(
      400,
      `${what} does not load under this model's CKKS parameters (${Array.isArray(msg) ? msg[1] : String(msg ?? e)}): truncated, or made for other parameters`,
    );
  }
  const problem = (() => {
    try {
      if (b.levelOf(c) !== b.topLevel) return `is at level ${b.levelOf(c)}, expected a fresh ciphertext at level ${b.topLevel}`;
    } catch {
      return 'belongs to other CKKS parameters';
    }
    if (c.size() !== 2) return `has ${c.size()} polynomials, expected 2`;
    if (Math.abs(Math.log2(c.scale()) - plan.params.scaleBits) > 0.5)
      return `has scale 2^${Math.log2(c.scale()).toFixed(1)}, expected 2^${plan.params.scaleBits}`;
    return undefined;
  })();
  if (problem) {
    c.delete();
    throw new Refused(400, `${what} ${problem}`);
  }
  return c;
}

function open(session: string, keys: ServerKeys): void {
  let b: SealBackend;
  try {
    b = new SealBackend(ctx, keys);
  } catch (e) {
    throw new Refused(400, `evaluation keys do not load under this model's parameters: ${(e as Error).message}`);
  }
  try {
    b.verifyKeys();
  } catch (e) {
    b.delete();
    throw new Refused(400, `evaluation keys: ${(e as Error).message}`);
  }
  sessions.get(session)?.delete();
  sessions.set(session, b);
}

function infer(job: string, session: string, bytes: Uint8Array[]): void {
  const b = sessions.get(session);
  if (!b) throw new Refused(404, `session ${session} is not open on this worker`);
  const cts: Ciphertext[] = [];
  try {
    bytes.forEach((x, i) => cts.push(loadCiphertext(b, x, `input ciphertext ${i}`)));
    let round = 0,
      waited = 0;
    const channel = {
      roundTrip: (c: Ciphertext): Ciphertext => {
        const masked = new Uint8Array(c.saveToArray(zstd));
        round++;
        const t = performance.now();
        post({ t: 'refresh', req: job, round, bytes: masked });
        const reply = awaitReply(job, round);
        waited += performance.now() - t;
        if (reply.abort) throw new Refused(reply.abort.status, reply.abort.message);
        return loadCiphertext(b, reply.bytes!, `refreshed ciphertext (round ${round})`);
      },
    };
    const t0 = performance.now();
    const outs = run(b, prepared, cts, undefined, channel);
    const serverMs = performance.now() - t0 - waited;
    const down = outs.map((o) => new Uint8Array(o.saveToArray(zstd)));
    for (const o of outs) o.delete();
    post({ t: 'done', req: job, outs: down, serverMs });
  } finally {
    for (const c of cts) c.delete();
  }
}

port.on('message', (m: ToWorker) => {
  try {
    if (m.t === 'open') {
      open(m.session, m.keys);
      post({ t: 'ok', req: m.req });
    } else if (m.t === 'close') {
      sessions.get(m.session)?.delete();
      sessions.delete(m.session);
      post({ t: 'ok', req: m.req });
    } else if (m.t === 'infer') infer(m.req, m.session, m.cts);
    else if (m.t === 'stats') post({ t: 'stats', req: m.req, heapBytes: ctx.seal.heapBytes(), sessions: sessions.size });
    else if (m.t === 'shutdown') {
      for (const b of sessions.values()) b.delete();
      sessions.clear();
      freePrepared(weights, prepared);
      weights.delete();
      ctx.delete();
      replyPort.close();
      port.close();
    }
  } catch (e) {
    const status = e instanceof Refused ? e.status : 500;
    post({ t: 'error', req: 'req' in m ? m.req : '', status, message: (e as Error).message });
  }
});
post({ t: 'ready', heapBytes: ctx.seal.heapBytes() });
