import { BACKENDS } from '../../train/backend.js';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { parseConfig } from '../../pipeline/load-config.js';
import { runPipeline } from '../../pipeline/runner.js';
import { handled } from '../errors.js';
import { positiveInt } from '../flags.js';
import { commandLine } from '../command-line.js';
import YAML from 'yaml';

interface Args {
  dataset: string;
  model: string;
  epochs?: string;
  batchSize?: string;
  name?: string;
  out: string;
  set: string[];
  backend?: string;
  workers?: string;
  fresh: boolean;
}

/** `heprune train` is `heprune run` on a config made from flags (the same schema checks every value). */
export const trainCommand: CommandModule<object, Args> = {
  command: 'train',
  describe: 'train a zoo model on a dataset (a one-stage pipeline built from flags)',
  builder: (y: Argv) =>
    y
      .option('dataset', { type: 'string', demandOption: true, describe: 'dataset name (heprune datasets list)' })
      .option('model', {
        type: 'string',
        demandOption: true,
        describe: 'zoo model: cryptonets, lenet5, vgg5, hefnet, resnet20, squeezenet, mlp, autoencoder',
      })
      .option('epochs', { type: 'string' })
      .option('batch-size', { type: 'string' })
      .option('name', { type: 'string', describe: 'run name (default <model>-<dataset>)' })
      .option('out', { type: 'string', default: 'runs' })
      .option('backend', { type: 'string', choices: [...BACKENDS], describe: 'training engine: onnx, or a tfjs backend' })
      .option('workers', { type: 'string' })
      .option('fresh', { type: 'boolean', default: false })
      .option('set', {
        type: 'string',
        array: true,
        default: [],
        describe: 'any other key, e.g. --set model.activation=square',
      }) as unknown as Argv<Args>,
  handler: handled(async (a: ArgumentsCamelCase<Args>) => {
    const sets = [
      `dataset.name=${a.dataset}`,
      `model.name=${a.model}`,
      `outDir=${a.out}`,
      `name=${a.name ?? `${a.model}-${a.dataset}`}`,
      ...a.set,
    ];
    if (a.epochs !== undefined) sets.push(`train.epochs=${positiveInt('--epochs')(a.epochs)}`);
    if (a.batchSize !== undefined) sets.push(`train.batchSize=${positiveInt('--batch-size')(a.batchSize)}`);
    if (a.backend) sets.push(`train.backend=${a.backend}`);
    if (a.workers !== undefined) sets.push(`train.workers=${positiveInt('--workers')(a.workers)}`);
    const config = parseConfig(YAML.stringify({}), '(command line)', sets);
    const { runDir, summary } = await runPipeline(config, { fresh: a.fresh, command: commandLine() });
    process.stdout.write(JSON.stringify({ runDir, train: summary.train ?? null }, null, 2) + '\n');
  }),
};
