import sharp from 'sharp';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { RemoteModel, RemoteError } from '../../client/index.js';
import { UserError } from '../../common/errors.js';
import { testSplit } from '../test-images.js';
import { loadSeal } from '../../he/seal-module.js';
import { handled } from '../errors.js';
import { positiveInt } from '../flags.js';

interface Args {
  server: string;
  image?: string;
  index?: string;
  dataset?: string;
  datasetPath?: string;
  repeat: string;
}

/** An image file as the model's raw HWC pixels (resized, grey or RGB as the model reads). */
async function imagePixels(file: string, shape: number[]): Promise<{ pixels: Uint8Array; label?: number }> {
  const [h, w, ch] = shape;
  try {
    let img = sharp(file).resize(w, h, { fit: 'fill' }).removeAlpha();
    if (ch === 1) img = img.grayscale();
    const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== ch) throw new Error(`decoded ${info.channels} channels, the model reads ${ch}`);
    return { pixels: new Uint8Array(data) };
  } catch (e) {
    throw new UserError(`${file}: cannot read the image (${(e as Error).message})`);
  }
}

async function datasetPixels(a: Args, card: RemoteModel['client']['card'], index: number): Promise<{ pixels: Uint8Array; label?: number }> {
  const name = a.dataset ?? card.model.dataset;
  if (!name) throw new UserError('--index: the card names no dataset; pass --dataset');
  const ds = await testSplit(name, a.datasetPath);
  if (index >= ds.count) throw new UserError(`--index ${index}: the ${name} test split has ${ds.count} images`);
  return ds.image(index);
}

export const inferCommand: CommandModule<object, Args> = {
  command: 'infer',
  describe: 'classify one image through `heprune serve`: keys, encryption and decryption here, evaluation on the server',
  builder: (y: Argv) =>
    y
      .option('server', { type: 'string', demandOption: true, describe: 'server URL, e.g. http://127.0.0.1:8080' })
      .option('image', { type: 'string', describe: "image file (png, jpg, …; resized to the model's input)" })
      .option('index', { type: 'string', describe: "instead of --image: this test image of the model's dataset" })
      .option('dataset', { type: 'string', describe: "with --index: dataset name (default: the card's)" })
      .option('dataset-path', { type: 'string', describe: 'with --index: dataset directory, if not the default' })
      .option('repeat', { type: 'string', default: '1', describe: 'inferences of the same image in the session (latency figures)' })
      .check((a) => {
        if (!a.image === (a.index === undefined)) throw new Error('give --image FILE or --index N');
        return true;
      }) as unknown as Argv<Args>,
  handler: handled(async (a: ArgumentsCamelCase<Args>) => {
    const repeat = positiveInt('--repeat')(a.repeat);
    let remote: RemoteModel;
    try {
      remote = await RemoteModel.connect(a.server, { seal: await loadSeal() });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message;
      throw new UserError(e instanceof RemoteError ? e.message : `${a.server}: ${(e as Error).message}${why ? ` (${why})` : ''}`);
    }
    try {
      const card = remote.client.card;
      const shape = card.model.shape ?? card.input.shape;
      const { pixels, label } = a.image ? await imagePixels(a.image, shape) : await datasetPixels(a, card, Number(a.index));
      const x = remote.client.normalize(pixels);
      const runs = [];
      for (let i = 0; i < repeat; i++) runs.push(await remote.infer(x));
      const r = runs[runs.length - 1];
      const ms = (v: number) => +v.toFixed(1);
      process.stdout.write(
        JSON.stringify(
          {
            prediction: r.prediction,
            ...(label !== undefined ? { label } : {}),
            output: r.output.map((v) => +v.toFixed(5)),
            session: { keygenMs: ms(remote.info.keygenMs), keyUploadMs: ms(remote.info.uploadMs), keyBytesUp: remote.info.keyBytes },
            timingsMs: runs.map((t) => ({
              encrypt: ms(t.encryptMs),
              roundTrip: ms(t.roundTripMs),
              server: t.serverMs,
              decrypt: ms(t.decryptMs),
              refreshClient: ms(t.refreshClientMs),
            })),
            bytes: { up: r.bytesUp, down: r.bytesDown },
            refreshRounds: r.refreshRounds,
          },
          null,
          2,
        ) + '\n',
      );
    } catch (e) {
      throw e instanceof RemoteError ? new UserError(e.message) : e;
    } finally {
      await remote.close();
    }
  }),
};
