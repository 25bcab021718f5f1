/**
 * The wasm fallback's three measured hot spots, old against new in one run,
 * at VGG-5's shapes (batch 64, RANDOM inputs, timing only):
 *  - conv1's weight gradient (3 input channels, 32x32): the swapped forward
 *    conv with a 32x32 "filter" against one product per kernel offset;
 *  - the average-pool gradient (2x2, stride 2) of conv1's output: the stock
 *    kernel against the broadcast;
 *  - the bias gradient, a sum over N·H·W of conv1's output: the stock Sum
 *    against a product with a row of ones.
 *
 *   npm run bench:wasm-hotspots -- [--reps 5]
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import type { TensorInfo } from '@tensorflow/tfjs';
import {
  avgPoolGradFast,
  convGeometry,
  filterGradByOffsets,
  filterGradBySwappedConv,
  sumFast,
  type Backend,
} from '../train/wasm-kernels.js';

const args = await yargs(hideBin(process.argv)).option('reps', { type: 'number', default: 5 }).strict().parseAsync();
await tf.setBackend('wasm');
await tf.ready();
const backend = tf.backend() as unknown as Backend;
const stock = (name: string) => tf.getKernel(name, 'wasm')!.kernelFunc;

const info = (t: tf.Tensor): TensorInfo => ({ dataId: t.dataId, shape: t.shape, dtype: t.dtype });
const rand = (shape: number[]) => tf.randomNormal(shape);

/** Median ms of `f` (its output freed each time), after one warm-up call. */
function time(f: () => TensorInfo): number {
  backend.disposeData(f().dataId);
  const ms: number[] = [];
  for (let i = 0; i < args.reps; i++) {
    const t0 = performance.now();
    const out = f();
    ms.push(performance.now() - t0);
    backend.disposeData(out.dataId);
  }
  return ms.sort((a, b) => a - b)[Math.floor(ms.length / 2)];
}

const x = rand([64, 32, 32, 3]),
  dy = rand([64, 32, 32, 64]);
const filterShape = [3, 3, 3, 64];
const g = convGeometry(x.shape, filterShape, { strides: [1, 1], pad: 'same' });
const y = rand([64, 32, 32, 64]),
  dyPool = rand([64, 16, 16, 64]);
const poolArgs = { inputs: { dy: info(dyPool), input: info(y) }, backend, attrs: { filterSize: [2, 2], strides: [2, 2], pad: 'valid' } };
const sumArgs = { inputs: { x: info(y) }, backend, attrs: { axis: [0, 1, 2], keepDims: false } };

const rows: [string, number, number][] = [
  [
    'conv1 weight gradient (64×32×32×3 → 3x3x3x64)',
    time(() => filterGradBySwappedConv(info(x), info(dy), backend, filterShape, g)),
    time(() => filterGradByOffsets(info(x), info(dy), backend, filterShape, g)),
  ],
  [
    'average-pool gradient 2x2 (64×32×32×64)',
    time(() => stock('AvgPoolGrad')(poolArgs as never) as TensorInfo),
    time(() => avgPoolGradFast(stock('AvgPoolGrad'))(poolArgs as never)),
  ],
  [
    'bias gradient: Sum over N·H·W (64×32×32×64)',
    time(() => stock('Sum')(sumArgs as never) as TensorInfo),
    time(() => sumFast(stock('Sum'))(sumArgs as never)),
  ],
];
console.log(`\nwasm hot spots, median of ${args.reps} (ms; ${new Date().toISOString()}, node ${process.version})`);
console.log('| operation | before | after | speedup |');
console.log('|---|---|---|---|');
for (const [name, before, after] of rows)
  console.log(`| ${name} | ${before.toFixed(1)} | ${after.toFixed(1)} | ${(before / after).toFixed(1)}x |`);
