import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { fileLogger } from '../../common/log.js';
import { searchHemet } from '../../pipeline/search-hemet.js';
import { handled } from '../errors.js';
import { nonNegativeInt, positiveInt } from '../flags.js';

interface Args {
  method: string;
  config: string;
  variant?: string;
  set: string[];
  maxDepth?: string;
  maxN?: string;
  seed?: string;
  out?: string;
  name?: string;
  outSet: string[];
}

/** `heprune search hemet CONFIG`: HEMET's greedy block search over a config's network (pipeline/search-hemet). */
export const searchCommand: CommandModule<object, Args> = {
  command: 'search <method> <config>',
  describe:
    "search a network's blocks (hemet: block by block, the regular, Fire or mobile block with the lowest estimated latency that keeps depth within budget); writes search.json, search.md and the chosen network's config",
  builder: (y: Argv) =>
    y
      .positional('method', { type: 'string', choices: ['hemet'], demandOption: true, describe: 'the search: hemet (HEMET, ICML 2021)' })
      .positional('config', {
        type: 'string',
        demandOption: true,
        describe: 'pipeline YAML whose model has blocks (model.name: squeezenet, with model.preset or model.blocks)',
      })
      .option('variant', { type: 'string', describe: "the config's variant to search (its name or suffix)" })
      .option('set', {
        type: 'string',
        array: true,
        default: [],
        describe: 'override a key of the input config, e.g. --set export.channelBlocks=mux',
      })
      .option('max-depth', { type: 'string', describe: "largest depth a chosen network may have (default: the input network's)" })
      .option('max-n', { type: 'string', describe: 'largest ring size N a chosen network may need: 8192, 16384 or 32768 (default: any)' })
      .option('seed', { type: 'string', describe: 'seed of the random weights every network is compiled with (default 1)' })
      .option('out', { type: 'string', describe: 'output directory (default runs/search-hemet-<config name>)' })
      .option('name', { type: 'string', describe: 'name of the written config (default <config name>-hemet)' })
      .option('out-set', {
        type: 'string',
        array: true,
        default: [],
        describe: 'set a key of the written config, e.g. --out-set reproduce.table=hemet (repeatable)',
      }) as unknown as Argv<Args>,
  handler: handled(async (a: ArgumentsCamelCase<Args>) => {
    const maxDepth = a.maxDepth === undefined ? undefined : positiveInt('--max-depth')(a.maxDepth);
    const maxN = a.maxN === undefined ? undefined : positiveInt('--max-n')(a.maxN);
    const seed = a.seed === undefined ? undefined : nonNegativeInt('--seed')(a.seed);
    const base = a.config.replace(/^.*\//, '').replace(/\.ya?ml$/, '');
    const r = await searchHemet({
      config: a.config,
      ...(a.variant !== undefined ? { variant: a.variant } : {}),
      sets: a.set,
      outDir: a.out ?? `runs/search-hemet-${a.variant ?? base}`,
      ...(a.name !== undefined ? { name: a.name } : {}),
      outSets: a.outSet,
      ...(maxDepth !== undefined ? { maxDepth } : {}),
      ...(maxN !== undefined ? { maxN } : {}),
      ...(seed !== undefined ? { seed } : {}),
      logger: fileLogger(),
    });
    const { start, result } = r.outcome;
    process.stdout.write(
      `depth ${start.figures.depth} → ${result.figures.depth}, N=${result.figures.polyModulusDegree}, ` +
        `estimated ${start.figures.estimatedSeconds} s → ${result.figures.estimatedSeconds} s per image (${r.compiled} networks compiled)\n` +
        `${r.files.json}\n${r.files.markdown}\n${r.files.config}\n\nNext:\n  npx heprune run ${r.files.config}   # train and measure the chosen network\n`,
    );
  }),
};
