import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { compileChain } from '../../export/compile.js';
import { lowerModel } from '../../export/lower.js';
import { initBackend } from '../../train/backend.js';
import { withSeededRandom } from '../../train/seeded.js';
import { buildModel, modelSchema } from '../../train/zoo/registry.js';
import { clientCard } from '../../server/card.js';
import type { Manifest } from '../../export/artifact.js';

/**
 * The package's typed entry points (package.json `exports`): heprune,
 * heprune/client and heprune/server resolve by name and export the
 * documented functions; the client's whole import graph has no tfjs and no
 * file system (so a bundler can put it in a page), and it makes keys and
 * encrypts in a process that never loaded either.
 */
test('heprune, heprune/client and heprune/server export the library API', async () => {
  const api = await import('heprune');
  for (const f of ['run', 'loadConfig', 'parseConfig', 'train', 'prune', 'compile', 'evaluate', 'loadExport', 'writeExport'])
    expect([f, typeof (api as Record<string, unknown>)[f]]).toEqual([f, 'function']);
  const client = await import('heprune/client');
  for (const f of ['HeClient', 'RemoteModel', 'parseCard', 'encodeFrame', 'decodeFrame'])
    expect([f, typeof (client as Record<string, unknown>)[f]]).toEqual([f, 'function']);
  const server = await import('heprune/server');
  for (const f of ['HeServer', 'serve', 'httpApp', 'clientCard'])
    expect([f, typeof (server as Record<string, unknown>)[f]]).toEqual([f, 'function']);
  const pkg = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    exports: Record<string, { types: string }>;
  };
  for (const k of ['.', './client', './server']) await readFile(new URL(`../../../${pkg.exports[k].types}`, import.meta.url)); // the .d.ts files exist
});

test('synthetic tiny model: heprune/client imports no tfjs and no fs, and encrypts in a process that loaded neither', async () => {
  await initBackend('wasm');
  const model = withSeededRandom(11, () =>
    buildModel(modelSchema.parse({ name: 'cryptonets', filters: 3, hidden: 16, activation: 'quadratic' }), {
      inputShape: [12, 12, 1],
      numClasses: 5,
    }),
  );
  const plan = compileChain(lowerModel(model), {
    params: { polyModulusDegree: 8192, coeffModulusBits: [38, 28, 28, 28, 28, 28, 40], scaleBits: 28 },
  });
  model.dispose();
  const card = clientCard(plan, { meta: {} } as unknown as Manifest);
  const script = fileURLToPath(new URL('../helpers/client-imports-run.js', import.meta.url));
  const { stdout } = await promisify(execFile)(process.execPath, [script, JSON.stringify(card)], { maxBuffer: 2 ** 26 });
  const r = JSON.parse(stdout) as { imports: [string, string][]; keyBytes: number; inputBytes: number };
  const specifiers = new Set(r.imports.map(([, s]) => s));
  expect([...specifiers].filter((s) => /^@tensorflow\//.test(s) || /^(node:)?fs(\/promises)?$/.test(s) || s === 'sharp')).toEqual([]);
  const ours = new Set(r.imports.map(([p]) => p.split('/')[0]));
  expect(r.imports.length).toBeGreaterThan(20); // the hook saw the graph
  expect(ours.has('client') && ours.has('he') && ours.has('plan')).toBe(true);
  expect([...ours].sort()).toEqual(['client', 'common', 'he', 'plan'].filter((d) => ours.has(d)));
  expect(ours.has('train') || ours.has('export') || ours.has('server') || ours.has('datasets')).toBe(false);
  expect(r.keyBytes).toBeGreaterThan(1e6);
  expect(r.inputBytes).toBeGreaterThan(1e4);
});
