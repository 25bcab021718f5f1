import * as tf from '@tensorflow/tfjs';
import { Worker } from 'node:worker_threads';
import type { PreparedData } from '../../datasets/prepare.js';
import type { BackendName } from '../backend.js';
import type { GradientSource } from '../engine-types.js';
import { computeGradients, type StepInput } from '../step.js';
import type { Task } from '../zoo/common.js';
import type { FromWorker, ToWorker } from './protocol.js';

interface PoolOptions {
  model: tf.LayersModel;
  data: PreparedData;
  task: Task;
  workers: number;
  backend: BackendName;
  rangePenalty?: { bound: number; weight: number };
}

class WorkerHandle {
  private pending = new Map<number, { resolve: (m: FromWorker) => void; reject: (e: Error) => void }>();
  private ready: Promise<void>;
  constructor(
    readonly worker: Worker,
    init: ToWorker,
  ) {
    this.ready = new Promise((resolve, reject) => {
      worker.once('message', (m: FromWorker) =>
        m.type === 'ready' ? resolve() : reject(new Error(m.type === 'error' ? m.message : 'worker failed to start')),
      );
      worker.once('error', reject);
    });
    worker.postMessage(init);
    this.ready.then(
      () => {
        worker.on('message', (m: FromWorker) => {
          if (m.type === 'grads') {
            this.pending.get(m.id)?.resolve(m);
            this.pending.delete(m.id);
          } else if (m.type === 'error') {
            for (const p of this.pending.values()) p.reject(new Error(`gradient worker failed: ${m.message}`));
            this.pending.clear();
          }
        });
      },
      () => {},
    );
  }
  async started(): Promise<void> {
    await this.ready;
  }
  request(m: Extract<ToWorker, { type: 'step' }>): Promise<Extract<FromWorker, { type: 'grads' }>> {
    return new Promise((resolve, reject) => {
      this.pending.set(m.id, { resolve: resolve as (m: FromWorker) => void, reject });
      this.worker.postMessage(m, [m.xs.buffer as ArrayBuffer, m.labels.buffer as ArrayBuffer]);
    });
  }
}

/** Splits `b` into `k` contiguous shards of near-equal size. */
export function shard(b: StepInput, k: number, pixels: number): StepInput[] {
  const out: StepInput[] = [];
  for (let i = 0; i < k; i++) {
    const s = Math.floor((i * b.count) / k),
      e = Math.floor(((i + 1) * b.count) / k);
    out.push({ xs: b.xs.slice(s * pixels, e * pixels), labels: b.labels.slice(s, e), count: e - s });
  }
  return out;
}

/**
 * Synchronous data parallelism over worker_threads: the main thread computes
 * shard 0, workers 1..k-1 the rest on replicas; the summed gradient is the
 * full batch's, so the result equals single-threaded training up to float
 * rounding. Weights are re-sent after every optimizer step.
 */
export async function makeGradientSource(o: PoolOptions): Promise<GradientSource | undefined> {
  if (o.workers <= 1) return undefined;
  const init: ToWorker = {
    type: 'init',
    topology: JSON.stringify(o.model.toJSON(null, false)),
    backend: o.backend,
    task: o.task,
    numClasses: o.data.numClasses,
    shape: [...o.data.shape] as [number, number, number],
    rangePenalty: o.rangePenalty,
  };
  const url = new URL('./worker.js', import.meta.url);
  const handles = Array.from({ length: o.workers - 1 }, () => new WorkerHandle(new Worker(url), init));
  await Promise.all(handles.map((h) => h.started()));
  const pixels = o.data.shape[0] * o.data.shape[1] * o.data.shape[2];
  const ctx = { model: o.model, task: o.task, numClasses: o.data.numClasses, shape: o.data.shape, rangePenalty: o.rangePenalty };
  let nextId = 0;
  let weightsChanged = true;
  let weights: Float32Array[] = [];
  return {
    async gradients(b) {
      if (weightsChanged) {
        weights = o.model.getWeights().map((w) => w.dataSync() as Float32Array);
        weightsChanged = false;
      }
      const shards = shard(b, handles.length + 1, pixels);
      const remote = handles.map((h, i) =>
        h.request({ type: 'step', id: nextId++, weights: weights.map((w) => w.slice()), ...shards[i + 1] }),
      );
      const local = computeGradients(ctx, shards[0]);
      const results = await Promise.all(remote);
      const vars = o.model.trainableWeights;
      const grads = tf.tidy(() =>
        local.grads.map((g, j) => tf.addN([g, ...results.map((r) => tf.tensor(r.grads[j], vars[j].shape as number[]))])),
      );
      tf.dispose(local.grads);
      return {
        lossSum: local.lossSum + results.reduce((a, r) => a + r.lossSum, 0),
        correct: local.correct + results.reduce((a, r) => a + r.correct, 0),
        grads,
      };
    },
    async afterUpdate() {
      weightsChanged = true;
    },
    async close() {
      for (const h of handles) h.worker.postMessage({ type: 'close' } satisfies ToWorker);
      await Promise.all(handles.map((h) => h.worker.terminate()));
    },
  };
}
