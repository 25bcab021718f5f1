/**
 * Training-step benchmark, one run: median ms per step and GFLOP/s at batch 64 for
 * each model on the wasm (tfjs) and onnx (onnxruntime-node) engines side by
 * side, the batch pipeline's time per batch (decode, normalise, shift and
 * flip, on SYNTHETIC images of the model's shape) as a share of each step, what
 * passing the weights and optimizer state through onnxruntime costs, and
 * the machine's sgemm rate (a 2048³ matrix product in onnxruntime, all cores)
 * to read the GFLOP/s against. Inputs are random: timing only, no accuracy.
 *
 *   npm run bench:train -- [--models lenet5,vgg5,hefnet,resnet20] [--steps 5] [--wasm-steps 3] [--workers] [--cpu]
 */
import * as tf from '@tensorflow/tfjs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { availableParallelism } from 'node:os';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '../common/log.js';
import { Rng } from '../common/rng.js';
import { batchIndices, batchLabels, batchPixels, prepareData, type PreparedData } from '../datasets/prepare.js';
import { syntheticSource } from '../datasets/synthetic.js';
import { initBackend, type BackendName } from '../train/backend.js';
import { makeEngine } from '../train/engine.js';
import { Graph } from '../train/onnx/graph.js';
import { loadOnnxRuntime, sessionOptions } from '../train/onnx/runtime.js';
import { trainSchema } from '../train/options.js';
import { buildModel, modelSchema } from '../train/zoo/registry.js';

const args = await yargs(hideBin(process.argv))
  .option('models', { type: 'string', default: 'lenet5,vgg5,hefnet,resnet20' })
  .option('steps', { type: 'number', default: 15, describe: 'timed steps per model on onnx (the median is reported)' })
  .option('wasm-steps', { type: 'number', default: 5, describe: 'timed steps per model on wasm (the median is reported)' })
  .option('batch', { type: 'number', default: 64 })
  .option('workers', { type: 'boolean', default: false, describe: 'also time wasm with 2 data-parallel workers' })
  .option('cpu', { type: 'boolean', default: false, describe: 'also time the (very slow) stock cpu backend' })
  .option('one', {
    type: 'string',
    hidden: true,
    describe: 'model:backend:workers:steps — time one case and print it as JSON (the parent runs each case in a process of its own)',
  })
  .strict()
  .parseAsync();

const SHAPES: Record<string, [number, number, number]> = {
  lenet5: [28, 28, 1],
  cryptonets: [28, 28, 1],
  mlp: [28, 28, 1],
  vgg5: [32, 32, 3],
  hefnet: [32, 32, 3],
  resnet20: [32, 32, 3],
};

/** Multiply-adds ×2 of one training step: forward, input gradient (not for the first layer) and weight gradient of every conv and dense layer. */
function stepFlops(model: tf.LayersModel, batch: number): number {
  let total = 0,
    first = true;
  for (const l of model.layers) {
    const cls = l.getClassName();
    const out = l.outputShape as number[];
    let fwd = 0;
    if (cls === 'HeGroupedConv2D') {
      const c = l.getConfig() as { kernelSize: number; groups: number };
      const cin = (l.inboundNodes[0].inboundLayers[0].outputShape as number[])[3];
      fwd = 2 * batch * out[1] * out[2] * out[3] * (cin / c.groups) * c.kernelSize ** 2;
    } else if (cls === 'Dense') {
      const [fanIn, units] = l.weights[0].shape as number[];
      fwd = 2 * batch * fanIn * units;
    }
    if (fwd) {
      total += fwd * (first ? 2 : 3);
      first = false;
    }
  }
  return total;
}

interface Timing {
  model: string;
  engine: string;
  msPerStep: number;
  gflops: number;
  batchMs: number;
  stateMs?: number;
}

/**
 * What keeping the weights "in the session" costs with onnxruntime-node: each
 * run copies its inputs in and its outputs out, so a graph that only passes
 * the state through (weights and Adam's two slots) times that copy alone.
 */
async function stateRoundTripMs(size: number): Promise<number> {
  const { ort } = await loadOnnxRuntime();
  const g = new Graph();
  for (const n of ['theta', 'm', 'v']) g.output(`${n}.next`, g.op('Identity', [g.input(n, 'float', [size])]), 'float', [size]);
  const s = await ort!.InferenceSession.create(g.encode('state'), sessionOptions());
  const feeds = Object.fromEntries(['theta', 'm', 'v'].map((n) => [n, new ort!.Tensor('float32', new Float32Array(size), [size])]));
  await s.run(feeds);
  const times: number[] = [];
  for (let i = 0; i < 9; i++) {
    const t0 = performance.now();
    await s.run(feeds);
    times.push(performance.now() - t0);
  }
  await s.release();
  return times.sort((a, b) => a - b)[4];
}

async function timeSteps(modelName: string, backend: BackendName, steps: number, workers = 1): Promise<Timing> {
  await initBackend(backend === 'onnx' ? 'onnx' : backend);
  const shape = SHAPES[modelName];
  const model = buildModel(modelSchema.parse({ name: modelName, activation: 'quadratic' }), { inputShape: shape, numClasses: 10 });
  const cfg = trainSchema.parse({ optimizer: 'sgd', clipNorm: 5, workers, backend, augment: { shift: 2, flip: shape[2] === 3 } });
  // SYNTHETIC images of the model's shape, through the same batch pipeline as training (timing only).
  const ds = await syntheticSource.load({
    cacheDir: '',
    trainCount: args.batch * 4,
    testCount: 1,
    imageSize: [shape[0], shape[1]],
    channels: shape[2] as 1 | 3,
    numClasses: 10,
  });
  const data: PreparedData = prepareData(ds, { normalize: 'standard', validation: 0, seed: 1 });
  const engine = await makeEngine({ model, data, task: 'classification', cfg, backend, logger: silentLogger });
  const rng = new Rng(3);
  let batchMs = 0;
  const batch = () => {
    const t = performance.now();
    const idx = batchIndices(data.train.count, args.batch, rng).next().value as Int32Array;
    const b = {
      xs: batchPixels(data.train, idx, shape, data.normalization, { ...cfg.augment, rng }),
      labels: batchLabels(data.train, idx),
      count: idx.length,
    };
    batchMs += performance.now() - t;
    return b;
  };
  await engine.step(batch(), 1e-3); // warm-up: kernel setup, session planning, worker start
  batchMs = 0;
  const inputs = Array.from({ length: steps }, batch);
  // The median step: this kind of machine has neighbours, and a mean of a few steps moves with them.
  const times: number[] = [];
  for (const b of inputs) {
    const t0 = performance.now();
    await engine.step(b, 1e-3);
    times.push(performance.now() - t0);
  }
  const ms = times.sort((x, y) => x - y)[Math.floor(steps / 2)];
  const flops = stepFlops(model, args.batch);
  const params = model.trainableWeights.reduce((a, w) => a + w.shape.reduce((x: number, y) => x * (y as number), 1), 0);
  const stateMs = engine.name === 'onnx' ? +(await stateRoundTripMs(params)).toFixed(2) : undefined;
  await engine.close();
  model.dispose();
  return {
    model: modelName,
    engine: workers > 1 ? `${engine.name} ×${workers} workers` : engine.name,
    msPerStep: +ms.toFixed(1),
    gflops: +(flops / ms / 1e6).toFixed(1),
    batchMs: +(batchMs / steps).toFixed(2),
    stateMs,
  };
}

/** The CPU's practical float32 rate: a 2048³ product in onnxruntime on every core. */
async function sgemmGflops(): Promise<number | undefined> {
  const { ort } = await loadOnnxRuntime();
  if (!ort) return undefined;
  const n = 2048;
  const g = new Graph();
  g.output('c', g.op('MatMul', [g.input('a', 'float', [n, n]), g.input('b', 'float', [n, n])]), 'float', [n, n]);
  const s = await ort.InferenceSession.create(g.encode('sgemm'), sessionOptions());
  const a = new ort.Tensor(
    'float32',
    Float32Array.from({ length: n * n }, () => Math.random()),
    [n, n],
  );
  await s.run({ a, b: a });
  const t0 = performance.now();
  const reps = 5;
  for (let i = 0; i < reps; i++) await s.run({ a, b: a });
  await s.release();
  return (2 * n ** 3) / ((performance.now() - t0) / reps) / 1e6;
}

if (args.one) {
  const [m, b, w, n] = args.one.split(':');
  console.log(JSON.stringify(await timeSteps(m, b as BackendName, +n, +w)));
  process.exit(0);
}

/** Each case in a fresh process: engines in one process disturb each other's timings (wasm's heap, runtime thread pools). */
function timeInChild(m: string, b: BackendName, steps: number, workers: number): Timing {
  const r = spawnSync(
    process.execPath,
    [fileURLToPath(import.meta.url), '--one', `${m}:${b}:${workers}:${steps}`, '--batch', String(args.batch)],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`bench case ${m} ${b} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Timing;
}

const models = args.models
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const onnx = (await loadOnnxRuntime()).ort !== undefined;
if (!onnx) process.stderr.write('onnx: onnxruntime-node does not load here, skipped\n');
const sgemm = await sgemmGflops();
const rows: Timing[] = [];
for (const m of models) {
  const plan: [BackendName, number, number][] = [['wasm', args.wasmSteps, 1]];
  if (args.workers) plan.push(['wasm', args.wasmSteps, 2]);
  if (args.cpu) plan.push(['cpu', 1, 1]);
  if (onnx) plan.push(['onnx', args.steps, 1]);
  for (const [b, steps, w] of plan) {
    const r = timeInChild(m, b, steps, w);
    rows.push(r);
    process.stderr.write(`${m} ${r.engine}: ${r.msPerStep} ms/step, ${r.gflops} GFLOP/s, batch ${r.batchMs} ms\n`);
  }
}

console.log(
  `\nTraining step, batch ${args.batch}, SGD, median of ${args.wasmSteps} (wasm) / ${args.steps} (onnx) steps, each engine in a process of its own (${new Date().toISOString()}, node ${process.version}, ${availableParallelism()} cores; ` +
    `sgemm 2048³ in onnxruntime: ${sgemm ? sgemm.toFixed(0) + ' GFLOP/s' : 'n/a'})`,
);
console.log(
  '| model | engine | ms/step | GFLOP/s | of sgemm | batch prep ms (share of step) | state copy in+out ms (share) | onnx speedup |',
);
console.log('|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  const wasm = rows.find((x) => x.model === r.model && x.engine === 'wasm');
  const speed = r.engine === 'onnx' && wasm ? `${(wasm.msPerStep / r.msPerStep).toFixed(1)}x` : '';
  const state = r.stateMs !== undefined ? `${r.stateMs} (${((100 * r.stateMs) / r.msPerStep).toFixed(1)}%)` : '';
  console.log(
    `| ${r.model} | ${r.engine} | ${r.msPerStep} | ${r.gflops} | ${sgemm ? ((100 * r.gflops) / sgemm).toFixed(0) + '%' : '-'} | ${r.batchMs} (${((100 * r.batchMs) / r.msPerStep).toFixed(1)}%) | ${state} | ${speed} |`,
  );
}
