import { access, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../common/errors.js';

export async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

export async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** First of `names` that exists in `dir` (e.g. with and without `.gz`), or undefined. */
export async function findFirst(dir: string, names: string[]): Promise<string | undefined> {
  for (const n of names) {
    const p = join(dir, n);
    if (await exists(p)) return p;
  }
  return undefined;
}

/** Clear error for a dataset that is not on this machine. */
export function missingDataset(name: string, path: string, howToGet: string): UserError {
  return new UserError(`dataset '${name}' not found at ${path}.\n  How to get it: ${howToGet}`);
}
