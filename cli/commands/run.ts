import { BACKENDS } from '../../train/backend.js';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { loadConfigs } from '../../pipeline/load-config.js';
import { runPipeline } from '../../pipeline/runner.js';
import { handled } from '../errors.js';
import { positiveInt } from '../flags.js';
import { commandLine } from '../command-line.js';

interface Args {
  config: string;
  variant?: string;
  set: string[];
  fresh: boolean;
  fromScratch: boolean;
  out?: string;
  backend?: string;
  workers?: string;
}

export const runCommand: CommandModule<object, Args> = {
  command: 'run <config>',
  describe:
    'run a YAML pipeline (dataset → train → …) into runs/<name>/, resuming finished stages; a config with variants runs each (or the one named)',
  builder: (y: Argv) =>
    y
      .positional('config', { type: 'string', demandOption: true, describe: 'pipeline YAML (see configs/)' })
      .option('variant', {
        type: 'string',
        describe: 'run only this variant of a config with variants: (its name or suffix, or its run name)',
      })
      .option('set', { type: 'string', array: true, default: [], describe: 'override a key, e.g. --set train.epochs=3 (repeatable)' })
      .option('fresh', { type: 'boolean', default: false, describe: "discard this run's finished stages and checkpoints" })
      .option('from-scratch', {
        type: 'boolean',
        default: false,
        describe: 'train even where the zoo holds this very training finished (by default it is adopted)',
      })
      .option('out', { type: 'string', describe: 'parent directory of the run (config key outDir)' })
      .option('backend', {
        type: 'string',
        choices: [...BACKENDS],
        describe: 'training engine: onnx, or a tfjs backend (config key train.backend)',
      })
      .option('workers', {
        type: 'string',
        describe: 'data-parallel training threads (config key train.workers)',
      }) as unknown as Argv<Args>,
  handler: handled(async (a: ArgumentsCamelCase<Args>) => {
    const sets = [...a.set];
    if (a.out) sets.push(`outDir=${a.out}`);
    if (a.backend) sets.push(`train.backend=${a.backend}`);
    if (a.workers !== undefined) sets.push(`train.workers=${positiveInt('--workers')(a.workers)}`);
    // Every run is checked before the first one starts (a bad variant does not surface hours in).
    const runs = await loadConfigs(a.config, sets, a.variant);
    const results = [];
    for (const { variant, config } of runs) {
      const { runDir, summary } = await runPipeline(config, { fresh: a.fresh, fromScratch: a.fromScratch, command: commandLine() });
      results.push({ variant, runDir, train: summary.train ?? null, export: summary.export ?? null, evaluate: summary.evaluate ?? null });
    }
    // One run prints its result as always; several, one JSON array of them, each naming its variant.
    const { variant: _, ...one } = results[0];
    process.stdout.write(JSON.stringify(results.length === 1 ? one : results, null, 2) + '\n');
  }),
};
