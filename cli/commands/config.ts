import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import YAML from 'yaml';
import { loadConfigs } from '../../pipeline/load-config.js';
import { handled } from '../errors.js';

interface Args {
  config: string;
  variant?: string;
  set: string[];
  json: boolean;
}

/** `heprune config <file>`: the fully-resolved run(s) of a config, as `heprune run` would run them (extends: merged, variants: expanded, defaults filled in). */
export const configCommand: CommandModule<object, Args> = {
  command: 'config <config>',
  describe: 'print the resolved config of each run a file produces (extends: merged, variants: expanded, defaults filled in)',
  builder: (y: Argv) =>
    y
      .positional('config', { type: 'string', demandOption: true, describe: 'pipeline YAML (see configs/)' })
      .option('variant', { type: 'string', describe: 'only this variant (its name or suffix, or its run name)' })
      .option('set', {
        type: 'string',
        array: true,
        default: [],
        describe: 'override a key as heprune run would, e.g. --set train.epochs=3 (repeatable)',
      })
      .option('json', {
        type: 'boolean',
        default: false,
        describe: 'JSON (one object, or an array for several runs) instead of YAML',
      }) as unknown as Argv<Args>,
  handler: handled(async (a: ArgumentsCamelCase<Args>) => {
    const runs = await loadConfigs(a.config, a.set, a.variant);
    if (a.json) {
      const configs = runs.map((r) => r.config);
      process.stdout.write(JSON.stringify(configs.length === 1 ? configs[0] : configs, null, 2) + '\n');
      return;
    }
    // YAML: one document per run, each headed by the variant it is.
    process.stdout.write(
      runs.map((r) => (r.variant === undefined ? '' : `# ${a.config}, variant ${r.variant}\n`) + YAML.stringify(r.config)).join('---\n'),
    );
  }),
};
