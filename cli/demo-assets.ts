import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { DEMO_HTML } from '../client/page/html.js';
import { UserError } from '../common/errors.js';
import { testSplit } from './test-images.js';
import type { ClientCard } from '../client/card.js';
import type { DemoAssets } from '../server/demo.js';

/**
 * The demo page's files for `heprune serve --demo`: the page script bundled
 * with heprune/client and node-seal (esbuild, for browsers), node-seal's
 * wasm, and the first test images of the model's dataset to pick from.
 */
export async function demoAssets(card: ClientCard, o: { samples: number; datasetPath?: string }): Promise<DemoAssets> {
  const page = fileURLToPath(new URL('../client/page/page.js', import.meta.url));
  const bundled = await build({
    entryPoints: [page],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    write: false,
    logLevel: 'silent',
    // node-seal's loader also runs in Node, behind a runtime check; those imports never run in a page.
    external: ['module', 'node:*', 'fs', 'path', 'url', 'crypto', 'worker_threads'],
  }).catch((e: Error) => {
    throw new Error(`serve --demo: bundling the page (${page}) failed: ${e.message}`);
  });
  const sealDir = dirname(fileURLToPath(import.meta.resolve('node-seal')));
  const wasmName = 'seal_throws.wasm';
  return {
    html: DEMO_HTML,
    script: bundled.outputFiles[0].text,
    wasm: await readFile(join(sealDir, wasmName)),
    wasmName,
    samples: await testImages(card, o),
  };
}

async function testImages(card: ClientCard, o: { samples: number; datasetPath?: string }): Promise<DemoAssets['samples']> {
  const name = card.model.dataset;
  if (o.samples === 0) return { images: [] };
  if (!name || name === 'synthetic')
    throw new UserError(`serve --demo: the export names no dataset to take test images from; pass --demo-samples 0 to offer drawing only`);
  const ds = await testSplit(name, o.datasetPath).catch((e: Error) => {
    throw new UserError(`serve --demo: the ${name} test images: ${e.message} (or pass --demo-samples 0 to offer drawing only)`);
  });
  const want = card.model.shape ? card.model.shape.reduce((a, b) => a * b, 1) : ds.values;
  if (ds.values !== want) throw new UserError(`serve --demo: ${name} test images hold ${ds.values} values, the model reads ${want}`);
  const count = Math.min(o.samples, ds.count);
  return {
    dataset: name,
    images: Array.from({ length: count }, (_, i) => {
      const { pixels, label } = ds.image(i);
      return { index: i, label, pixels: Array.from(pixels) };
    }),
  };
}
