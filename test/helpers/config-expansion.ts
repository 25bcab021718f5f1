import { join, relative } from 'node:path';
import { loadConfigs } from '../../pipeline/load-config.js';
import { reproducePlan } from '../../pipeline/reproduce.js';
import { configFiles } from './plan-golden.js';

/**
 * Every run the configs under root produce, keyed `<directory>/<run name>`
 * (the directory relative to root), as the JSON of its fully-resolved config:
 * a file with variants is one run per variant.
 */
export async function resolvedRuns(root: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const file of configFiles(root)) {
    for (const { config } of await loadConfigs(file)) {
      const key = `${relative(root, join(file, '..'))}/${config.name}`;
      if (key in out) throw new Error(`${file}: run ${key} is produced twice`);
      out[key] = JSON.parse(JSON.stringify(config));
    }
  }
  return out;
}

/**
 * What `heprune reproduce <table> --quick` would run, in order: each run's
 * name and fully-resolved config (the quick overrides applied).
 */
export async function quickReproduceRuns(table: string): Promise<{ run: string; config: unknown }[]> {
  const plan = await reproducePlan({ table, configsDir: `configs/${table}`, outDir: 'runs', quick: true });
  return plan.map((p) => ({ run: p.config.name, config: JSON.parse(JSON.stringify(p.config)) }));
}
