import { CkksClient, galoisKeysBytes } from '../he/client.js';
import { CkksContext } from '../he/context.js';
import { SealBackend } from '../he/seal-backend.js';
import { zeroCounts, type OpCounts } from '../plan/op-counts.js';
import { freePrepared, prepare, run, unpackOutput, type Prepared, type PrepareOptions } from '../plan/interpreter.js';
import { type Plan } from '../plan/plan.js';
import { galoisSteps } from '../plan/rotations.js';
import type { Plaintext } from 'node-seal';

/** One client + one server with real keys, in one thread; bytes pass between them as they would over a network. */
export interface SessionSetup {
  keygenMs: number;
  prepareMs: number;
  galoisKeys: number;
  galoisKeyBytes: number;
  relinKeyBytes: number;
  params: Plan['params'];
  /** Weight plaintexts past the budget, encoded at every use. */
  lazyOperands: number;
}
export interface ImageResult {
  output: number[];
  encryptMs: number;
  serverMs: number;
  decryptMs: number;
  bytesUp: number;
  bytesDown: number;
  steps: { name: string; ms: number }[];
  counts: OpCounts;
  heapBytes: number;
  /** Masked refreshes (ciphertexts round-tripped through the client), their bytes both ways and the client's time. */
  refreshes: number;
  refreshBytes: number;
  refreshClientMs: number;
}

export class CkksSession {
  private constructor(
    private readonly ctx: CkksContext,
    private readonly client: CkksClient,
    private readonly server: SealBackend,
    private readonly prepared: Prepared<Plaintext>,
    private readonly plan: Plan,
    readonly setup: SessionSetup,
  ) {}

  static async open(plan: Plan, o: PrepareOptions = {}): Promise<CkksSession> {
    const ctx = await CkksContext.create(plan.params);
    const t0 = performance.now();
    const client = new CkksClient(ctx);
    const keys = client.serverKeys(galoisSteps(plan));
    const keygenMs = performance.now() - t0;
    const server = new SealBackend(ctx, keys);
    const t1 = performance.now();
    const prepared = prepare(server, plan, o);
    const setup: SessionSetup = {
      keygenMs,
      prepareMs: performance.now() - t1,
      galoisKeys: keys.galoisSteps.length,
      galoisKeyBytes: galoisKeysBytes(keys),
      relinKeyBytes: keys.relinKeys.length,
      params: plan.params,
      lazyOperands: prepared.lazy,
    };
    return new CkksSession(ctx, client, server, prepared, plan, setup);
  }

  /** Client encrypts the packed input ciphertexts, server evaluates the plan, client decrypts. */
  infer(packed: Float64Array[]): ImageResult {
    const t0 = performance.now();
    const up = packed.map((v) => this.client.encrypt(v));
    const t1 = performance.now();
    const cts = up.map((bytes) => {
      const c = new this.ctx.m.Ciphertext();
      c.loadFromArray(this.ctx.context, bytes);
      return c;
    });
    const before = { ...this.server.counts };
    const steps: { name: string; ms: number }[] = [];
    // Masked refresh: server → bytes → client decrypts and re-encrypts → bytes → server.
    const refresh = { count: 0, bytes: 0, clientMs: 0 };
    const channel = this.client.refreshChannel((bytes, ms) => {
      refresh.count++;
      refresh.bytes += bytes;
      refresh.clientMs += ms;
    });
    const outs = run(this.server, this.prepared, cts, (r) => steps.push({ name: r.name, ms: r.ms }), channel);
    const down = outs.map((o) => new Uint8Array(o.saveToArray(this.ctx.m.ComprModeType.zstd)));
    for (const c of [...outs, ...cts]) c.delete();
    const t2 = performance.now();
    const output = Array.from(
      unpackOutput(
        this.plan,
        down.map((d) => this.client.decrypt(d)),
      ),
    );
    const t3 = performance.now();
    const counts = zeroCounts();
    for (const k of Object.keys(counts) as (keyof OpCounts)[]) counts[k] = this.server.counts[k] - before[k];
    const bytes = (a: Uint8Array[]) => a.reduce((x, b) => x + b.length, 0);
    return {
      output,
      encryptMs: t1 - t0,
      serverMs: t2 - t1 - refresh.clientMs,
      decryptMs: t3 - t2,
      bytesUp: bytes(up),
      bytesDown: bytes(down),
      steps,
      counts,
      heapBytes: this.ctx.seal.heapBytes(),
      refreshes: refresh.count,
      refreshBytes: refresh.bytes,
      refreshClientMs: refresh.clientMs,
    };
  }

  close(): void {
    freePrepared(this.server, this.prepared);
    this.server.delete();
    this.client.delete();
    this.ctx.delete();
  }
}
