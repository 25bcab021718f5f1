/** Homomorphic operations the cost model counts (identical names in the static counter, the simulator and node-seal). */
export const OP_KINDS = [
  'encode',
  'encrypt',
  'decrypt',
  'add',
  'addPlain',
  'mulPlain',
  'mul',
  'rescale',
  'rotate',
  'modSwitch',
  'refresh',
] as const;
export type OpKind = (typeof OP_KINDS)[number];
export type OpCounts = Record<OpKind, number>;

export function zeroCounts(): OpCounts {
  return Object.fromEntries(OP_KINDS.map((k) => [k, 0])) as OpCounts;
}

export function addCounts(a: OpCounts, b: OpCounts): OpCounts {
  return Object.fromEntries(OP_KINDS.map((k) => [k, a[k] + b[k]])) as OpCounts;
}

/** Server-side work only (what the cost model optimises): no client encode/encrypt/decrypt. */
export function serverCounts(c: OpCounts): Omit<OpCounts, 'encrypt' | 'decrypt'> {
  const { encrypt: _e, decrypt: _d, ...rest } = c;
  return rest;
}
