import { basename } from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { fileLogger } from '../../common/log.js';
import { reproduce, reproducePlan } from '../../pipeline/reproduce.js';
import { handled } from '../errors.js';

interface Args {
  table: string;
  quick: boolean;
  out: string;
  configs?: string;
  fromScratch: boolean;
  list: boolean;
}

export const reproduceCommand: CommandModule<object, Args> = {
  command: 'reproduce <table>',
  describe: "run a paper's configs (configs/<table>/) and write its table (Markdown and CSV) with measured speedups beside the paper's",
  builder: (y: Argv) =>
    y
      .positional('table', {
        type: 'string',
        demandOption: true,
        describe: 'a table with configs under configs/<table>/ (spencnn, hepex, ffconv)',
      })
      .option('list', {
        type: 'boolean',
        default: false,
        describe: 'print the runs the table would make, in order (row, role, run, what it starts from), and run nothing',
      })
      .option('quick', {
        type: 'boolean',
        default: false,
        describe: 'small subsets, 1 epoch, 4 CKKS images: a smoke check in minutes, marked as such',
      })
      .option('out', { type: 'string', default: 'runs', describe: 'parent directory of the runs and of reproduce-<table>/' })
      .option('configs', { type: 'string', describe: 'config directory (default configs/<table>)' })
      .option('from-scratch', {
        type: 'boolean',
        default: false,
        describe: 'train the references here even where the zoo holds them finished (by default they are adopted from zoo/)',
      }) as unknown as Argv<Args>,
  handler: handled(async (a: ArgumentsCamelCase<Args>) => {
    const configsDir = a.configs ?? `configs/${a.table}`;
    if (a.list) {
      const runs = await reproducePlan({ table: a.table, configsDir, outDir: a.out, quick: a.quick, fromScratch: a.fromScratch });
      for (const [i, r] of runs.entries()) {
        const t = r.config.train;
        const from = t?.from ? `${t.from}${t.fromPruned ? "'s pruned model" : ''}` : t?.init;
        process.stdout.write(
          `${i + 1}. ${r.reproduce.row} · ${r.reproduce.role} · ${String(r.config.name)} [${r.source}]${from ? ` from ${from}` : ''}\n`,
        );
      }
      return;
    }
    const { markdown, dir, exports, plots } = await reproduce({
      table: a.table,
      configsDir,
      outDir: a.out,
      quick: a.quick,
      fromScratch: a.fromScratch,
      logger: fileLogger(),
    });
    process.stdout.write(
      `${markdown}\n(${dir}/table.md, table.csv${plots.length ? `; plots: ${plots.map((p) => basename(p)).join(', ')} and .svg` : ''})\n`,
    );
    const last = exports.at(-1);
    if (last) {
      process.stdout.write(
        `\nNext:\n  npx heprune evaluate --model ${last} --samples 50 --encrypted --workers 2   # more images under CKKS\n` +
          '  npx heprune reproduce spencnn --quick      # the SpENCNN table (HE-group conv + sub-block pruning), smoke-sized\n' +
          '  npx heprune reproduce hepex --quick        # the HE-PEx table (tile pruning, permutation, expansion)\n' +
          '  npx heprune reproduce ffconv --quick       # the FFConv table (low-rank factorised convolutions)\n' +
          '  npx heprune run configs/mnist/lenet5.yaml  # a full pipeline; configs/ holds the others, README.md explains them\n',
      );
    }
  }),
};
