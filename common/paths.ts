import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** Cache directory for datasets: $HEPRUNE_CACHE, else $XDG_CACHE_HOME/heprune, else ~/.cache/heprune. */
export function defaultCacheDir(): string {
  if (process.env.HEPRUNE_CACHE) return resolve(process.env.HEPRUNE_CACHE);
  const xdg = process.env.XDG_CACHE_HOME;
  return join(xdg ? resolve(xdg) : join(homedir(), '.cache'), 'heprune');
}
