import { DivergenceError, UserError } from '../common/errors.js';

/** Runs a command handler: a UserError prints its message and sets its exit code; anything else is a bug with a stack. */
export function handled<A>(f: (args: A) => Promise<void>): (args: A) => Promise<void> {
  return async (args: A) => {
    try {
      await f(args);
    } catch (e) {
      if (e instanceof UserError || e instanceof DivergenceError) {
        process.stderr.write(`heprune: error: ${e.message}\n`);
        process.exitCode = e.exitCode;
      } else {
        process.stderr.write(`heprune: internal error (please report): ${(e as Error)?.stack ?? String(e)}\n`);
        process.exitCode = 1;
      }
    }
  };
}
