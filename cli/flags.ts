import { UserError } from '../common/errors.js';

/**
 * Numeric flags, read as strings (yargs turns `abc` into NaN and takes `1.5`
 * where a count is meant): each says what it expects, before any work.
 */
export function positiveInt(flag: string): (v: unknown) => number {
  return (v) => {
    const n = Number(v);
    if (v === '' || !Number.isInteger(n) || n < 1) throw new UserError(`${flag} ${String(v)}: expected a positive integer`);
    return n;
  };
}

export function nonNegativeInt(flag: string): (v: unknown) => number {
  return (v) => {
    const n = Number(v);
    if (v === '' || !Number.isInteger(n) || n < 0) throw new UserError(`${flag} ${String(v)}: expected an integer >= 0`);
    return n;
  };
}

export function nonNegative(flag: string): (v: unknown) => number {
  return (v) => {
    const n = Number(v);
    if (v === '' || !Number.isFinite(n) || n < 0) throw new UserError(`${flag} ${String(v)}: expected a number >= 0`);
    return n;
  };
}
