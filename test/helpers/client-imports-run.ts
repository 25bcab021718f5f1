/**
 * Child-process script: imports `heprune/client` (the package's own export)
 * with a resolve hook that records what every heprune module imports, then
 * makes keys and encrypts an input for the card given as argv[2]. Prints
 * { imports: [[parent, specifier]], keyBytes, inputBytes } as JSON.
 */
import { registerHooks } from 'node:module';

const seen: [string, string][] = [];
registerHooks({
  resolve(specifier, context, next) {
    const parent = context.parentURL ?? '';
    if (parent.includes('/dist/') && !parent.includes('/node_modules/') && !parent.endsWith('client-imports-run.js'))
      seen.push([parent.replace(/^.*\/dist\//, ''), specifier]);
    return next(specifier, context);
  },
});
const { HeClient } = await import('heprune/client');
const card = JSON.parse(process.argv[2]) as { input: { slotOf: number[] } };
const client = await HeClient.create(card);
const keys = client.evaluationKeys();
const input = client.encryptInput(new Float64Array(card.input.slotOf.length).fill(0.5), 'a-session');
client.delete();
process.stdout.write(JSON.stringify({ imports: seen, keyBytes: keys.length, inputBytes: input.length }));
