/**
 * Server latency of several exports measured in one run, interleaved round
 * by round (export A, B, C, A, B, C, …) on one thread, so drift in the
 * machine's speed (shared hosts vary by tens of percent over minutes) hits
 * every export alike and the ratios hold even when absolute times move.
 * Per export: median, min and p90 server ms (a masked refresh's client
 * time excluded), client encryption ms and ciphertexts up, and the ratio of
 * each median to the first export's.
 *
 * Every export's keys and weights live on one wasm heap (4 GiB at most).
 * Large models do not fit there together (three VGG-5 exports in one run
 * stalled for over half an hour), so `--resident one` sets each export up in
 * a fresh worker thread (its own heap) for each inference, and ends the
 * thread after: the rounds still interleave, and key generation and encoding
 * stay outside the measured time. `auto` (the default) picks `one` when the
 * estimated keys and weights of all exports pass half the heap.
 *
 *   npm run bench:compare -- --models runs/a/export runs/b/export [--rounds 15]
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { Worker } from 'node:worker_threads';
import { loadExport } from '../export/artifact.js';
import { packInput } from '../plan/interpreter.js';
import { planCounts, planMemory } from '../plan/cost.js';
import { type Plan } from '../plan/plan.js';
import { galoisSteps } from '../plan/rotations.js';
import { galoisKeyBytes } from '../plan/rotation-keys.js';
import { infer, setUp, tearDown } from './latency-session.js';

const args = await yargs(hideBin(process.argv))
  .option('models', { type: 'array', string: true, demandOption: true, describe: 'export directories (the first is the reference)' })
  .option('rounds', { type: 'number', default: 15, describe: 'inferences per export, interleaved' })
  .option('warmup', {
    type: 'number',
    default: 1,
    describe: 'unmeasured inferences per export first (first-use allocations; 0 for models that take minutes an image)',
  })
  .option('plaintext-budget-mb', {
    type: 'number',
    default: 512,
    describe: 'encoded weights kept per export set up (the rest encoded at use)',
  })
  .option('resident', {
    type: 'string',
    choices: ['auto', 'all', 'one'],
    default: 'auto',
    describe:
      'keep every export set up for the whole run (all), or only the one being measured (one: set up and freed around each inference, outside the measured time)',
  })
  .strict()
  .parseAsync();

const budget = args.plaintextBudgetMb * 2 ** 20;
/** Heap bytes an export holds while set up: its Galois keys, its encoded weights up to the budget and its peak ciphertexts. */
function residentBytes(plan: Plan): number {
  const m = planMemory(plan);
  return galoisSteps(plan).length * galoisKeyBytes(plan.params) + Math.min(budget, m.plaintextBytes) + m.peakCiphertextBytes;
}

const exports = await Promise.all(
  (args.models as string[]).map(async (dir) => {
    const { plan } = await loadExport(dir);
    // A fixed pseudo-input: latency does not depend on the values.
    const packed = packInput(
      plan,
      Float64Array.from({ length: plan.input.slotOf.length }, (_, i) => Math.sin(i)),
    );
    return { dir, plan, packed, server_ms: [] as number[], encrypt_ms: [] as number[] };
  }),
);
const totalBytes = exports.reduce((a, e) => a + residentBytes(e.plan), 0);
const oneAtATime = args.resident === 'one' || (args.resident === 'auto' && totalBytes > 2 * 2 ** 30);
console.log(
  `estimated keys + weights of all exports ${(totalBytes / 2 ** 30).toFixed(2)} GiB: ${oneAtATime ? 'one export set up at a time, each in a fresh thread' : 'all exports set up together'}`,
);

/** `one`: set up, warm up and time one inference in a fresh thread with its own wasm heap. */
function inferInWorker(dir: string, packed: Float64Array[]): Promise<{ encryptMs: number; serverMs: number }> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL('./latency-worker.js', import.meta.url), {
      workerData: { dir, packed, plaintextBudget: budget, warmup: args.warmup },
    });
    w.once('message', (m: { ok: boolean; encryptMs: number; serverMs: number; message?: string }) => {
      void w.terminate();
      if (m.ok) resolve(m);
      else reject(new Error(`${dir}: ${m.message}`));
    });
    w.once('error', reject);
    w.once('exit', (code) => reject(new Error(`${dir}: the measuring thread ended (exit code ${code}) before reporting`)));
  });
}

// Warm-up inferences (first-use allocations), then the interleaved rounds.
// One at a time, each set-up gets its own warm-up before the measured inference.
const resident = oneAtATime ? [] : await Promise.all(exports.map((e) => setUp(e.plan, budget)));
for (let round = oneAtATime ? 0 : -args.warmup; round < args.rounds; round++) {
  for (const [i, e] of exports.entries()) {
    const t = oneAtATime ? await inferInWorker(e.dir, e.packed) : infer(resident[i], e.packed);
    if (round >= 0) {
      e.encrypt_ms.push(t.encryptMs);
      e.server_ms.push(t.serverMs);
    }
  }
}

const q = (a: number[], p: number) => [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(p * a.length))];
console.log(
  `\nServer latency, ${args.rounds} interleaved rounds after ${args.warmup} warm-up${oneAtATime ? ' per set-up (one export set up at a time, each in a fresh thread)' : ''}, one thread at a time, node ${process.version}`,
);
console.log('| export | rotations | plaintext mults | ciphertexts up | client encrypt ms | server ms median | min | p90 | vs first |');
console.log('|---|---|---|---|---|---|---|---|---|');
const ref = q(exports[0].server_ms, 0.5);
for (const e of exports) {
  const c = planCounts(e.plan).total;
  const med = q(e.server_ms, 0.5);
  console.log(
    `| ${e.dir} | ${c.rotate} | ${c.mulPlain} | ${e.packed.length} | ${q(e.encrypt_ms, 0.5).toFixed(1)} | ${med.toFixed(1)} | ${q(e.server_ms, 0).toFixed(1)} | ${q(e.server_ms, 0.9).toFixed(1)} | ${(med / ref).toFixed(3)} |`,
  );
}
for (const s of resident) tearDown(s);
