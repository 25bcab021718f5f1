import { randomUUID } from 'node:crypto';
import { MessageChannel, Worker } from 'node:worker_threads';
import type { ServerKeys } from '../he/client.js';
import { RequestError } from './keys.js';
import type { FromWorker, RefreshReply, ToWorker } from './worker-protocol.js';

/** Where an inference stands: finished (output ciphertexts), or waiting for the client to refresh one ciphertext. */
export type Step =
  { kind: 'done'; job: string; outs: Uint8Array[]; serverMs: number } | { kind: 'refresh'; job: string; round: number; bytes: Uint8Array };

interface Slot {
  worker: Worker;
  reply: MessageChannel['port1'];
  flag: Int32Array;
  sessions: Set<string>;
  /** Requests awaiting an answer (open/close/stats, and the current step of each inference job). */
  pending: Map<string, { resolve: (m: FromWorker) => void; reject: (e: Error) => void }>;
  dead?: string;
}

export interface PoolOptions {
  exportDir: string;
  workers: number;
  plaintextBudget?: number;
  /** How long a worker waits for the client's answer to one refresh round. */
  refreshTimeoutMs: number;
  /** Called with the sessions a crashed worker held (they are gone). */
  onLost?: (sessions: string[], why: string) => void;
}

/**
 * Evaluation on worker threads, one node-seal instance each. A session is
 * pinned to one worker (the worker with the fewest sessions when it opens),
 * which holds its keys: keys are loaded once, and different sessions run in
 * parallel on different workers.
 */
export class EvalPool {
  private readonly slots: Slot[] = [];
  private readonly where = new Map<string, Slot>();
  /** Inference jobs by id, with the round they wait on. */
  private readonly jobs = new Map<string, { slot: Slot; session: string; round?: number; abandoned?: boolean }>();
  private stopping = false;

  private constructor(private readonly o: PoolOptions) {}

  static async start(o: PoolOptions): Promise<EvalPool> {
    const pool = new EvalPool(o);
    try {
      await Promise.all(Array.from({ length: Math.max(1, o.workers) }, () => pool.spawn()));
    } catch (e) {
      await pool.stop();
      throw e;
    }
    return pool;
  }

  get size(): number {
    return this.slots.length;
  }

  private spawn(): Promise<void> {
    const { port1, port2 } = new MessageChannel();
    const signal = new SharedArrayBuffer(4);
    const worker = new Worker(new URL('./worker.js', import.meta.url), {
      workerData: {
        exportDir: this.o.exportDir,
        plaintextBudget: this.o.plaintextBudget,
        refreshTimeoutMs: this.o.refreshTimeoutMs,
        replyPort: port2,
        signal,
      },
      transferList: [port2],
    });
    const slot: Slot = { worker, reply: port1, flag: new Int32Array(signal), sessions: new Set(), pending: new Map() };
    this.slots.push(slot);
    return new Promise((resolve, reject) => {
      worker.on('message', (m: FromWorker) => {
        if (m.t === 'ready') {
          ready = true;
          resolve();
          return;
        }
        this.onMessage(slot, m);
      });
      let ready = false;
      const fail = (why: string) => {
        if (slot.dead) return;
        slot.dead = why;
        reject(new Error(`evaluation worker failed to start: ${why}`));
        for (const p of slot.pending.values())
          p.reject(new RequestError(503, `the evaluation worker stopped (${why}); open a new session`));
        slot.pending.clear();
        for (const [id, j] of this.jobs) if (j.slot === slot) this.jobs.delete(id);
        this.o.onLost?.([...slot.sessions], why);
        for (const s of slot.sessions) this.where.delete(s);
        this.slots.splice(this.slots.indexOf(slot), 1);
        slot.reply.close();
        // A worker that ran and died (not one that could not start, nor one stopped) is replaced; its sessions are gone.
        if (ready && !this.stopping) void this.spawn().catch(() => undefined);
      };
      worker.on('error', (e) => fail(e.message));
      worker.on('exit', (code) => fail(`exit code ${code}`));
    });
  }

  private onMessage(slot: Slot, m: FromWorker): void {
    if (m.t === 'ready') return;
    const job = this.jobs.get(m.req);
    if (m.t === 'refresh' && job) {
      job.round = m.round;
      if (job.abandoned) {
        this.answer(slot, { job: m.req, round: m.round, abort: { status: 503, message: 'abandoned' } });
        return;
      }
    }
    if ((m.t === 'done' || m.t === 'error') && job) this.jobs.delete(m.req);
    const p = slot.pending.get(m.req);
    if (!p) return;
    slot.pending.delete(m.req);
    if (m.t === 'error') p.reject(new RequestError(m.status, m.message));
    else p.resolve(m);
  }

  private request(slot: Slot, msg: ToWorker & { req: string }): Promise<FromWorker> {
    if (slot.dead) return Promise.reject(new RequestError(503, `the evaluation worker stopped (${slot.dead})`));
    return new Promise((resolve, reject) => {
      slot.pending.set(msg.req, { resolve, reject });
      slot.worker.postMessage(msg);
    });
  }

  private answer(slot: Slot, r: RefreshReply): void {
    slot.reply.postMessage(r);
    Atomics.store(slot.flag, 0, 1);
    Atomics.notify(slot.flag, 0);
  }

  async open(session: string, keys: ServerKeys): Promise<void> {
    const slot = [...this.slots].sort((a, b) => a.sessions.size - b.sessions.size)[0];
    if (!slot) throw new RequestError(503, 'no evaluation worker is running');
    await this.request(slot, { t: 'open', req: randomUUID(), session, keys });
    slot.sessions.add(session);
    this.where.set(session, slot);
  }

  async close(session: string): Promise<void> {
    const slot = this.where.get(session);
    if (!slot) return;
    this.where.delete(session);
    slot.sessions.delete(session);
    await this.request(slot, { t: 'close', req: randomUUID(), session }).catch(() => undefined);
  }

  private toStep(job: string, m: FromWorker): Step {
    if (m.t === 'done') return { kind: 'done', job, outs: m.outs, serverMs: m.serverMs };
    if (m.t === 'refresh') return { kind: 'refresh', job, round: m.round, bytes: m.bytes };
    throw new Error(`unexpected worker message ${m.t}`);
  }

  async infer(session: string, cts: Uint8Array[]): Promise<Step> {
    const slot = this.where.get(session);
    if (!slot) throw new RequestError(404, `unknown or expired session ${session}`);
    const job = randomUUID();
    this.jobs.set(job, { slot, session });
    return this.toStep(job, await this.request(slot, { t: 'infer', req: job, session, cts }));
  }

  /** The client's answer to the refresh round `job` waits on. */
  async refresh(session: string, job: string, round: number, bytes: Uint8Array): Promise<Step> {
    const j = this.jobs.get(job);
    if (!j || j.session !== session)
      throw new RequestError(404, `no inference ${job} is waiting in session ${session} (finished, failed or timed out)`);
    if (j.round !== round)
      throw new RequestError(409, `inference ${job} waits for refresh round ${j.round}, the frame answers round ${round}`);
    const next = new Promise<FromWorker>((resolve, reject) => j.slot.pending.set(job, { resolve, reject }));
    j.round = undefined;
    this.answer(j.slot, { job, round, bytes });
    return this.toStep(job, await next);
  }

  /** Gives up on a job (the client went away or it timed out): a refresh it waits on is answered with an abort. */
  abandon(job: string): void {
    const j = this.jobs.get(job);
    if (!j) return;
    j.abandoned = true;
    j.slot.pending.delete(job);
    if (j.round !== undefined) this.answer(j.slot, { job, round: j.round, abort: { status: 503, message: 'abandoned' } });
  }

  /** The WASM heap of each worker (bytes) and the sessions it holds. */
  async stats(): Promise<{ heapBytes: number; sessions: number }[]> {
    return Promise.all(
      this.slots.map(async (s) => {
        const m = await this.request(s, { t: 'stats', req: randomUUID() });
        return m.t === 'stats' ? { heapBytes: m.heapBytes, sessions: m.sessions } : { heapBytes: 0, sessions: 0 };
      }),
    );
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.slots.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.dead = 'stopped';
            s.worker.once('exit', () => resolve());
            s.worker.postMessage({ t: 'shutdown' } satisfies ToWorker);
            setTimeout(() => {
              void s.worker.terminate();
            }, 5000).unref();
          }),
      ),
    );
    for (const s of this.slots) s.reply.close();
  }

  /** Test hook: ends one worker as a crash would. */
  crashForTest(index = 0): Promise<number> {
    return this.slots[index].worker.terminate();
  }
}
