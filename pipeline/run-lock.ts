import { openSync, closeSync, writeSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../common/errors.js';

/**
 * One process per run directory: two runs writing the same checkpoints,
 * stage records and exports would interleave into an inconsistent run. The
 * lock file holds the owner's pid; a lock left by a dead process is taken
 * over. Released when the run ends (or the process exits).
 */
export function lockRunDir(dir: string): () => void {
  const file = join(dir, '.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      let released = false;
      const release = () => { if (!released) { released = true; rmSync(file, { force: true }); } };
      process.once('exit', release);
      return release;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new UserError(`cannot lock run directory ${dir}: ${(e as Error).message}`);
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (pid && pid !== process.pid && alive(pid)) {
        throw new UserError(`run directory ${dir} is in use by process ${pid} (another heprune run of this config); wait for it to finish or stop it`);
      }
      rmSync(file, { force: true }); // stale: its owner is gone
    }
  }
  throw new UserError(`cannot lock run directory ${dir}`);
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}
