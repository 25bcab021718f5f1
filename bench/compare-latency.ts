/**
 * Server latency of several exports measured in one run, interleaved round
 * by round (export A, B, C, A, B, C, …) on one thread, so drift in the
 * machine's speed (shared hosts vary by tens of percent over minutes) hits
 * every export alike and the ratios hold even when absolute times move.
 * Per export: median, min and p90 server ms (a masked refresh's client
 * time excluded), client encryption ms and ciphertexts up, and the ratio of
 * each median to the first export's.
 *
 *   npm run bench:compare -- --models runs/a/export runs/b/export [--rounds 15]
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { loadExport } from '../export/artifact.js';
import { CkksContext } from '../he/context.js';
import { CkksClient } from '../he/client.js';
import { SealBackend } from '../he/seal-backend.js';
import { prepare, run, packInput, freePrepared } from '../plan/interpreter.js';
import { planCounts } from '../plan/cost.js';
import { galoisSteps } from '../plan/plan.js';

const args = await yargs(hideBin(process.argv))
  .option('models', { type: 'array', string: true, demandOption: true, describe: 'export directories (the first is the reference)' })
  .option('rounds', { type: 'number', default: 15, describe: 'inferences per export, interleaved' })
  .option('warmup', { type: 'number', default: 1, describe: 'unmeasured inferences per export first (first-use allocations; 0 for models that take minutes an image)' })
  .option('plaintext-budget-mb', { type: 'number', default: 512, describe: 'encoded weights kept per export (the rest encoded at use); every export shares one wasm heap of at most 4 GiB' })
  .strict().parseAsync();

const setups = [];
for (const dir of args.models as string[]) {
  const { plan } = await loadExport(dir);
  const ctx = await CkksContext.create(plan.params);
  const client = new CkksClient(ctx);
  const server = new SealBackend(ctx, client.serverKeys(galoisSteps(plan)));
  const prepared = prepare(server, plan, { plaintextBudget: args.plaintextBudgetMb * 2 ** 20 });
  // A fixed pseudo-input: latency does not depend on the values.
  const packed = packInput(plan, Float64Array.from({ length: plan.input.slotOf.length }, (_, i) => Math.sin(i)));
  setups.push({ dir, plan, ctx, client, server, prepared, packed, server_ms: [] as number[], encrypt_ms: [] as number[] });
}

// Warm-up inferences (first-use allocations), then the interleaved rounds.
for (let round = -args.warmup; round < args.rounds; round++) {
  for (const s of setups) {
    const t0 = performance.now();
    const cts = s.packed.map((v) => s.client.encodeEncrypt(v));
    const t1 = performance.now();
    // Masked refreshes go through the client; its share of the time is not the server's.
    let clientMs = 0;
    const out = run(s.server, s.prepared, cts, undefined, s.client.refreshChannel((_bytes, ms) => { clientMs += ms; }));
    const t2 = performance.now();
    for (const c of [...out, ...cts]) s.server.free(c);
    if (round >= 0) { s.encrypt_ms.push(t1 - t0); s.server_ms.push(t2 - t1 - clientMs); }
  }
}

const q = (a: number[], p: number) => [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(p * a.length))];
console.log(`\nServer latency, ${args.rounds} interleaved rounds after ${args.warmup} warm-up, one thread, node ${process.version}`);
console.log('| export | rotations | plaintext mults | ciphertexts up | client encrypt ms | server ms median | min | p90 | vs first |');
console.log('|---|---|---|---|---|---|---|---|---|');
const ref = q(setups[0].server_ms, 0.5);
for (const s of setups) {
  const c = planCounts(s.plan).total;
  const med = q(s.server_ms, 0.5);
  console.log(`| ${s.dir} | ${c.rotate} | ${c.mulPlain} | ${s.packed.length} | ${q(s.encrypt_ms, 0.5).toFixed(1)} | ${med.toFixed(1)} | ${q(s.server_ms, 0).toFixed(1)} | ${q(s.server_ms, 0.9).toFixed(1)} | ${(med / ref).toFixed(3)} |`);
  freePrepared(s.server, s.prepared); s.server.delete(); s.client.delete(); s.ctx.delete();
}
