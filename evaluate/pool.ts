import { Worker } from 'node:worker_threads';
import type { ImageResult, SessionSetup } from './ckks-session.js';

/**
 * Runs CKKS inference over worker threads (one node-seal instance and key set
 * per worker); images are handed out one at a time so the load stays even.
 */
export async function evaluateEncrypted(o: {
  exportDir: string;
  inputs: Float64Array[][];
  workers: number;
  plaintextBudget?: number;
  onResult?: (done: number) => void;
}): Promise<{ results: ImageResult[]; setups: SessionSetup[]; wallMs: number }> {
  const url = new URL('./worker.js', import.meta.url);
  const n = Math.max(1, Math.min(o.workers, o.inputs.length));
  const results: ImageResult[] = new Array(o.inputs.length);
  const setups: SessionSetup[] = [];
  let next = 0,
    done = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<void>((resolve, reject) => {
          const w = new Worker(url, { workerData: { exportDir: o.exportDir, plaintextBudget: o.plaintextBudget } });
          const feed = () => {
            if (next >= o.inputs.length) {
              w.postMessage({ type: 'close' });
              return;
            }
            const index = next++;
            w.postMessage({ type: 'image', index, packed: o.inputs[index] });
          };
          w.on('message', (m: { type: string; setup?: SessionSetup; index?: number; result?: ImageResult; message?: string }) => {
            if (m.type === 'ready') {
              setups.push(m.setup!);
              feed();
            } else if (m.type === 'result') {
              results[m.index!] = m.result!;
              done++;
              o.onResult?.(done);
              feed();
            } else if (m.type === 'error') {
              w.terminate();
              reject(new Error(`CKKS evaluation worker failed: ${m.message}`));
            }
          });
          w.on('error', reject);
          w.on('exit', () => resolve());
        }),
    ),
  );
  return { results, setups, wallMs: performance.now() - t0 };
}
