/**
 * The order in which `reproduce` runs a table's configs: dense references
 * first, then each config after the config whose run it starts from
 * (`train.from` or `train.init`), otherwise by file name, and the variants
 * of one file in the order it lists them (entries of one file share its
 * name). File names alone do not do it: `vgg5-grouped.yaml` sorts before
 * `vgg5.yaml`, whose trained model it adopts.
 */
export interface ConfigEntry {
  file: string;
  raw: Record<string, unknown>;
}

const nameOf = (e: ConfigEntry) => String(e.raw.name ?? '');
const sourcesOf = (e: ConfigEntry) => {
  const t = e.raw.train as { from?: unknown; init?: unknown } | undefined;
  return [t?.from, t?.init].filter((s): s is string => typeof s === 'string');
};
const isDense = (e: ConfigEntry) => (e.raw.reproduce as { role?: string } | undefined)?.role === 'dense';

export function runOrder<E extends ConfigEntry>(entries: readonly E[]): E[] {
  const sorted = [...entries].sort((a, b) => Number(isDense(b)) - Number(isDense(a)) || a.file.localeCompare(b.file));
  const byName = new Map(sorted.map((e) => [nameOf(e), e]));
  const out: E[] = [];
  const placed = new Set<E>();
  const visiting = new Set<E>();
  // Depth-first: a config's source goes out before it. A cycle or a source
  // outside the directory is left to the train stage's own error at run time.
  const place = (e: E) => {
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
