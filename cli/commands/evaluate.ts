import { dirname, resolve } from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { fileLogger } from '../../common/log.js';
import { datasetSchema } from '../../pipeline/config-schema.js';
import { loadRaw } from '../../pipeline/stages/data-stage.js';
import { loadExport } from '../../export/artifact.js';
import { evaluateExport, type ExportMeta } from '../../evaluate/evaluate.js';
import { initBackend } from '../../train/backend.js';
import { handled } from '../errors.js';
import { nonNegative, positiveInt } from '../flags.js';

interface Args {
  model: string;
  samples: string;
  encrypted: boolean;
  simulate: boolean;
  workers: string;
  plaintextBudgetMb: string;
  datasetPath?: string;
  out?: string;
}

export const evaluateCommand: CommandModule<object, Args> = {
  command: 'evaluate',
  describe: 'accuracy and cost of an exported plan: plaintext, simulated and (with --encrypted) real CKKS',
  builder: (y: Argv) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'export directory (manifest.json + weights.bin)' })
      .option('samples', { type: 'string', default: '200', describe: 'first N test images' })
      .option('encrypted', { type: 'boolean', default: false, describe: 'run real CKKS inference (node-seal)' })
      .option('simulate', { type: 'boolean', default: true, describe: 'run the slot simulator' })
      .option('workers', { type: 'string', default: '1', describe: 'CKKS worker threads' })
      .option('plaintext-budget-mb', {
        type: 'string',
        default: '1024',
        describe: 'encoded weights each worker keeps; the rest are encoded at each use',
      })
      .option('dataset-path', { type: 'string', describe: "dataset directory, if not the default for the plan's dataset" })
      .option('out', {
        type: 'string',
        describe:
          'where evaluation.json/csv go (default: the directory holding the export, e.g. runs/<name>: never inside the export, which a re-export replaces)',
      }) as unknown as Argv<Args>,
  handler: handled(async (a: ArgumentsCamelCase<Args>) => {
    // Flags are read as strings so a mistyped value is named as typed (yargs would give NaN), before any work.
    const samples = positiveInt('--samples')(a.samples),
      workers = positiveInt('--workers')(a.workers);
    const budgetMb = nonNegative('--plaintext-budget-mb')(a.plaintextBudgetMb);
    const { manifest } = await loadExport(a.model);
    const meta = manifest.meta as unknown as ExportMeta;
    await initBackend('auto');
    const dc = datasetSchema.parse((manifest.meta as { datasetConfig?: unknown }).datasetConfig ?? { name: meta.dataset });
    const ds = await loadRaw(dc, a.datasetPath, fileLogger());
    const report = await evaluateExport({
      exportDir: a.model,
      test: ds.test,
      samples,
      encrypted: a.encrypted,
      simulate: a.simulate,
      workers,
      plaintextBudget: budgetMb * 2 ** 20,
      outDir: a.out ?? dirname(resolve(a.model)),
      logger: fileLogger(),
    });
    process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  }),
};
