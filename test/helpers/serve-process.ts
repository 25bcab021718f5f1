import { spawn } from 'node:child_process';
import { CLI } from './cli.js';

/** `heprune serve` as a child process: its URL once it listens, and a stop that waits for it to exit. */
export async function startServe(args: string[]): Promise<{ url: string; pid: number; stderr: () => string; stop: () => Promise<void> }> {
  const server = spawn(process.execPath, [CLI, 'serve', ...args], { env: { ...process.env, CI: 'true' } });
  let err = '';
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    server.stderr.on('data', (d) => {
      err += d;
      const m = /at (http:\/\/\S+)/.exec(err);
      if (m) resolve(m[1]);
    });
    server.on('exit', (code) => reject(new Error(`heprune serve exited ${code}: ${err}`)));
  });
  return {
    url,
    pid: server.pid!,
    stderr: () => err,
    stop: async () => {
      server.kill('SIGTERM');
      await exited;
    },
  };
}
