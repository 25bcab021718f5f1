/**
 * bench/compare-latency `--resident one`: one export set up, warmed up and
 * timed once in a fresh thread. The thread's wasm heap goes with it, so what
 * one export's keys and weights left in SEAL's memory pool (which keeps freed
 * memory for objects of the same size) never crowds the next export's.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadExport } from '../export/artifact.js';
import { infer, setUp, tearDown } from './latency-session.js';

const { dir, packed, plaintextBudget, warmup } = workerData as {
  dir: string;
  packed: Float64Array[];
  plaintextBudget: number;
  warmup: number;
};
try {
  const { plan } = await loadExport(dir);
  const s = await setUp(plan, plaintextBudget);
  for (let w = 0; w < warmup; w++) infer(s, packed);
  const t = infer(s, packed);
  tearDown(s);
  parentPort!.postMessage({ ok: true, ...t });
} catch (e) {
  parentPort!.postMessage({ ok: false, message: (e as Error).message });
}
