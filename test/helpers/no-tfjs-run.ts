/**
 * Child-process script (with no-tfjs-hooks registered): loads an export and
 * runs it on the slot simulator with node-seal's primes, printing the
 * outputs as JSON. Proves the server side needs no tfjs.
 */
import { register } from 'node:module';
register(new URL('./no-tfjs-hooks.js', import.meta.url));
const { loadExport } = await import('../../export/artifact.js');
const { CkksContext } = await import('../../he/context.js');
const { SlotSimulator } = await import('../../plan/slot-sim.js');
const { prepare, run, packInput, unpackOutput } = await import('../../plan/interpreter.js');
const [dir, inputJson] = process.argv.slice(2);
const { plan } = await loadExport(dir);
const ctx = await CkksContext.create(plan.params);
const sim = new SlotSimulator({ slots: plan.slots, rescalePrimes: ctx.rescalePrimes, scale: ctx.scale });
ctx.delete();
const x = JSON.parse(inputJson) as number[];
const y = unpackOutput(
  plan,
  run(
    sim,
    prepare(sim, plan),
    packInput(plan, x).map((v) => sim.encrypt(sim.encode(v, sim.topLevel))),
  ).map((c) => sim.decrypt(c)),
);
process.stdout.write(JSON.stringify(Array.from(y)));
