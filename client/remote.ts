import { HeClient, type ClientOptions } from './client.js';
import { decodeFrame } from './wire.js';

/** What one encrypted inference over HTTP took: milliseconds and bytes each way. */
export interface RemoteResult {
  output: number[];
  /** Index of the largest output (classification). */
  prediction: number;
  encryptMs: number;
  decryptMs: number;
  /** Wall time from sending the input to holding the output frame (network + server + refresh rounds). */
  roundTripMs: number;
  /** Evaluation time the server reported (without refresh waits). */
  serverMs: number;
  refreshRounds: number;
  refreshClientMs: number;
  bytesUp: number;
  bytesDown: number;
}

export interface SessionInfo {
  session: string;
  token: string;
  ttlSeconds: number;
  keyBytes: number;
  keygenMs: number;
  uploadMs: number;
}

/** An HTTP error from the server, with its status and JSON message. */
export class RemoteError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'RemoteError';
  }
}

async function check(res: Response, what: string): Promise<Response> {
  if (res.ok) return res;
  let msg = `${res.status} ${res.statusText}`;
  try {
    const j = (await res.json()) as { message?: string };
    if (j.message) msg = `${res.status}: ${j.message}`;
  } catch {
    /* not JSON */
  }
  throw new RemoteError(res.status, `${what}: ${msg}`);
}

const binary = (body: Uint8Array, token?: string): RequestInit => ({
  method: 'POST',
  body: body as unknown as BodyInit,
  headers: { 'content-type': 'application/octet-stream', ...(token ? { authorization: `Bearer ${token}` } : {}) },
});

/**
 * A client session with `heprune serve` (global fetch: Node ≥ 18 and
 * browsers): fetches the card, makes the keys, uploads the evaluation keys,
 * runs inferences (answering refresh rounds), and deletes the session.
 */
export class RemoteModel {
  private constructor(
    private readonly base: string,
    readonly client: HeClient,
    readonly info: SessionInfo,
  ) {}

  static async connect(url: string, o: ClientOptions = {}): Promise<RemoteModel> {
    const base = url.replace(/\/+$/, '');
    const card = await (await check(await fetch(`${base}/card`), 'GET /card')).json();
    const client = await HeClient.create(card, o);
    try {
      const t0 = performance.now();
      const keys = client.evaluationKeys();
      const t1 = performance.now();
      const res = await check(await fetch(`${base}/sessions`, binary(keys)), 'POST /sessions');
      const s = (await res.json()) as { session: string; token: string; ttlSeconds: number };
      return new RemoteModel(base, client, { ...s, keyBytes: keys.length, keygenMs: t1 - t0, uploadMs: performance.now() - t1 });
    } catch (e) {
      client.delete();
      throw e;
    }
  }

  /** One inference of a normalised HWC input (use `client.normalize` for raw pixels). */
  async infer(values: ArrayLike<number>): Promise<RemoteResult> {
    const { session, token } = this.info;
    const t0 = performance.now();
    const input = this.client.encryptInput(values, session);
    const t1 = performance.now();
    let bytesUp = input.length,
      bytesDown = 0,
      rounds = 0,
      refreshMs = 0;
    let res = await check(await fetch(`${this.base}/sessions/${session}/infer`, binary(input, token)), 'POST infer');
    for (;;) {
      const frame = new Uint8Array(await res.arrayBuffer());
      bytesDown += frame.length;
      const kind = decodeFrame(frame).kind;
      if (kind === 'output') {
        const t2 = performance.now();
        const output = Array.from(this.client.decryptOutput(frame));
        const t3 = performance.now();
        const serverMs = Number(decodeFrame(frame).header.serverMs ?? NaN);
        return {
          output,
          prediction: output.indexOf(Math.max(...output)),
          encryptMs: t1 - t0,
          decryptMs: t3 - t2,
          roundTripMs: t2 - t1 - refreshMs,
          serverMs,
          refreshRounds: rounds,
          refreshClientMs: refreshMs,
          bytesUp,
          bytesDown,
        };
      }
      const r0 = performance.now();
      const fresh = this.client.refresh(frame);
      refreshMs += performance.now() - r0;
      rounds++;
      bytesUp += fresh.length;
      const job = String(decodeFrame(frame).header.job);
      res = await check(await fetch(`${this.base}/sessions/${session}/jobs/${job}/refresh`, binary(fresh, token)), 'POST refresh');
    }
  }

  /** Deletes the session on the server and frees the keys here. */
  async close(): Promise<void> {
    try {
      // keepalive: a page closing its session as it unloads still gets the request out.
      await fetch(`${this.base}/sessions/${this.info.session}`, {
        method: 'DELETE',
        keepalive: true,
        headers: { authorization: `Bearer ${this.info.token}` },
      });
    } finally {
      this.client.delete();
    }
  }
}
