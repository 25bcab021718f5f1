import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type { ClientCard } from '../client/card.js';
import { decodeFrame, encodeFrame, FrameError, type FrameKind } from '../client/wire.js';
import { loadExport } from '../export/artifact.js';
import type { Plan } from '../plan/plan.js';
import { galoisKeyBytes } from '../plan/rotation-keys.js';
import { clientCard } from './card.js';
import { parseKeys, RequestError } from './keys.js';
import { EvalPool, type Step } from './pool.js';

export interface ServerOptions {
  /** Evaluation worker threads, one node-seal instance each (default: cores, at most 4). */
  workers?: number;
  /** A session unused this long is closed (default 10 minutes). */
  sessionTtlMs?: number;
  /** Evaluation keys all open sessions may hold, estimated at their in-memory size (default 2 GiB). */
  memoryBudgetBytes?: number;
  /** Encoded weights each worker keeps (plan/interpreter prepare; default 1 GiB). */
  plaintextBudgetBytes?: number;
  /** How long an inference waits for the client's answer to one refresh round (default 60 s). */
  refreshTimeoutMs?: number;
}

interface Session {
  id: string;
  token: Buffer;
  bytes: number;
  lastUsed: number;
  busy: number;
}

export interface SessionOpened {
  session: string;
  token: string;
  ttlSeconds: number;
  galoisKeys: number;
  heldBytes: number;
}

/**
 * The server side of encrypted inference for one export: the client card,
 * sessions (evaluation keys, in memory by design: a restart loses them and
 * clients open new ones), and evaluation on a worker pool. Frames in, frames
 * out (client/wire), so the HTTP layer (server/http) only routes.
 */
export class HeServer {
  readonly card: ClientCard;
  private readonly sessions = new Map<string, Session>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly ttl: number;
  private readonly budget: number;

  private constructor(
    readonly plan: Plan,
    card: ClientCard,
    private readonly pool: EvalPool,
    o: ServerOptions,
  ) {
    this.card = card;
    this.ttl = o.sessionTtlMs ?? 10 * 60_000;
    this.budget = o.memoryBudgetBytes ?? 2 * 2 ** 30;
    this.sweeper = setInterval(() => this.expire(), Math.min(30_000, Math.max(250, this.ttl / 4)));
    this.sweeper.unref();
  }

  /** Loads and verifies an export, starts the workers (each encodes the weights once). */
  static async load(exportDir: string, o: ServerOptions = {}): Promise<HeServer> {
    const { plan, manifest } = await loadExport(exportDir);
    const card = clientCard(plan, manifest);
    const ref: { server?: HeServer } = {};
    const pool = await EvalPool.start({
      exportDir,
      workers: o.workers ?? Math.min(4, availableParallelism()),
      plaintextBudget: o.plaintextBudgetBytes,
      refreshTimeoutMs: o.refreshTimeoutMs ?? 60_000,
      onLost: (ids) => {
        for (const id of ids) ref.server?.sessions.delete(id);
      },
    });
    ref.server = new HeServer(plan, card, pool, o);
    return ref.server;
  }

  get workers(): number {
    return this.pool.size;
  }

  /** Open sessions and the key bytes they are estimated to hold. */
  usage(): { sessions: number; heldBytes: number; budgetBytes: number } {
    return {
      sessions: this.sessions.size,
      heldBytes: [...this.sessions.values()].reduce((a, s) => a + s.bytes, 0),
      budgetBytes: this.budget,
    };
  }

  /** Opens a session with a keys frame (relinearisation + exactly the plan's Galois keys). */
  async openSession(body: Uint8Array): Promise<SessionOpened> {
    const keys = parseKeys(body, this.plan);
    // In memory the keys are uncompressed: one key-switching key per Galois step, and one for relinearisation.
    const bytes = (keys.galoisSteps.length + 1) * galoisKeyBytes(this.plan.params);
    this.expire();
    const { heldBytes } = this.usage();
    if (heldBytes + bytes > this.budget) {
      throw new RequestError(
        503,
        `the session memory budget is full (${(heldBytes / 2 ** 20).toFixed(0)} of ${(this.budget / 2 ** 20).toFixed(0)} MiB held by ${this.sessions.size} sessions, ` +
          `a new one needs ${(bytes / 2 ** 20).toFixed(0)} MiB); retry later`,
      );
    }
    const id = randomUUID();
    const token = randomBytes(24);
    // Reserved before the keys load, so concurrent uploads cannot overrun the budget together.
    this.sessions.set(id, { id, token, bytes, lastUsed: Date.now(), busy: 1 });
    try {
      await this.pool.open(id, keys);
    } catch (e) {
      this.sessions.delete(id);
      throw e;
    }
    const s = this.sessions.get(id)!;
    s.busy--;
    s.lastUsed = Date.now();
    return {
      session: id,
      token: token.toString('base64url'),
      ttlSeconds: this.ttl / 1000,
      galoisKeys: keys.galoisSteps.length,
      heldBytes: bytes,
    };
  }

  /** The session `id`, if `token` is its bearer token. */
  private session(id: string, token: string | undefined): Session {
    const s = this.sessions.get(id);
    if (!s) throw new RequestError(404, `unknown or expired session ${id}; open a new one (POST /sessions)`);
    const t = Buffer.from(token ?? '', 'base64url');
    if (t.length !== s.token.length || !timingSafeEqual(t, s.token))
      throw new RequestError(401, `session ${id}: missing or wrong bearer token`);
    s.lastUsed = Date.now();
    return s;
  }

  private frame(body: Uint8Array, kind: FrameKind, session: string): ReturnType<typeof decodeFrame> {
    let f;
    try {
      f = decodeFrame(body, kind);
    } catch (e) {
      throw new RequestError(400, (e as FrameError).message);
    }
    // The binding of ciphertexts to the keys that can evaluate them: another session's ciphertexts are refused.
    if (f.header.session !== session) {
      throw new RequestError(
        409,
        `these ciphertexts were encrypted for session ${JSON.stringify(f.header.session ?? null)}, not for session ${session}; ` +
          "a session's keys only evaluate its own client's ciphertexts",
      );
    }
    return f;
  }

  private reply(session: string, step: Step): Uint8Array {
    if (step.kind === 'done')
      return encodeFrame({ kind: 'output', header: { session, job: step.job, serverMs: +step.serverMs.toFixed(1) }, parts: step.outs });
    return encodeFrame({ kind: 'refresh', header: { session, job: step.job, round: step.round }, parts: [step.bytes] });
  }

  private async busy<T>(s: Session, f: () => Promise<T>): Promise<T> {
    s.busy++;
    try {
      return await f();
    } finally {
      s.busy--;
      s.lastUsed = Date.now();
    }
  }

  /** Starts one inference: an input frame in; an output frame, or the first refresh frame, out. */
  async infer(id: string, token: string | undefined, body: Uint8Array): Promise<Uint8Array> {
    const s = this.session(id, token);
    const f = this.frame(body, 'input', id);
    if (f.parts.length !== this.card.sentCiphertexts) {
      throw new RequestError(
        400,
        `this model reads ${this.card.sentCiphertexts} input ciphertexts per inference, the frame has ${f.parts.length}`,
      );
    }
    return this.reply(
      id,
      await this.busy(s, () =>
        this.pool.infer(
          id,
          f.parts.map((p) => p.slice()),
        ),
      ),
    );
  }

  /** Continues an inference with the client's refreshed ciphertext: the next refresh frame, or the output frame. */
  async refresh(id: string, token: string | undefined, job: string, body: Uint8Array): Promise<Uint8Array> {
    const s = this.session(id, token);
    const f = this.frame(body, 'refreshed', id);
    if (f.header.job !== job)
      throw new RequestError(409, `the frame answers inference ${JSON.stringify(f.header.job ?? null)}, the URL names ${job}`);
    if (f.parts.length !== 1) throw new RequestError(400, `a refreshed frame carries one ciphertext, got ${f.parts.length}`);
    return this.reply(id, await this.busy(s, () => this.pool.refresh(id, job, Number(f.header.round), f.parts[0].slice())));
  }

  /** Gives up on an inference the client no longer waits for. */
  abandon(job: string): void {
    this.pool.abandon(job);
  }

  async closeSession(id: string, token: string | undefined): Promise<void> {
    this.session(id, token);
    this.sessions.delete(id);
    await this.pool.close(id);
  }

  /** Closes sessions unused for longer than the TTL (not while they evaluate). */
  private expire(): void {
    const now = Date.now();
    for (const s of this.sessions.values()) {
      if (s.busy === 0 && now - s.lastUsed > this.ttl) {
        this.sessions.delete(s.id);
        void this.pool.close(s.id);
      }
    }
  }

  workerStats(): ReturnType<EvalPool['stats']> {
    return this.pool.stats();
  }

  /** Test hook: ends one evaluation worker as a crash would (it is replaced; its sessions are lost). */
  crashWorkerForTest(index = 0): Promise<number> {
    return this.pool.crashForTest(index);
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    for (const id of [...this.sessions.keys()]) await this.pool.close(id);
    this.sessions.clear();
    await this.pool.stop();
  }
}
