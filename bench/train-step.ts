/**
 * Training-step benchmark: ms per step (batch 64, SGD) for LeNet-5, VGG-5 and
 * ResNet-20 on each available tfjs backend, the stock-cpu/wasm ratio measured
 * in this run, and the speedup of 2 data-parallel workers over 1 on wasm.
 * Inputs are random tensors (timing only, no accuracy is measured here).
 *
 *   npm run bench:train -- [--models lenet5,vgg5,resnet20] [--steps 5] [--cpu-steps 2] [--no-cpu] [--no-workers]
 */
import * as tf from '@tensorflow/tfjs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { initBackend, type BackendName } from '../train/backend.js';
import { buildModel, modelSchema } from '../train/zoo/registry.js';
import { applyGradients, computeGradients } from '../train/step.js';
import { makeGradientSource } from '../train/parallel/pool.js';
import type { GradientSource } from '../train/fit.js';
import type { PreparedData } from '../datasets/prepare.js';

const args = await yargs(hideBin(process.argv))
  .option('models', { type: 'string', default: 'lenet5,vgg5,resnet20' })
  .option('steps', { type: 'number', default: 5, describe: 'timed steps per model on fast backends' })
  .option('cpu-steps', { type: 'number', default: 2, describe: 'timed steps on the (slow) stock cpu backend' })
  .option('batch', { type: 'number', default: 64 })
  .option('cpu', { type: 'boolean', default: true })
  .option('cpu-models', { type: 'string', describe: 'models to time on the (very slow) stock cpu backend; default all' })
  .option('workers', { type: 'boolean', default: true })
  .strict().parseAsync();

const SHAPES: Record<string, [number, number, number]> = { lenet5: [28, 28, 1], cryptonets: [28, 28, 1], vgg5: [32, 32, 3], hefnet: [32, 32, 3], resnet20: [32, 32, 3] };

interface Timing { model: string; backend: string; workers: number; msPerStep: number; steps: number }

async function timeSteps(modelName: string, backend: BackendName, steps: number, workers: number): Promise<Timing> {
  await initBackend(backend);
  const shape = SHAPES[modelName];
  const model = buildModel(modelSchema.parse({ name: modelName, activation: 'quadratic' }), { inputShape: shape, numClasses: 10 });
  const opt = tf.train.sgd(1e-3);
  const pixels = shape[0] * shape[1] * shape[2];
  const ctx = { model, task: 'classification' as const, numClasses: 10, shape };
  const fakeData = { shape, numClasses: 10 } as unknown as PreparedData;
  const pool: GradientSource | undefined = workers > 1 ? await makeGradientSource({ model, data: fakeData, task: 'classification', workers, backend }) : undefined;
  const batch = () => ({
    xs: Float32Array.from({ length: args.batch * pixels }, () => Math.random() * 2 - 1),
    labels: Int32Array.from({ length: args.batch }, () => Math.floor(Math.random() * 10)), count: args.batch,
  });
  const step = async () => {
    const b = batch();
    const g = pool ? await pool.gradients(b) : computeGradients(ctx, b);
    applyGradients(model, opt, g.grads, b.count, { clipNorm: 5, weightDecay: 0, learningRate: 1e-3 });
    await pool?.afterUpdate?.();
  };
  await step(); // warm-up: kernel setup, worker start, first allocation
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) await step();
  const ms = (performance.now() - t0) / steps;
  await pool?.close?.();
  model.dispose(); opt.dispose();
  return { model: modelName, backend, workers, msPerStep: +ms.toFixed(1), steps };
}

const models = args.models.split(',').map((s) => s.trim()).filter(Boolean);
const backends: BackendName[] = [];
for (const b of ['tensorflow', 'wasm'] as BackendName[]) {
  try { await initBackend(b); backends.push(b); } catch { process.stderr.write(`backend ${b}: not available, skipped\n`); }
}
if (args.cpu) backends.push('cpu');

const rows: Timing[] = [];
for (const m of models) {
  const cpuModels = args.cpuModels?.split(',').map((x) => x.trim());
  for (const b of backends) {
    if (b === 'cpu' && cpuModels && !cpuModels.includes(m)) continue;
    const r = await timeSteps(m, b, b === 'cpu' ? args.cpuSteps : args.steps, 1);
    rows.push(r);
    process.stderr.write(`${m} ${b}: ${r.msPerStep} ms/step\n`);
  }
  if (args.workers && backends.includes('wasm')) {
    const r = await timeSteps(m, 'wasm', args.steps, 2);
    rows.push(r);
    process.stderr.write(`${m} wasm x2 workers: ${r.msPerStep} ms/step\n`);
  }
}

const find = (m: string, b: string, w = 1) => rows.find((r) => r.model === m && r.backend === b && r.workers === w);
console.log(`\nTraining step, batch ${args.batch}, SGD (ms/step; ${new Date().toISOString()}, node ${process.version})`);
console.log('| model | ' + backends.map((b) => b === 'cpu' ? 'cpu (stock)' : b).join(' | ') + ' | wasm, 2 workers | stock cpu / wasm | 2 workers speedup |');
console.log('|---|' + backends.map(() => '---|').join('') + '---|---|---|');
for (const m of models) {
  const cells = backends.map((b) => `${find(m, b)?.msPerStep ?? '-'}`);
  const w1 = find(m, 'wasm')?.msPerStep, w2 = find(m, 'wasm', 2)?.msPerStep, cpu = find(m, 'cpu')?.msPerStep;
  console.log(`| ${m} | ${cells.join(' | ')} | ${w2 ?? '-'} | ${cpu && w1 ? (cpu / w1).toFixed(1) + 'x' : '-'} | ${w1 && w2 ? (w1 / w2).toFixed(2) + 'x' : '-'} |`);
}
