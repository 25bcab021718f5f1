/**
 * `heprune serve` under load on loopback: the server as its own process
 * (`heprune serve --model X --workers W`), C concurrent clients in this
 * process (each its own keys, session and node-seal heap) each running K
 * inferences of MNIST test images back to back. Every CKKS prediction is
 * checked against the plaintext model saved in the export (and the label).
 * Per export: wall time, throughput, client-perceived latency (encrypt +
 * round trip + decrypt) p50/p95, the server's evaluation time p50/p95,
 * bytes each way, and peak memory (the server's VmHWM, which covers its
 * worker threads, and this process's). Client and server share the
 * machine's cores, so throughput is what one host does for both sides, and
 * the clients share this process's one thread: a client's latency includes
 * waiting for the others' encryption and decryption as well as the server's
 * queue.
 *
 *   npm run bench:serve -- --models runs/cryptonets-mnist/export runs/quickstart-pruned/export [--clients 8 --inferences 20]
 */
import * as tf from '@tensorflow/tfjs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { RemoteModel, type RemoteResult } from '../client/index.js';
import { fileLogger } from '../common/log.js';
import { batchPixels, type Normalization } from '../datasets/prepare.js';
import { argmax, summarize } from '../evaluate/metrics.js';
import { datasetSchema } from '../pipeline/config-schema.js';
import { loadRaw } from '../pipeline/stages/data-stage.js';
import { initBackend } from '../train/backend.js';
import { loadModel } from '../train/checkpoint.js';
import { startServe } from '../cli/serve-process.js';

const args = await yargs(hideBin(process.argv))
  .option('models', { type: 'array', string: true, demandOption: true, describe: 'export directories (MNIST-shaped classifiers)' })
  .option('clients', { type: 'number', default: 8 })
  .option('inferences', { type: 'number', default: 20, describe: 'per client' })
  .option('workers', { type: 'number', default: 2, describe: "the server's evaluation threads" })
  .option('memory-budget-mb', {
    type: 'number',
    default: 2048,
    describe: "the server's budget for all sessions' keys (heprune serve --memory-budget-mb)",
  })
  .option('dataset-path', { type: 'string' })
  .strict()
  .parse();

const peakKiB = async (pid: number | 'self') => {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
};

await initBackend('wasm');
const rows: Record<string, string | number>[] = [];
const loaded: Record<string, Awaited<ReturnType<typeof loadRaw>>> = {};
for (const dir of args.models) {
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as {
    meta: { dataset: string; shape: [number, number, number]; normalization: Normalization };
  };
  const { dataset, shape, normalization } = manifest.meta;
  const ds = (loaded[dataset] ??= await loadRaw(datasetSchema.parse({ name: dataset }), args.datasetPath, fileLogger()));
  const total = args.clients * args.inferences;
  const count = Math.min(total, ds.test.count);
  const n = shape[0] * shape[1] * shape[2];
  // The plaintext reference for each image the clients send.
  const model = await loadModel(join(dir, 'model'));
  const xs = batchPixels(
    ds.test,
    Int32Array.from({ length: count }, (_, i) => i),
    shape,
    normalization,
  );
  const plain = tf.tidy(() => (model.predict(tf.tensor4d(xs, [count, ...shape])) as tf.Tensor).arraySync() as number[][]).map(argmax);
  model.dispose();

  const server = await startServe([
    '--model',
    dir,
    '--port',
    '0',
    '--workers',
    String(args.workers),
    '--session-ttl',
    '3600',
    '--memory-budget-mb',
    String(args.memoryBudgetMb),
  ]);
  try {
    process.stderr.write(`${dir}: ${args.clients} clients making keys and opening sessions…\n`);
    const clients: RemoteModel[] = [];
    for (let c = 0; c < args.clients; c++) clients.push(await RemoteModel.connect(server.url));
    const results: { image: number; r: RemoteResult; ms: number }[] = [];
    const t0 = performance.now();
    await Promise.all(
      clients.map(async (cl, c) => {
        for (let k = 0; k < args.inferences; k++) {
          const image = (c * args.inferences + k) % count;
          const s = performance.now();
          const r = await cl.infer(cl.client.normalize(ds.test.images.subarray(image * n, (image + 1) * n)));
          results.push({ image, r, ms: performance.now() - s });
        }
      }),
    );
    const wall = (performance.now() - t0) / 1000;
    const serverPeak = await peakKiB(server.pid);
    for (const cl of clients) await cl.close();
    const agree = results.filter((x) => x.r.prediction === plain[x.image]).length;
    const right = results.filter((x) => x.r.prediction === ds.test.labels[x.image]).length;
    const lat = summarize(results.map((x) => x.ms));
    const srv = summarize(results.map((x) => x.r.serverMs));
    rows.push({
      export: dir,
      inferences: `${args.clients}×${args.inferences}`,
      'CKKS = plaintext': `${agree}/${results.length}`,
      'CKKS = label': `${right}/${results.length}`,
      'wall s': +wall.toFixed(1),
      'inferences/s': +(results.length / wall).toFixed(2),
      'latency p50 ms': Math.round(lat.median),
      'latency p95 ms': Math.round(lat.p95),
      'server eval p50 ms': Math.round(srv.median),
      'server eval p95 ms': Math.round(srv.p95),
      'KiB up': Math.round(results[0].r.bytesUp / 1024),
      'KiB down': Math.round(results[0].r.bytesDown / 1024),
      'keys MiB/session': +(clients[0].info.keyBytes / 2 ** 20).toFixed(1),
      'server peak MiB': Math.round(serverPeak / 1024),
    });
    if (agree !== results.length) process.exitCode = 1;
  } finally {
    await server.stop();
  }
}
console.table(rows);
// Cumulative over the exports, and holding tfjs, the plaintext models and the dataset besides the clients.
process.stderr.write(`bench process (all clients, tfjs, dataset) peak RSS: ${Math.round((await peakKiB('self')) / 1024)} MiB\n`);
if (process.exitCode) process.stderr.write('bench:serve: some CKKS predictions differ from the plaintext model\n');
