/**
 * The order in which `reproduce` runs a table's runs: dense references
 * first, then each run after the run it starts from (`train.from` or
 * `train.init`), otherwise by run name (not file name: a file with variants
 * is several runs, and how runs are split into files does not change the
 * order). Names alone do not do it: a run named `a-chain` would go before
 * `vgg5`, whose trained model it adopts.
 */
export interface ConfigEntry { file: string; raw: Record<string, unknown> }

const nameOf = (e: ConfigEntry) => String(e.raw.name ?? '');
const sourcesOf = (e: ConfigEntry) => {
  const t = e.raw.train as { from?: unknown; init?: unknown } | undefined;
  return [t?.from, t?.init].filter((s): s is string => typeof s === 'string');
};
const isDense = (e: ConfigEntry) => (e.raw.reproduce as { role?: string } | undefined)?.role === 'dense';

export function runOrder(entries: readonly ConfigEntry[]): ConfigEntry[] {
  const sorted = [...entries].sort((a, b) => Number(isDense(b)) - Number(isDense(a)) || nameOf(a).localeCompare(nameOf(b)) || a.file.localeCompare(b.file));
  const byName = new Map(sorted.map((e) => [nameOf(e), e]));
  const out: ConfigEntry[] = [];
  const placed = new Set<ConfigEntry>();
  const visiting = new Set<ConfigEntry>();
  // Depth-first: a config's source goes out before it. A cycle or a source
  // outside the directory is left to the train stage's own error at run time.
  const place = (e: ConfigEntry) => {
    if (placed.has(e) || visiting.has(e)) return;
    visiting.add(e);
    for (const src of sourcesOf(e)) {
      const dep = byName.get(src);
      if (dep && dep !== e) place(dep);
    }
    visiting.delete(e);
    placed.add(e);
    out.push(e);
  };
  for (const e of sorted) place(e);
  return out;
}
