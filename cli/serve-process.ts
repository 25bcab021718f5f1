import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The built CLI beside this file. */
const CLI = join(dirname(fileURLToPath(import.meta.url)), 'main.js');

/**
 * `heprune serve` as a child process: its URL once it listens (killed if it
 * does not within `startMs`), and a stop that waits for it to exit (SIGKILL
 * after 10 s). For the tests and benches that drive a real server on
 * loopback, and for scripts that want one.
 */
export async function startServe(
  args: string[],
  startMs = 180_000,
): Promise<{ url: string; pid: number; stderr: () => string; stop: () => Promise<void> }> {
  const server = spawn(process.execPath, [CLI, 'serve', ...args], { env: { ...process.env, CI: 'true' } });
  let err = '';
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  // Nobody reads the request log: drained so a full pipe cannot block the server.
  server.stdout.resume();
  const stop = async () => {
    server.kill('SIGTERM');
    const kill = setTimeout(() => server.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(kill);
  };
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`heprune serve did not listen within ${startMs} ms: ${err}`)), startMs);
      server.stderr.on('data', (d) => {
        err += d;
        const m = /at (http:\/\/\S+)/.exec(err);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      server.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`heprune serve exited ${code}: ${err}`));
      });
    });
    return { url, pid: server.pid!, stderr: () => err, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
