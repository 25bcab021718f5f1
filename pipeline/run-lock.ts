import { closeSync, linkSync, mkdirSync, openSync, readFileSync, rmdirSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { UserError } from '../common/errors.js';

/**
 * One process per run directory: two runs writing the same checkpoints,
 * stage records and exports would interleave into an inconsistent run.
 *
 * The lock file holds the owner's pid from the moment it exists: it is
 * written under a name of its own and hard-linked into place, and link()
 * fails when the lock exists, so two processes can never both succeed. A
 * lock whose owner is dead is removed only under a second, mkdir-based lock
 * and only if it still names that dead owner, so a takeover never removes a
 * fresh lock. Released when the run ends (or the process exits).
 */
export function lockRunDir(dir: string): () => void {
  const file = join(dir, '.lock');
  const mine = join(dir, `.lock.${process.pid}.${randomBytes(4).toString('hex')}`);
  try {
    const fd = openSync(mine, 'wx');
    try {
      writeSync(fd, String(process.pid));
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    throw new UserError(`cannot lock run directory ${dir}: ${(e as Error).message}`);
  }
  try {
    for (let attempt = 0; attempt < 200; attempt++) {
      try {
        linkSync(mine, file);
        let released = false;
        const release = () => {
          if (released) return;
          released = true;
          process.removeListener('exit', release);
          // Only our own lock: never one another process took over meanwhile.
          if (readOwner(file) === process.pid) rmSync(file, { force: true });
        };
        process.once('exit', release);
        return release;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST')
          throw new UserError(`cannot lock run directory ${dir}: ${(e as Error).message}`);
      }
      const owner = readOwner(file);
      if (owner === undefined) continue; // released meanwhile: try again
      if (owner !== process.pid && alive(owner)) throw inUse(dir, owner);
      removeStale(file, owner);
    }
    throw new UserError(`cannot lock run directory ${dir}: its lock kept changing hands`);
  } finally {
    rmSync(mine, { force: true });
  }
}

/** The pid in the lock file; undefined when it is gone; NaN when it holds no pid (a lock from an older heprune). */
function readOwner(file: string): number | undefined {
  try {
    return Number(readFileSync(file, 'utf8').trim()) || NaN;
  } catch {
    return undefined;
  }
}

/** Removes a lock naming a dead `owner`, under the takeover lock, if it still names it. */
function removeStale(file: string, owner: number): void {
  const takeover = `${file}.takeover`;
  try {
    mkdirSync(takeover);
  } catch {
    // Someone else is taking over; a takeover lock older than a few seconds is from a process that died doing it.
    try {
      if (Date.now() - statSync(takeover).mtimeMs > 5000) rmdirSync(takeover);
    } catch {
      /* gone already */
    }
    sleep(20);
    return;
  }
  try {
    const now = readOwner(file);
    if (now !== undefined && (now === owner || (Number.isNaN(now) && Number.isNaN(owner)))) unlinkSync(file);
  } finally {
    rmdirSync(takeover);
  }
}

function inUse(dir: string, pid: number): UserError {
  const cmd = commandOf(pid);
  if (cmd === undefined || /heprune|cli\/main\.js/.test(cmd)) {
    return new UserError(
      `run directory ${dir} is in use by process ${pid} (another heprune run of this config); wait for it to finish or stop it`,
    );
  }
  return new UserError(
    `run directory ${dir} is locked by process ${pid}, which is alive but is not heprune (${cmd.slice(0, 80)}): ` +
      `the lock was probably left by a killed run whose pid has been reused. If no heprune run uses this directory, delete ${join(dir, '.lock')}`,
  );
}

/** A process's command line (Linux /proc), undefined where it cannot be read. */
function commandOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  if (!Number.isFinite(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
