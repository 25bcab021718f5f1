import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { UserError } from '../../common/errors.js';
import type { DemoAssets } from '../../server/demo.js';
import { serve } from '../../server/http.js';
import { demoAssets } from '../demo-assets.js';
import { handled } from '../errors.js';
import { nonNegative, nonNegativeInt, positiveInt } from '../flags.js';

interface Args {
  model: string;
  port: string;
  host: string;
  workers?: string;
  sessionTtl: string;
  memoryBudgetMb: string;
  plaintextBudgetMb: string;
  refreshTimeout: string;
  log: boolean;
  demo: boolean;
  demoSamples?: string;
  datasetPath?: string;
}

export const serveCommand: CommandModule<object, Args> = {
  command: 'serve',
  describe:
    'serve an export for encrypted inference over HTTP (client card, sessions with evaluation keys, ciphertexts in and out; docs/deploy.md)',
  builder: (y: Argv) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'export directory (manifest.json + weights.bin)' })
      .option('port', { type: 'string', default: '8080', describe: 'TCP port (0: any free port)' })
      .option('host', {
        type: 'string',
        default: '127.0.0.1',
        describe: 'address to listen on (loopback by default; put a TLS proxy in front for other hosts)',
      })
      .option('workers', { type: 'string', describe: 'evaluation worker threads, one node-seal instance each (default: cores, at most 4)' })
      .option('session-ttl', { type: 'string', default: '600', describe: 'seconds an unused session lives' })
      .option('memory-budget-mb', { type: 'string', default: '2048', describe: 'evaluation keys all sessions may hold (in-memory size)' })
      .option('plaintext-budget-mb', {
        type: 'string',
        default: '1024',
        describe: 'encoded weights each worker keeps; the rest are encoded at each use',
      })
      .option('refresh-timeout', {
        type: 'string',
        default: '60',
        describe: "seconds an inference waits for the client's answer to one refresh round",
      })
      .option('log', { type: 'boolean', default: false, describe: 'log every request (JSON lines on stdout)' })
      .option('demo', {
        type: 'boolean',
        default: false,
        describe: 'also serve a browser page at /demo/ that makes the keys, encrypts and decrypts in the page',
      })
      .option('demo-samples', { type: 'string', describe: "with --demo: test images of the model's dataset to pick from (default 10)" })
      .option('dataset-path', { type: 'string', describe: 'with --demo: dataset directory, if not the default' }) as unknown as Argv<Args>,
  handler: handled(async (a: ArgumentsCamelCase<Args>) => {
    const port = Number(a.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UserError(`--port ${a.port}: expected 0..65535`);
    const samples = nonNegativeInt('--demo-samples')(a.demoSamples ?? '10');
    if (!a.demo && (a.datasetPath !== undefined || a.demoSamples !== undefined))
      throw new UserError('--demo-samples and --dataset-path go with --demo');
    let demo: DemoAssets | undefined;
    const running = await serve({
      model: a.model,
      demo: a.demo ? async (card) => (demo = await demoAssets(card, { samples, datasetPath: a.datasetPath })) : undefined,
      port,
      host: a.host,
      log: a.log,
      workers: a.workers === undefined ? undefined : positiveInt('--workers')(a.workers),
      sessionTtlMs: nonNegative('--session-ttl')(a.sessionTtl) * 1000,
      memoryBudgetBytes: nonNegative('--memory-budget-mb')(a.memoryBudgetMb) * 2 ** 20,
      plaintextBudgetBytes: nonNegative('--plaintext-budget-mb')(a.plaintextBudgetMb) * 2 ** 20,
      refreshTimeoutMs: nonNegative('--refresh-timeout')(a.refreshTimeout) * 1000,
    });
    const c = running.server.card;
    process.stderr.write(
      `heprune serve: ${a.model} at ${running.url} (N=${c.params.polyModulusDegree}, ${c.galoisSteps.length} Galois keys per session, ` +
        `${c.refreshRounds} refresh rounds per inference, ${running.server.workers} workers); sessions are in memory: a restart loses them\n` +
        (demo ? `heprune serve: demo page at ${running.url}/demo/ (${demo.samples.images.length} test images to pick from)\n` : ''),
    );
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.stderr.write('heprune serve: stopping\n');
        void running.close().then(resolve);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
  }),
};
