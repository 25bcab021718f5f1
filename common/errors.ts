/**
 * Errors a user can act on. The CLI prints `message` alone (no stack) and exits
 * with `exitCode`; anything else is a bug and is printed with its stack.
 */
export class UserError extends Error {
  readonly exitCode: number;
  constructor(message: string, options: { exitCode?: number; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'UserError';
    this.exitCode = options.exitCode ?? 2;
  }
}

/** Raised when training produces a non-finite loss: the model is broken, stop at once. */
export class DivergenceError extends UserError {
  constructor(message: string) {
    super(message, { exitCode: 3 });
    this.name = 'DivergenceError';
  }
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
