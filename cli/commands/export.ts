import { join } from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { loadConfig } from '../../pipeline/load-config.js';
import { runPipeline } from '../../pipeline/runner.js';
import { handled } from '../errors.js';

interface Args {
  run: string;
  set: string[];
}

/** Exports a trained run: its config plus an export section, run through the pipeline (training is already complete). */
export const exportCommand: CommandModule<object, Args> = {
  command: 'export',
  describe: 'compile a trained run to a packed CKKS plan (runs/<name>/export: manifest.json + weights.bin)',
  builder: (y: Argv) =>
    y
      .option('run', { type: 'string', demandOption: true, describe: 'run directory (runs/<name>) with a finished train stage' })
      .option('set', {
        type: 'string',
        array: true,
        default: [],
        describe: 'export options, e.g. --set export.scaleBits=30',
      }) as unknown as Argv<Args>,
  handler: handled(async (a: ArgumentsCamelCase<Args>) => {
    const file = join(a.run, 'config.yaml');
    let config = await loadConfig(file, a.set);
    if (!config.export) config = await loadConfig(file, ['export={}', ...a.set]);
    // Export only: the run's config.yaml takes the overrides (and keeps its evaluate: section) once the export has succeeded.
    const { evaluate: _e, ...upToExport } = config;
    const { summary } = await runPipeline(upToExport, { partOf: config });
    process.stdout.write(JSON.stringify(summary.export, null, 2) + '\n');
  }),
};
