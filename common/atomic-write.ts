import { mkdir, rename, rm, writeFile, open } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { UserError, errorMessage } from './errors.js';

/**
 * Writes `data` to `path` so that a reader sees either the old file or the
 * whole new one: write a temp file beside it, fsync, then rename over.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(tmp, data);
    const fh = await open(tmp, 'r');
    try { await fh.sync(); } finally { await fh.close(); }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw new UserError(`cannot write ${path}: ${errorMessage(e)}`, { cause: e });
  }
}

export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n');
}

/**
 * Replaces directory `finalDir` with one built by `build(tmpDir)`. The old
 * directory is kept until the new one is complete, so an interruption leaves
 * either the old or the new one, never a half-written mix.
 */
export async function replaceDirAtomic(finalDir: string, build: (tmpDir: string) => Promise<void>): Promise<void> {
  const parent = dirname(finalDir);
  const tag = randomBytes(6).toString('hex');
  const tmp = join(parent, `.${basename(finalDir)}.${tag}.tmp`);
  const old = join(parent, `.${basename(finalDir)}.${tag}.old`);
  await mkdir(tmp, { recursive: true });
  try {
    await build(tmp);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  let hadOld = false;
  try { await rename(finalDir, old); hadOld = true; } catch { /* no previous version */ }
  await rename(tmp, finalDir);
  if (hadOld) await rm(old, { recursive: true, force: true });
}
