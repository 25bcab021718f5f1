import type { FastifyInstance } from 'fastify';

/**
 * The demo page's files (`heprune serve --demo`), made by the caller (the
 * CLI bundles the page and reads the test images): the server only hands
 * them out, so it needs neither a bundler nor a dataset.
 */
export interface DemoAssets {
  html: string;
  /** The page's script: heprune/client and node-seal bundled as one ES module. */
  script: string;
  /** node-seal's wasm, fetched by the script from beside itself. */
  wasm: Uint8Array;
  wasmName: string;
  /** Test images offered for picking: raw pixels (0..255, HWC) with their labels. */
  samples: { dataset?: string; images: { index: number; label?: number; pixels: number[] }[] };
}

/** GET / (to /demo/), /demo/, /demo/page.js, /demo/<wasm>, /demo/samples. */
export function registerDemo(app: FastifyInstance, d: DemoAssets): void {
  app.get('/', async (_req, reply) => reply.redirect('/demo/'));
  app.get('/demo', async (_req, reply) => reply.redirect('/demo/'));
  app.get('/demo/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(d.html));
  app.get('/demo/page.js', async (_req, reply) => reply.type('text/javascript; charset=utf-8').send(d.script));
  app.get(`/demo/${d.wasmName}`, async (_req, reply) => reply.type('application/wasm').send(Buffer.from(d.wasm)));
  app.get('/demo/samples', async () => d.samples);
  app.get('/favicon.ico', async (_req, reply) => reply.status(204).send());
}
