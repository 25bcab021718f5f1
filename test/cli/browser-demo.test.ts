import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { silentLogger } from '../../common/log.js';
import { batchPixels, type Normalization } from '../../datasets/prepare.js';
import { datasetSchema } from '../../pipeline/config-schema.js';
import { loadRaw } from '../../pipeline/stages/data-stage.js';
import { initBackend } from '../../train/backend.js';
import { loadModel } from '../../train/checkpoint.js';
import { runCli } from '../helpers/cli.js';
import { startServe } from '../../cli/serve-process.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * The demo page in a real headless Chromium (Debian's, installed by .ci/run)
 * against `heprune serve --demo` on loopback, for the zoo's trained
 * CryptoNets on real MNIST: the page makes the keys, encrypts and decrypts;
 * its prediction for each of the first 10 test images equals `heprune
 * evaluate`'s CKKS prediction for the same export (evaluation.csv), and its
 * scores are within CKKS noise of the plaintext model's.
 */
const CHROMIUM = process.env.HEPRUNE_CHROMIUM ?? '/usr/bin/chromium';
const SAMPLES = 10;

// The flags a root sandbox on a closed network needs (background networking is refused by the machine).
const launch = () =>
  puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });

/** The page's answer for `index`, or its error as a failure (not a timeout). */
const resultFor = async (page: Page, index: string) => {
  await page.waitForFunction(
    (i) => document.getElementById('result')?.dataset.index === i || document.getElementById('status')?.className === 'error',
    { timeout: 120_000 },
    index,
  );
  const error = await page.$eval('#status', (e) => (e.className === 'error' ? e.textContent : null));
  if (error) throw new Error(`the page reports: ${error}`);
  return page.$eval('#result', (e) => ({
    prediction: Number((e as HTMLElement).dataset.prediction),
    output: JSON.parse((e as HTMLElement).dataset.output!) as number[],
  }));
};

test(`a Chromium page classifies ${SAMPLES} MNIST test images through heprune serve --demo as heprune evaluate does`, async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium (.ci/run does), or set HEPRUNE_CHROMIUM`);
  const tmp = await tempDir();
  let browser: Browser | undefined;
  let server: Awaited<ReturnType<typeof startServe>> | undefined;
  try {
    // The export and the reference predictions: the zoo's CryptoNets, exported and evaluated under CKKS by the CLI.
    const config = join(tmp.path, 'demo.yaml');
    await writeFile(
      config,
      [
        'name: demo-cryptonets',
        `outDir: ${tmp.path}`,
        'dataset: { name: mnist, normalize: standard }',
        'model: { name: cryptonets, activation: square, filters: 5, hidden: 100 }',
        'train: { from: "zoo:cryptonets-mnist" }',
        'export: { scaleBits: 29, headroomBits: 7, tiles: auto }',
        `evaluate: { samples: ${SAMPLES}, encrypted: true, workers: 1 }`,
      ].join('\n'),
    );
    const run = await runCli(['run', config]);
    expect(run.code).toBe(0);
    const csv = (await readFile(join(tmp.path, 'demo-cryptonets', 'evaluation.csv'), 'utf8')).trim().split('\n');
    const col = csv[0].split(',').indexOf('ckks_pred');
    const evaluated = csv.slice(1).map((r) => Number(r.split(',')[col]));
    expect(evaluated.length).toBe(SAMPLES);

    // The plaintext model saved beside the plan, on the same normalised test images.
    await initBackend('wasm');
    const exportDir = join(tmp.path, 'demo-cryptonets', 'export');
    const raw = await loadRaw(datasetSchema.parse({ name: 'mnist', normalize: 'standard' }), undefined, silentLogger);
    const meta = (JSON.parse(await readFile(join(exportDir, 'manifest.json'), 'utf8')) as { meta: { normalization: Normalization } }).meta;
    const model = await loadModel(join(exportDir, 'model'));
    const xs = batchPixels(
      raw.test,
      Int32Array.from({ length: SAMPLES }, (_, i) => i),
      [28, 28, 1],
      meta.normalization,
    );
    const plain = tf.tidy(() => (model.predict(tf.tensor4d(xs, [SAMPLES, 28, 28, 1])) as tf.Tensor).arraySync() as number[][]);
    model.dispose();

    server = await startServe(['--model', join(tmp.path, 'demo-cryptonets', 'export'), '--port', '0', '--workers', '1', '--demo']);
    browser = await launch();
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    // What leaves the page: the demo's files, the card, one session's keys, inputs; nothing else.
    const requests = new Set<string>();
    page.on('request', (r) => requests.add(`${r.method()} ${new URL(r.url()).pathname.replace(/\/sessions\/[^/]+/, '/sessions/:id')}`));
    await page.goto(`${server.url}/demo/`);
    await page.waitForFunction(
      () =>
        !(document.getElementById('classify') as HTMLButtonElement).disabled || document.getElementById('status')!.className === 'error',
      { timeout: 120_000 },
    );
    expect(await page.$eval('#status', (e) => e.textContent)).toMatch(/^session open: [\d.]+ MiB of evaluation keys/);

    const got: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      await page.click(`#sample-${i}`);
      await page.click('#classify');
      const r = await resultFor(page, String(i));
      expect(r.output).toHaveLength(10);
      // The scores, not only their argmax: within CKKS noise of the plaintext model's.
      const scale = Math.max(1, ...plain[i].map(Math.abs));
      for (let j = 0; j < 10; j++) expect(Math.abs(r.output[j] - plain[i][j]) / scale).toBeLessThan(2e-2);
      got.push(r.prediction);
    }
    expect(got).toEqual(evaluated);

    // A digit drawn with the mouse: a stroke down the middle of the pad, classified in the page.
    await page.click('#clear');
    const pad = (await page.$('#pad'))!;
    const box = (await pad.boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height * 0.2);
    await page.mouse.down();
    for (let k = 1; k <= 12; k++) await page.mouse.move(box.x + box.width / 2, box.y + box.height * (0.2 + (0.6 * k) / 12));
    await page.mouse.up();
    await page.click('#classify');
    const drawn = await resultFor(page, 'drawn');
    // A vertical stroke is a 1 to a 99% MNIST model (measured margin: 17.2 against -2.1 for the runner-up).
    expect(drawn.prediction).toBe(1);
    expect(await page.$eval('#timings', (e) => e.textContent)).toMatch(/sent[\d.]+ (KiB|MiB)received[\d.]+ (KiB|MiB)/);
    expect(errors).toEqual([]);
    // Every request the page made is one of these (Chromium 156 reports no request event for the 46 MiB key upload,
    // POST /sessions, so it is allowed rather than required).
    const allowed = [
      'GET /card',
      'GET /demo/',
      'GET /demo/page.js',
      'GET /demo/samples',
      'GET /demo/seal_throws.wasm',
      'GET /favicon.ico',
      'POST /sessions',
      'POST /sessions/:id/infer',
    ];
    expect([...requests].filter((r) => !allowed.includes(r))).toEqual([]);
    expect(requests.has('POST /sessions/:id/infer')).toBe(true);
  } finally {
    await browser?.close();
    await server?.stop();
    await tmp.cleanup();
  }
}, 600_000);
