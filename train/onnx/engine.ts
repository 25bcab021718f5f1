import * as tf from '@tensorflow/tfjs';
import { availableParallelism } from 'node:os';
import { batchIndices, batchLabels, batchPixels, type Normalization } from '../../datasets/prepare.js';
import type { Split } from '../../datasets/types.js';
import type { SplitMetrics } from '../evaluate-model.js';
import type { NamedTensor, OptimizerState } from '../checkpoint.js';
import type { TrainEngine } from '../engine-types.js';
import type { TrainConfig } from '../options.js';
import type { StepInput } from '../step.js';
import type { Task } from '../zoo/common.js';
import { buildEvalGraph, buildStepGraph, type GraphLayout } from './model-graph.js';
import { UnsupportedLayerError } from './layers.js';
import { sessionOptions, type OrtApi, type OrtSession, type OrtTensor } from './runtime.js';

export interface OnnxEngineOptions {
  ort: OrtApi;
  model: tf.LayersModel;
  task: Task;
  numClasses: number;
  shape: readonly [number, number, number];
  cfg: TrainConfig;
  /** Kernel masks by layer name, held after every update. */
  masks?: Map<string, Float32Array>;
  threads?: number;
}

/** Optimizer slot names as tfjs writes them, so checkpoints resume on either backend. */
const SLOT_SUFFIX = { sgd: [], momentum: ['/momentum'], adam: ['/m', '/v'] } as const;
const SLOT_INPUT = ['m', 'v'];

/**
 * Trains a tfjs model with onnxruntime: each step is one run of a graph that
 * takes the weights and optimizer state and returns their updated values,
 * which stay as runtime tensors between steps; the tfjs model (and the
 * optimizer state in tfjs's format) is written only on sync().
 */
export class OnnxEngine implements TrainEngine {
  readonly name = 'onnx';
  private state = new Map<string, OrtTensor>();
  private iterations = 0;
  private lastExported: tf.Tensor[] = [];
  readonly optimizerState: OptimizerState;

  private constructor(
    private o: OnnxEngineOptions,
    private train: OrtSession,
    private evaluation: OrtSession,
    private layout: GraphLayout,
  ) {
    this.optimizerState = { getWeights: () => this.exportOptimizer(), setWeights: (w) => this.importOptimizer(w) };
  }

  static async create(o: OnnxEngineOptions): Promise<OnnxEngine> {
    const masked = [...(o.masks?.keys() ?? [])].map((layer) => o.model.getLayer(layer).trainableWeights[0].name);
    const { bytes, layout } = buildStepGraph({
      model: o.model,
      task: o.task,
      numClasses: o.numClasses,
      shape: o.shape,
      optimizer: o.cfg.optimizer,
      momentum: o.cfg.momentum,
      clipNorm: o.cfg.clipNorm,
      weightDecay: o.cfg.weightDecay,
      rangePenalty: o.cfg.rangePenalty,
      masked,
    });
    const profile = process.env.HEPRUNE_ONNX_PROFILE;
    const opts = {
      ...sessionOptions(o.threads ?? availableParallelism()),
      ...(profile ? { enableProfiling: true, profileFilePrefix: profile } : {}),
    };
    // A graph onnxruntime refuses (an operator or shape it does not support) is a model this backend cannot train.
    const session = (b: Uint8Array) =>
      o.ort.InferenceSession.create(b, opts).catch((e: Error) => {
        throw new UnsupportedLayerError(`onnxruntime refused the training graph of ${o.model.name} (${e.message.split('\n')[0]})`);
      });
    const train = await session(bytes);
    const evaluation = await session(buildEvalGraph(o)).catch(async (e) => {
      await train.release();
      throw e;
    });
    const e = new OnnxEngine(o, train, evaluation, layout);
    if (o.masks?.size) {
      const mask = new Float32Array(layout.size).fill(1);
      for (const [layer, m] of o.masks) mask.set(m, e.slotOf(o.model.getLayer(layer).trainableWeights[0].name).offset);
      e.state.set('mask', e.vector(mask));
    }
    for (let s = 0; s < layout.slots; s++) e.state.set(SLOT_INPUT[s], e.vector(new Float32Array(layout.size)));
    await e.reload();
    return e;
  }

  private vector(data: Float32Array): OrtTensor {
    return new this.o.ort.Tensor('float32', data, [data.length]);
  }

  private slotOf(name: string) {
    const w = this.layout.weights.find((x) => x.name === name);
    if (!w) throw new Error(`no weight ${name} in the training graph`);
    return w;
  }

  async reload(): Promise<void> {
    const theta = new Float32Array(this.layout.size);
    this.o.model.weights.forEach((w, i) => {
      const slot = this.layout.weights[i];
      const data = w.read().dataSync() as Float32Array;
      if (slot.trainable) theta.set(data, slot.offset);
      else this.state.set(`w${i}`, new this.o.ort.Tensor('float32', data.slice(), slot.shape));
    });
    this.state.set('theta', this.vector(theta));
  }

  async step(b: StepInput, lr: number): Promise<{ lossSum: number; correct: number }> {
    const { ort, cfg } = this.o;
    const scalar = (v: number) => new ort.Tensor('float32', Float32Array.of(v), []);
    const feeds: Record<string, OrtTensor> = {
      x: new ort.Tensor('float32', b.xs, [b.count, ...this.o.shape]),
      labels: new ort.Tensor(
        'int64',
        BigInt64Array.from(b.labels, (v) => BigInt(v)),
        [b.count],
      ),
      lr: scalar(lr),
    };
    if (cfg.optimizer === 'adam') {
      const t = this.iterations + 1;
      feeds.bc1 = scalar(1 / (1 - 0.9 ** t));
      feeds.bc2 = scalar(1 / (1 - 0.999 ** t));
    }
    if (cfg.weightDecay > 0) feeds.decay = scalar(lr * cfg.weightDecay);
    for (const name of this.train.inputNames) if (!(name in feeds)) feeds[name] = this.state.get(name)!;
    const out = await this.train.run(feeds);
    const loss = (out.loss.data as Float32Array)[0];
    const correct = (out.correct.data as Float32Array)[0];
    // A non-finite loss leaves the weights as they were (the caller reports divergence).
    if (Number.isFinite(loss)) {
      for (const [name, t] of Object.entries(out)) if (name.endsWith('.next')) this.state.set(name.slice(0, -5), t);
      this.iterations++;
    }
    return { lossSum: loss * b.count, correct };
  }

  /** A trainable weight's current values (a view into theta). */
  private trainableValues(key: string, i: number): Float32Array {
    const slot = this.layout.weights[i];
    return (this.state.get(key)!.data as Float32Array).subarray(slot.offset, slot.offset + slot.size);
  }

  async sync(): Promise<void> {
    const ws = this.o.model.weights;
    tf.tidy(() =>
      ws.forEach((w, i) => {
        const data = this.layout.weights[i].trainable ? this.trainableValues('theta', i) : (this.state.get(`w${i}`)!.data as Float32Array);
        w.write(tf.tensor(data, w.shape as number[]));
      }),
    );
  }

  async evaluate(split: Split, o: { normalization: Normalization; batchSize: number }): Promise<SplitMetrics> {
    const { ort } = this.o;
    let lossSum = 0,
      correct = 0;
    for (const idx of batchIndices(split.count, o.batchSize)) {
      const feeds: Record<string, OrtTensor> = {
        x: new ort.Tensor('float32', batchPixels(split, idx, this.o.shape, o.normalization), [idx.length, ...this.o.shape]),
        labels: new ort.Tensor(
          'int64',
          BigInt64Array.from(batchLabels(split, idx), (v) => BigInt(v)),
          [idx.length],
        ),
      };
      for (const name of this.evaluation.inputNames) if (!(name in feeds)) feeds[name] = this.state.get(name)!;
      const out = await this.evaluation.run(feeds);
      lossSum += (out.loss.data as Float32Array)[0] * idx.length;
      correct += (out.correct.data as Float32Array)[0];
    }
    const n = Math.max(split.count, 1);
    return { loss: lossSum / n, accuracy: this.o.task === 'classification' ? correct / n : undefined, count: split.count };
  }

  /** Optimizer state in tfjs's order and names: iterations, then each slot over the trainable weights. */
  private async exportOptimizer(): Promise<NamedTensor[]> {
    tf.dispose(this.lastExported);
    const named: NamedTensor[] = [{ name: 'iter', tensor: tf.scalar(this.iterations, 'int32') }];
    const suffix = SLOT_SUFFIX[this.o.cfg.optimizer];
    for (let s = 0; s < this.layout.slots; s++) {
      this.layout.weights.forEach((w, i) => {
        if (w.trainable) named.push({ name: `${w.name}${suffix[s]}`, tensor: tf.tensor(this.trainableValues(SLOT_INPUT[s], i), w.shape) });
      });
    }
    this.lastExported = named.map((n) => n.tensor);
    return named;
  }

  private async importOptimizer(named: NamedTensor[]): Promise<void> {
    this.iterations = named[0].tensor.dataSync()[0];
    const trainable = this.layout.weights.filter((w) => w.trainable);
    // A state with no slots (saved before any step) leaves the slots at zero.
    if (named.length === 1) return;
    if (named.length !== 1 + this.layout.slots * trainable.length) {
      throw new Error(
        `optimizer state has ${named.length - 1} slot tensors, the ${this.o.cfg.optimizer} optimizer of this model needs ${this.layout.slots * trainable.length}`,
      );
    }
    for (let s = 0; s < this.layout.slots; s++) {
      const v = new Float32Array(this.layout.size);
      trainable.forEach((w, j) => {
        const t = named[1 + s * trainable.length + j].tensor;
        if (t.size !== w.size)
          throw new Error(
            `optimizer state: slot ${j} of ${named[1 + s * trainable.length + j].name} holds ${t.size} values, weight ${w.name} has ${w.size}`,
          );
        v.set(t.dataSync() as Float32Array, w.offset);
      });
      this.state.set(SLOT_INPUT[s], this.vector(v));
    }
  }

  async close(): Promise<void> {
    tf.dispose(this.lastExported);
    await this.train.release();
    await this.evaluation.release();
  }
}
