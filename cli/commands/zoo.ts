import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { UserError } from '../../common/errors.js';
import { publishRun } from '../../pipeline/zoo/publish.js';
import { listEntries, zooName, zooRoot, type ZooEntry } from '../../pipeline/zoo/store.js';
import { handled } from '../errors.js';

interface Args {
  action: string;
  run?: string;
  name?: string;
  json: boolean;
}

const pct = (v: number | null | undefined) => (typeof v === 'number' ? `${(100 * v).toFixed(2)}%` : '—');

function row(e: ZooEntry): string[] {
  const p = e.provenance,
    m = p.metrics;
  const val = m.last_val_accuracy ?? null;
  return [
    p.name,
    p.model,
    p.dataset,
    p.status === 'finished' ? 'finished' : `training ${p.epochs}/${p.epochsPlanned}`,
    `${p.epochs} (best ${p.bestEpoch})`,
    pct(m.testAccuracy),
    pct(val),
    p.publishedAt.slice(0, 10),
    p.commit,
  ];
}

/** `heprune zoo list` shows the repository's trained models; `heprune zoo publish` adds a run's training to it. */
export const zooCommand: CommandModule<object, Args> = {
  command: 'zoo <action>',
  describe:
    "the repository's trained models: list them, or publish a run's training (finished: the model; unfinished: a checkpoint a run on another machine continues)",
  builder: (y: Argv) =>
    y
      .positional('action', { type: 'string', choices: ['list', 'publish'], demandOption: true })
      .option('run', { type: 'string', describe: 'publish: the run directory (runs/<name>)' })
      .option('name', { type: 'string', describe: 'publish: the zoo entry name' })
      .option('json', { type: 'boolean', default: false, describe: 'list: print JSON' }) as unknown as Argv<Args>,
  handler: handled(async (a: ArgumentsCamelCase<Args>) => {
    if (a.action === 'publish') {
      if (!a.run || !a.name) throw new UserError('zoo publish: give --run <run directory> and --name <entry>');
      const n = zooName.safeParse(a.name);
      if (!n.success) throw new UserError(`zoo publish: --name ${a.name}: ${n.error.issues[0].message}`);
      const p = await publishRun(a.run, a.name);
      process.stdout.write(
        `zoo: ${p.name} ${p.status === 'finished' ? `finished (${p.epochs} epochs, test ${pct(p.metrics.testAccuracy)})` : `checkpoint at epoch ${p.epochs} of ${p.epochsPlanned} (a run of the same training continues from it)`} → ${zooRoot()}/${p.name}\n`,
      );
      return;
    }
    const entries = await listEntries();
    if (a.json) {
      process.stdout.write(
        JSON.stringify(
          entries.map((e) => e.provenance),
          null,
          2,
        ) + '\n',
      );
      return;
    }
    if (!entries.length) {
      process.stdout.write(`no zoo entries in ${zooRoot()}\n`);
      return;
    }
    const rows = [['name', 'model', 'dataset', 'status', 'epochs', 'test acc', 'last val acc', 'published', 'commit'], ...entries.map(row)];
    const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
    process.stdout.write(
      rows
        .map((r) =>
          r
            .map((c, i) => c.padEnd(widths[i]))
            .join('  ')
            .trimEnd(),
        )
        .join('\n') + '\n',
    );
  }),
};
