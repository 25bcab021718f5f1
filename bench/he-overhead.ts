/**
 * Engine-overhead benchmark: measured server latency of a plan under real
 * CKKS against Σ(op count × that op's time measured in this run), per op kind
 * and level (rotations cost far more at higher levels). Also the throughput
 * of 2 evaluation workers over 1.
 *
 *   npm run bench:he -- --model runs/cryptonets-mnist/export [--runs 5] [--images 8]
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import type { Ciphertext, Plaintext } from 'node-seal';
import { loadExport } from '../export/artifact.js';
import { CkksContext } from '../he/context.js';
import { CkksClient } from '../he/client.js';
import { SealBackend } from '../he/seal-backend.js';
import type { CkksBackend } from '../plan/backend.js';
import { prepare, run, packInput, freePrepared } from '../plan/interpreter.js';
import { galoisSteps } from '../plan/rotations.js';
import { evaluateEncrypted } from '../evaluate/pool.js';

const args = await yargs(hideBin(process.argv))
  .option('model', { type: 'string', demandOption: true, describe: 'export directory' })
  .option('runs', { type: 'number', default: 5 })
  .option('reps', { type: 'number', default: 20, describe: 'repetitions per op micro-benchmark' })
  .option('images', { type: 'number', default: 8, describe: 'images for the 1 vs 2 worker throughput' })
  .strict()
  .parseAsync();

const { plan } = await loadExport(args.model);
const ctx = await CkksContext.create(plan.params);
const client = new CkksClient(ctx);
const server = new SealBackend(ctx, client.serverKeys(galoisSteps(plan)), client);
const prepared = prepare(server, plan);

type Key = string; // `${op}@${level}`
const histogram = new Map<Key, number>();
/** Delegating backend that records (op, input level) for every server operation. */
function recording(b: SealBackend): CkksBackend<Ciphertext, Plaintext> {
  const rec = (op: string, c: Ciphertext) => {
    const k = `${op}@${b.levelOf(c)}`;
    histogram.set(k, (histogram.get(k) ?? 0) + 1);
  };
  return new Proxy(b, {
    get(target, prop, recv) {
      const v = Reflect.get(target, prop, recv);
      if (typeof v !== 'function') return v;
      if (['add', 'addPlain', 'mulPlain', 'mul', 'rescale', 'rotate', 'modSwitchTo'].includes(prop as string)) {
        return (...a: unknown[]) => {
          rec(prop as string, a[0] as Ciphertext);
          return (v as (...x: unknown[]) => unknown).apply(target, a);
        };
      }
      return v.bind(target);
    },
  }) as unknown as CkksBackend<Ciphertext, Plaintext>;
}

const input = packInput(
  plan,
  Float64Array.from({ length: plan.input.slotOf.length }, (_, i) => Math.sin(i)),
);
const ct = input.map((v) => client.encodeEncrypt(v));
for (const c of run(recording(server), prepared, ct)) server.free(c);

// Measured server latency.
const times: number[] = [];
for (let i = 0; i < args.runs; i++) {
  const t0 = performance.now();
  const out = run(server, prepared, ct);
  times.push(performance.now() - t0);
  for (const c of out) server.free(c);
}
times.sort((a, b) => a - b);
const measured = times[Math.floor(times.length / 2)];

// Unit cost of each (op, level) on real ciphertexts.
const fresh = (level: number) => {
  const c = client.encodeEncrypt(input[0]);
  const d = server.modSwitchTo(c, level);
  c.delete();
  return d;
};
const rot = galoisSteps(plan)[0] ?? 1;
const unit = new Map<Key, number>();
for (const key of histogram.keys()) {
  const [op, l] = key.split('@');
  const level = Number(l);
  const a = fresh(level),
    b = fresh(level);
  const pt = server.encode(input[0], level, server.rescalePrime(level));
  const f: Record<string, () => Ciphertext> = {
    add: () => server.add(a, b),
    addPlain: () => server.addPlain(a, server.encode(input[0], level)),
    mulPlain: () => server.mulPlain(a, pt),
    mul: () => server.mul(a, b),
    rescale: () => server.rescale(server.mulPlain(a, pt)),
    rotate: () => server.rotate(a, rot),
    modSwitchTo: () => server.modSwitchTo(a, Math.max(0, level - 1)),
  };
  const samples: number[] = [];
  for (let i = 0; i < args.reps; i++) {
    const t0 = performance.now();
    const r = f[op]();
    samples.push(performance.now() - t0);
    r.delete();
  }
  samples.sort((x, y) => x - y);
  let ms = samples[Math.floor(samples.length / 2)];
  // rescale and addPlain timings above include a helper op: subtract its median.
  if (op === 'rescale') {
    const s2: number[] = [];
    for (let i = 0; i < args.reps; i++) {
      const t0 = performance.now();
      const r = server.mulPlain(a, pt);
      s2.push(performance.now() - t0);
      r.delete();
    }
    s2.sort((x, y) => x - y);
    ms -= s2[Math.floor(s2.length / 2)];
  }
  unit.set(key, Math.max(ms, 0));
  a.delete();
  b.delete();
  pt.delete();
}

console.log(
  `\nHE engine overhead: ${args.model} (N=${plan.params.polyModulusDegree}, [${plan.params.coeffModulusBits.join(', ')}]), node ${process.version}`,
);
console.log('| op@level | count | unit ms | total ms |\n|---|---|---|---|');
let predicted = 0;
for (const [key, count] of [...histogram.entries()].sort()) {
  const u = unit.get(key)!;
  predicted += u * count;
  console.log(`| ${key} | ${count} | ${u.toFixed(3)} | ${(u * count).toFixed(1)} |`);
}
console.log(`\nmeasured server latency (median of ${args.runs}): ${measured.toFixed(1)} ms`);
console.log(`Σ count × unit time: ${predicted.toFixed(1)} ms`);
console.log(`engine overhead ratio: ${(measured / predicted).toFixed(3)} (target <= 1.15)`);
for (const c of ct) c.delete();
freePrepared(server, prepared);
server.delete();
client.delete();
ctx.delete();

// Throughput: 1 vs 2 worker threads, each with its own node-seal instance and keys (setup excluded).
const inputs = Array.from({ length: args.images }, () => input);
const tput: number[] = [];
for (const workers of [1, 2]) {
  const starts: number[] = [];
  const r = await evaluateEncrypted({ exportDir: args.model, inputs, workers, onResult: () => starts.push(performance.now()) });
  const serverTotal = r.results.reduce((a, x) => a + x.serverMs + x.encryptMs + x.decryptMs, 0);
  // Steady state: images finished per second between the first and the last result (key generation excluded).
  tput.push((starts.length - 1) / ((starts[starts.length - 1] - starts[0]) / 1000));
  console.log(
    `${workers} worker(s): ${r.results.length} images, mean per-image time ${(serverTotal / args.images).toFixed(0)} ms, wall ${(r.wallMs / 1000).toFixed(1)} s incl. key generation`,
  );
}
console.log(
  `throughput after setup: ${tput.map((t) => t.toFixed(2)).join(' vs ')} images/s → 2 workers speedup ${(tput[1] / tput[0]).toFixed(2)}x`,
);
