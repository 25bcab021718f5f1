import type { ServerKeys } from '../he/client.js';

/** Messages between the server's main thread and its evaluation workers (server/worker). */
export type ToWorker =
  | { t: 'open'; req: string; session: string; keys: ServerKeys }
  | { t: 'close'; req: string; session: string }
  | { t: 'infer'; req: string; session: string; cts: Uint8Array[] }
  | { t: 'stats'; req: string }
  | { t: 'shutdown' };

export type FromWorker =
  | { t: 'ready'; heapBytes: number }
  | { t: 'ok'; req: string }
  | { t: 'error'; req: string; status: number; message: string }
  | { t: 'refresh'; req: string; round: number; bytes: Uint8Array }
  | { t: 'done'; req: string; outs: Uint8Array[]; serverMs: number }
  | { t: 'stats'; req: string; heapBytes: number; sessions: number };

/** The main thread's answer to one refresh round (on the reply port): the refreshed ciphertext, or why the job stops. */
export interface RefreshReply {
  job: string;
  round: number;
  bytes?: Uint8Array;
  abort?: { status: number; message: string };
}
