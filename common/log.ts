import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

/** Progress and messages go through a Logger (never bare console.log in library code). */
export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
}

export const silentLogger: Logger = { info() {}, warn() {} };

/** Logs to stderr and appends to `file` (the run's log.txt), each line time-stamped in the file. */
export function fileLogger(file?: string, echo = true): Logger {
  if (file) mkdirSync(dirname(file), { recursive: true });
  const write = (level: string, msg: string) => {
    if (echo) process.stderr.write(`${level === 'warn' ? 'warning: ' : ''}${msg}\n`);
    if (file) appendFileSync(file, `${new Date().toISOString()} ${level} ${msg}\n`);
  };
  return { info: (m) => write('info', m), warn: (m) => write('warn', m) };
}
