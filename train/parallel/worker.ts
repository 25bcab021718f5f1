/**
 * A gradient worker: its own tfjs (and wasm instance) and a replica of the
 * model. For each shard it takes the latest weights, computes summed
 * gradients and sends them back; the optimizer runs only in the main thread.
 */
import * as tf from '@tensorflow/tfjs';
import { parentPort } from 'node:worker_threads';
import { initBackend } from '../backend.js';
import { computeGradients, type StepContext } from '../step.js';
import '../layers/poly-activation.js';
import '../layers/grouped-conv.js';
import type { FromWorker, ToWorker } from './protocol.js';

let ctx: StepContext | undefined;
const port = parentPort!;
const send = (m: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

port.on('message', async (m: ToWorker) => {
  try {
    if (m.type === 'init') {
      await initBackend(m.backend);
      const model = await tf.models.modelFromJSON(JSON.parse(m.topology));
      ctx = { model, task: m.task, numClasses: m.numClasses, shape: m.shape, rangePenalty: m.rangePenalty };
      send({ type: 'ready' });
    } else if (m.type === 'step') {
      const c = ctx!;
      if (m.weights) {
        const ws = c.model.weights;
        tf.tidy(() => c.model.setWeights(m.weights!.map((w, i) => tf.tensor(w, ws[i].shape as number[]))));
      }
      const r = computeGradients(c, { xs: m.xs, labels: m.labels, count: m.count });
      const grads = r.grads.map((g) => g.dataSync() as Float32Array);
      tf.dispose(r.grads);
      send(
        { type: 'grads', id: m.id, lossSum: r.lossSum, correct: r.correct, grads },
        grads.map((g) => g.buffer as ArrayBuffer),
      );
    } else if (m.type === 'close') {
      ctx?.model.dispose();
      port.close();
    }
  } catch (e) {
    send({ type: 'error', message: (e as Error).stack ?? String(e) });
  }
});
