import * as tf from '@tensorflow/tfjs';
import { readFile, readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MainModule, SecretKey } from 'node-seal';
import { initBackend } from '../../train/backend.js';
import { buildModel, modelSchema } from '../../train/zoo/registry.js';
import { withSeededRandom } from '../../train/seeded.js';
import { lowerModel } from '../../export/lower.js';
import { compileChain } from '../../export/compile.js';
import { writeExport } from '../../export/artifact.js';
import { serve, type RunningServer } from '../../server/index.js';
import { HeClient, RemoteModel, decodeFrame, encodeFrame, type ClientCard } from '../../client/index.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * `heprune serve` on loopback with real HTTP, for a tiny seeded model on
 * synthetic inputs (random normal images; no dataset): a CryptoNets-shaped
 * net without refresh, and a ResNet-8 whose depth needs masked refresh (a
 * multi-round exchange). Outputs are compared with the tfjs model.
 */
const params = { polyModulusDegree: 8192, coeffModulusBits: [38, 28, 28, 28, 28, 28, 40], scaleBits: 28 };
const meta = (shape: number[], numClasses: number) => ({
  model: 'tiny',
  task: 'classification',
  dataset: 'synthetic',
  shape,
  numClasses,
  normalization: { kind: 'unit', mean: [0], std: [1] },
});

let tmp: Awaited<ReturnType<typeof tempDir>>;
let model: tf.LayersModel;
let srv: RunningServer;
let card: ClientCard;

beforeAll(async () => {
  await initBackend('wasm');
  tmp = await tempDir();
  model = withSeededRandom(11, () =>
    buildModel(modelSchema.parse({ name: 'cryptonets', filters: 3, hidden: 16, activation: 'quadratic' }), {
      inputShape: [12, 12, 1],
      numClasses: 5,
    }),
  );
  await writeExport(join(tmp.path, 'tiny'), compileChain(lowerModel(model), { params }), meta([12, 12, 1], 5));
  srv = await serve({ model: join(tmp.path, 'tiny'), port: 0, workers: 2, sessionTtlMs: 60_000 });
  card = (await (await fetch(`${srv.url}/card`)).json()) as ClientCard;
});

afterAll(async () => {
  await srv?.close();
  model?.dispose();
  await tmp?.cleanup();
});

const synthetic = (seed: number, shape: number[]) =>
  tf.tidy(() => tf.randomNormal([1, ...shape], 0, 1, 'float32', seed).dataSync() as Float32Array);
const predict = (m: tf.LayersModel, x: Float32Array, shape: number[]) =>
  tf.tidy(() => Array.from((m.predict(tf.tensor(x, [1, ...shape])) as tf.Tensor).dataSync()));
const post = (url: string, body: Uint8Array, token?: string) =>
  fetch(url, {
    method: 'POST',
    body: body as unknown as BodyInit,
    headers: { 'content-type': 'application/octet-stream', ...(token ? { authorization: `Bearer ${token}` } : {}) },
  });

function expectClose(got: number[], ref: number[]): void {
  const scale = Math.max(1, ...ref.map(Math.abs));
  expect(got.length).toBe(ref.length);
  for (let j = 0; j < ref.length; j++) expect(Math.abs(got[j] - ref[j]) / scale).toBeLessThan(2e-2);
  expect(got.indexOf(Math.max(...got))).toBe(ref.indexOf(Math.max(...ref)));
}

test('synthetic tiny model: the card has parameters, layouts and Galois steps, and no weights', async () => {
  const text = JSON.stringify(card);
  expect(Object.keys(card).sort()).toEqual([
    'format',
    'galoisSteps',
    'input',
    'inputCopies',
    'limits',
    'model',
    'output',
    'params',
    'refreshRounds',
    'securityBits',
    'sentCiphertexts',
    'slots',
    'version',
  ]);
  expect(text).not.toMatch(/"(steps|weights|diag|outputs|giants|terms)"/);
  const weights = (await readFile(join(tmp.path, 'tiny', 'weights.bin'))).length;
  expect(text.length).toBeLessThan(weights / 4);
  expect(card.params).toEqual(params);
  expect(card.securityBits).toBe(128);
});

test('synthetic tiny model: an encrypted inference over HTTP matches the plaintext model within CKKS tolerance', async () => {
  const remote = await RemoteModel.connect(srv.url);
  try {
    for (const seed of [1, 2]) {
      const x = synthetic(seed, [12, 12, 1]);
      const r = await remote.infer(x);
      expectClose(r.output, predict(model, x, [12, 12, 1]));
      expect(r.refreshRounds).toBe(0);
      process.stdout.write(
        `tiny N=8192 over HTTP: keys ${(remote.info.keyBytes / 2 ** 20).toFixed(2)} MiB up (keygen ${remote.info.keygenMs.toFixed(0)} ms, upload ${remote.info.uploadMs.toFixed(0)} ms); ` +
          `inference ${r.bytesUp} B up, ${r.bytesDown} B down, encrypt ${r.encryptMs.toFixed(1)} ms, round trip ${r.roundTripMs.toFixed(1)} ms (server ${r.serverMs} ms), decrypt ${r.decryptMs.toFixed(1)} ms\n`,
      );
    }
  } finally {
    await remote.close();
  }
});

test('the server never receives or holds a secret key: the upload has none of its bytes, and the server code never makes or loads one', async () => {
  const client = await HeClient.create(card, { compression: 'none' });
  try {
    const upload = client.evaluationKeys();
    const inner = client as unknown as { keys: { secretKey: SecretKey }; ctx: { m: MainModule } };
    const skBytes = new Uint8Array(inner.keys.secretKey.saveToArray(inner.ctx.m.ComprModeType.none));
    const buf = Buffer.from(upload.buffer, upload.byteOffset, upload.byteLength);
    // 64 windows of 32 bytes of the secret key's coefficients: none is anywhere in the upload.
    const windows = Array.from({ length: 64 }, (_, i) => 64 + Math.floor((i * (skBytes.length - 128)) / 64));
    for (const at of windows) expect(buf.indexOf(Buffer.from(skBytes.subarray(at, at + 32)))).toBe(-1);
    // The scan works: windows of the relinearisation keys (part 0, uncompressed) are found.
    const relin = decodeFrame(upload).parts[0];
    expect(buf.indexOf(Buffer.from(relin.subarray(4096, 4128)))).toBeGreaterThan(0);
    // The frame holds relinearisation and Galois keys only: the server accepts exactly those.
    const res = await post(`${srv.url}/sessions`, upload);
    expect(res.status).toBe(201);
    const s = (await res.json()) as { session: string; token: string };
    await fetch(`${srv.url}/sessions/${s.session}`, { method: 'DELETE', headers: { authorization: `Bearer ${s.token}` } });
  } finally {
    client.delete();
  }
  // What the server runs (dist/server and the he/ modules it loads) never creates, loads or uses a secret key or decryptor.
  const here = dirname(fileURLToPath(import.meta.url));
  const serverDir = join(here, '..', '..', 'server');
  for (const f of (await readdir(serverDir)).filter((n) => n.endsWith('.js'))) {
    const src = await readFile(join(serverDir, f), 'utf8');
    expect([f, /KeyGenerator|SecretKey|secretKey|Decryptor|CkksClient\(|new HeClient/.test(src)]).toEqual([f, false]);
  }
  const worker = await readFile(join(serverDir, 'worker.js'), 'utf8');
  expect(worker).toMatch(/new SealBackend\(ctx, keys\)/); // no client attached: encrypt/decrypt throw
});

test('keys: wrong parameters, extra or missing Galois keys and a non-frame are refused with 400 and a message', async () => {
  const client = await HeClient.create(card);
  try {
    const f = decodeFrame(client.evaluationKeys());
    const send = async (frame: Uint8Array) => {
      const r = await post(`${srv.url}/sessions`, frame);
      return { status: r.status, message: ((await r.json()) as { message: string }).message };
    };
    expect(await send(encodeFrame({ ...f, header: { ...f.header, params: { ...params, scaleBits: 30 } } }))).toEqual({
      status: 400,
      message: expect.stringMatching(/made for CKKS parameters.*this model uses N=8192/),
    });
    const steps = f.header.galoisSteps!;
    expect(await send(encodeFrame({ ...f, header: { ...f.header, galoisSteps: [[...steps[0], 4000], ...steps.slice(1)] } }))).toEqual({
      status: 400,
      message: expect.stringMatching(/never rotates by \(4000\)/),
    });
    expect(
      await send(encodeFrame({ ...f, header: { ...f.header, galoisSteps: steps.slice(0, -1) }, parts: f.parts.slice(0, -1) })),
    ).toEqual({ status: 400, message: expect.stringMatching(/Galois keys missing for steps/) });
    // A key set that claims steps it does not hold (parts swapped) is caught when the keys load.
    if (steps.length > 1) {
      const swapped = [f.parts[0], f.parts[2], f.parts[1], ...f.parts.slice(3)];
      expect(await send(encodeFrame({ ...f, parts: swapped }))).toEqual({ status: 400, message: expect.stringMatching(/Galois key|hold/) });
    }
    expect(await send(new TextEncoder().encode('not a frame at all, just text'))).toEqual({
      status: 400,
      message: expect.stringMatching(/not a heprune frame/),
    });
  } finally {
    client.delete();
  }
});

test('bad inferences are refused: 404 for an unknown session, 400 for truncated or wrong-count ciphertexts, 413 for an oversized body, and ciphertexts encrypted for another session', async () => {
  const a = await RemoteModel.connect(srv.url);
  const b = await RemoteModel.connect(srv.url);
  try {
    const x = synthetic(7, [12, 12, 1]);
    const frameA = a.client.encryptInput(x, a.info.session);
    const json = async (r: Response) => ({ status: r.status, message: ((await r.json()) as { message: string }).message });
    expect(await json(await post(`${srv.url}/sessions/no-such-session/infer`, frameA, a.info.token))).toEqual({
      status: 404,
      message: expect.stringMatching(/unknown or expired session/),
    });
    const f = decodeFrame(frameA);
    const truncated = encodeFrame({ ...f, parts: [f.parts[0].subarray(0, f.parts[0].length >> 1), ...f.parts.slice(1)] });
    expect(await json(await post(`${srv.url}/sessions/${a.info.session}/infer`, truncated, a.info.token))).toEqual({
      status: 400,
      message: expect.stringMatching(/input ciphertext 0 does not load/),
    });
    expect(await json(await post(`${srv.url}/sessions/${a.info.session}/infer`, encodeFrame({ ...f, parts: [] }), a.info.token))).toEqual({
      status: 400,
      message: expect.stringMatching(/reads 1 input ciphertexts per inference, the frame has 0/),
    });
    const huge = new Uint8Array(card.limits!.inferBytes + 1024);
    expect((await post(`${srv.url}/sessions/${a.info.session}/infer`, huge, a.info.token)).status).toBe(413);
    // Another session's ciphertexts: without its token 401; with B's token, A's frame is bound to A and refused.
    expect(await json(await post(`${srv.url}/sessions/${b.info.session}/infer`, frameA, a.info.token))).toEqual({
      status: 401,
      message: expect.stringMatching(/bearer token/),
    });
    expect(await json(await post(`${srv.url}/sessions/${b.info.session}/infer`, frameA, b.info.token))).toEqual({
      status: 409,
      message: expect.stringMatching(/encrypted for session .* not for session/),
    });
    // Both sessions still work after all of that.
    expectClose((await a.infer(x)).output, predict(model, x, [12, 12, 1]));
    expectClose((await b.infer(x)).output, predict(model, x, [12, 12, 1]));
  } finally {
    await a.close();
    await b.close();
  }
  const gone = await fetch(`${srv.url}/sessions/${a.info.session}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${a.info.token}` },
  });
  expect(gone.status).toBe(404);
});

test('sessions expire after their TTL, and the memory budget refuses a session that does not fit (503)', async () => {
  const dir = join(tmp.path, 'tiny');
  const keyBytes = (card.galoisSteps.length + 1) * 2 * 8192 * 7 * 6 * 8; // in-memory key size (plan/rotation-keys galoisKeyBytes)
  const small = await serve({ model: dir, port: 0, workers: 1, sessionTtlMs: 4000, memoryBudgetBytes: Math.ceil(keyBytes * 1.5) });
  const c1 = await HeClient.create(card),
    c2 = await HeClient.create(card);
  try {
    const [k1, k2] = [c1.evaluationKeys(), c2.evaluationKeys()];
    const first = await post(`${small.url}/sessions`, k1);
    expect(first.status).toBe(201);
    const s1 = (await first.json()) as { session: string; token: string };
    const full = await post(`${small.url}/sessions`, k2);
    expect([full.status, ((await full.json()) as { message: string }).message]).toEqual([
      503,
      expect.stringMatching(/the session memory budget is full/),
    ]);
    await new Promise((r) => setTimeout(r, 5500));
    const late = await post(`${small.url}/sessions/${s1.session}/infer`, c1.encryptInput(synthetic(3, [12, 12, 1]), s1.session), s1.token);
    expect([late.status, ((await late.json()) as { message: string }).message]).toEqual([
      404,
      expect.stringMatching(/unknown or expired session/),
    ]);
    // Expired, its memory is free again.
    expect((await post(`${small.url}/sessions`, k2)).status).toBe(201);
    expect(small.server.usage().sessions).toBe(1);
  } finally {
    c1.delete();
    c2.delete();
    await small.close();
  }
});

test('a crashed evaluation worker is replaced: its sessions answer 404 and clients re-open; the server keeps serving', async () => {
  const s = await serve({ model: join(tmp.path, 'tiny'), port: 0, workers: 1 });
  try {
    const remote = await RemoteModel.connect(s.url);
    const x = synthetic(9, [12, 12, 1]);
    expectClose((await remote.infer(x)).output, predict(model, x, [12, 12, 1]));
    await s.server.crashWorkerForTest(0);
    await expect(remote.infer(x)).rejects.toThrow(/404: unknown or expired session/);
    await remote.close();
    for (let i = 0; i < 100 && s.server.workers < 1; i++) await new Promise((r) => setTimeout(r, 100));
    expect(s.server.workers).toBe(1);
    const again = await RemoteModel.connect(s.url);
    try {
      expectClose((await again.infer(x)).output, predict(model, x, [12, 12, 1]));
    } finally {
      await again.close();
    }
  } finally {
    await s.close();
  }
});

test('synthetic ResNet-8 with masked refresh: the multi-round exchange over HTTP matches the plaintext model', async () => {
  const deep = withSeededRandom(41, () =>
    buildModel(
      modelSchema.parse({
        name: 'resnet20',
        depth: 8,
        width: 2,
        activation: 'quadratic',
        quadraticInit: { alpha: 0.3, beta: 0.5, c: 0.1 },
      }),
      { inputShape: [4, 4, 3], numClasses: 3 },
    ),
  );
  const dir = join(tmp.path, 'resnet8');
  await writeExport(dir, compileChain(lowerModel(deep), { params, refresh: { levels: 5, maskBits: 6 } }), meta([4, 4, 3], 3));
  const s = await serve({ model: dir, port: 0, workers: 1 });
  try {
    const remote = await RemoteModel.connect(s.url);
    try {
      expect(remote.client.card.refreshRounds).toBeGreaterThanOrEqual(2);
      const x = synthetic(41, [4, 4, 3]);
      const r = await remote.infer(x);
      expect(r.refreshRounds).toBe(remote.client.card.refreshRounds);
      expectClose(r.output, predict(deep, x, [4, 4, 3]));
      process.stdout.write(
        `ResNet-8 with refresh over HTTP: ${r.refreshRounds} refresh rounds, ${r.bytesUp} B up, ${r.bytesDown} B down, round trip ${r.roundTripMs.toFixed(0)} ms\n`,
      );
    } finally {
      await remote.close();
    }
  } finally {
    await s.close();
    deep.dispose();
  }
});
