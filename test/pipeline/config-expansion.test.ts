import { readFileSync, writeFileSync } from 'node:fs';
import { quickReproduceRuns, resolvedRuns } from '../helpers/config-expansion.js';

/**
 * Every run the shipped configs produce resolves to the config recorded in
 * config-expansion.json (keyed `<directory>/<run name>`): restructuring the
 * configs (extends:, variants:) must not change a single resolved value or run
 * name. After an intended change of a config, regenerate with
 * HEPRUNE_UPDATE_EXPANSION=1 and say why in the commit.
 */
const FIXTURE = 'test/pipeline/config-expansion.json';
const QUICK = 'test/pipeline/config-expansion-reproduce.json';
const update = process.env.HEPRUNE_UPDATE_EXPANSION === '1';

test('every shipped run resolves to its recorded config', async () => {
  const runs = await resolvedRuns('configs');
  if (update) {
    writeFileSync(FIXTURE, JSON.stringify(runs, null, 1) + '\n');
    return;
  }
  const recorded = JSON.parse(readFileSync(FIXTURE, 'utf8')) as Record<string, unknown>;
  expect(Object.keys(runs).sort()).toEqual(Object.keys(recorded).sort());
  for (const key of Object.keys(recorded)) expect({ [key]: runs[key] }).toEqual({ [key]: recorded[key] });
});

test.each(['hepex', 'spencnn', 'ffconv', 'hemet'])(
  'reproduce %s --quick runs the recorded runs with the recorded configs',
  async (table) => {
    const runs = await quickReproduceRuns(table);
    const all = JSON.parse(readFileSync(QUICK, 'utf8')) as Record<string, { run: string; config: unknown }[]>;
    if (update) {
      writeFileSync(QUICK, JSON.stringify({ ...all, [table]: runs }, null, 1) + '\n');
      return;
    }
    const recorded = all[table];
    expect(runs.map((r) => r.run).sort()).toEqual(recorded.map((r) => r.run).sort());
    for (const r of recorded) expect(runs.find((x) => x.run === r.run)).toEqual(r);
  },
);
