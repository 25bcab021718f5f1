/** Evaluation worker: its own node-seal instance and CKKS session; encrypts, evaluates and decrypts the images it is sent. */
import { parentPort, workerData } from 'node:worker_threads';
import { loadExport } from '../export/artifact.js';
import { CkksSession } from './ckks-session.js';

const port = parentPort!;
const { exportDir, plaintextBudget } = workerData as { exportDir: string; plaintextBudget?: number };
try {
  const { plan } = await loadExport(exportDir);
  const session = await CkksSession.open(plan, { plaintextBudget });
  port.postMessage({ type: 'ready', setup: session.setup });
  port.on('message', (m: { type: 'image'; index: number; packed: Float64Array[] } | { type: 'close' }) => {
    if (m.type === 'close') {
      session.close();
      port.close();
      return;
    }
    try {
      port.postMessage({ type: 'result', index: m.index, result: session.infer(m.packed) });
    } catch (e) {
      port.postMessage({ type: 'error', message: (e as Error).message });
    }
  });
} catch (e) {
  port.postMessage({ type: 'error', message: (e as Error).message });
}
