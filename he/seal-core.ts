import type { MainModule } from 'node-seal';

// The part of loading node-seal that needs no file system (he/seal-module
// reads the wasm itself to watch the heap): what a browser client can use.

/** A loaded node-seal instance plus the size of its WASM heap (for memory reports and leak tests). */
export interface Seal {
  readonly m: MainModule;
  /** Current WASM heap size in bytes (it only grows: leaks show as growth). */
  heapBytes(): number;
}

/**
 * node-seal loaded its own way (its default wasm lookup; a bundler swaps in
 * the browser build). The heap size is not observable this way: heapBytes()
 * is 0 and heap checks pass; the server side uses he/seal-module's loadSeal.
 */
export async function loadSealPlain(): Promise<Seal> {
  const { default: SEALFactory } = await import('node-seal');
  const m = await SEALFactory();
  return { m, heapBytes: () => 0 };
}

/**
 * The wasm32 heap cannot grow past 4 GiB, and node-seal does not survive
 * reaching it. Measured: copying N=16384 ciphertexts in a loop hangs at
 * 4.00 GiB with 93% of the CPU profile in one 52-byte wasm function, a
 * test-and-set loop (most likely the lock of SEAL's memory pool, left taken
 * by the allocation that failed). No exception ever reaches JavaScript,
 * so operations check this margin and stop with an error before it. The heap's size is what is checked: SEAL's pool keeps freed
 * memory for reuse by objects of the same size, so the size is close to what
 * SEAL holds, and node-seal exports no allocator statistics to do better.
 */
export const HEAP_LIMIT_BYTES = 4 * 2 ** 30 - 128 * 2 ** 20;

export function assertHeapHeadroom(seal: Seal, what: string): void {
  const used = seal.heapBytes();
  if (used >= HEAP_LIMIT_BYTES) {
    throw new Error(
      `${what}: the node-seal WASM heap reached ${(used / 2 ** 30).toFixed(2)} GiB (wasm32 limit 4 GiB); ` +
        'stopping here, because node-seal hangs when the heap runs out. Lower export.maxGaloisKeyMB, use smaller parameters, ' +
        'or keep fewer encoded weights in memory (--plaintext-budget-mb, evaluate.plaintextBudgetMB).',
    );
  }
}

/** SEAL's C++ exceptions arrive as WebAssembly.Exception; turn them into readable Errors. */
export function sealError(_seal: Seal, e: unknown, what: string): Error {
  // node-seal sets `message` on the WebAssembly.Exception to [C++ type, text] when it throws.
  const msg = (e as { message?: unknown })?.message;
  if (Array.isArray(msg)) return new Error(`${what}: ${msg[0]}: ${msg[1]}`);
  if (typeof msg === 'string') return new Error(`${what}: ${msg}`);
  return new Error(`${what}: ${String(e)}`);
}
