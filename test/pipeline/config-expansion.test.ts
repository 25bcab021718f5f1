import { readFileSync, writeFileSync } from 'node:fs';
import { resolvedRuns } from '../helpers/config-expansion.js';

/**
 * Every run the shipped configs produce resolves to the config recorded in
 * config-expansion.json (keyed `<directory>/<run name>`): restructuring the
 * configs (extends:, variants:) must not change a single resolved value or run
 * name. After an intended change of a config, regenerate with
 * HEPRUNE_UPDATE_EXPANSION=1 and say why in the commit.
 */
const FIXTURE = 'test/pipeline/config-expansion.json';

test('every shipped run resolves to its recorded config', async () => {
  const runs = await resolvedRuns('configs');
  if (process.env.HEPRUNE_UPDATE_EXPANSION === '1') {
    writeFileSync(FIXTURE, JSON.stringify(runs, null, 1) + '\n');
    return;
  }
  const recorded = JSON.parse(readFileSync(FIXTURE, 'utf8')) as Record<string, unknown>;
  expect(Object.keys(runs).sort()).toEqual(Object.keys(recorded).sort());
  for (const key of Object.keys(recorded)) expect({ [key]: runs[key] }).toEqual({ [key]: recorded[key] });
});
