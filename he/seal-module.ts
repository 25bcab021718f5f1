import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import SEALFactory, { type MainModule } from 'node-seal';

/** A loaded node-seal instance plus the size of its WASM heap (for memory reports and leak tests). */
export interface Seal {
  readonly m: MainModule;
  /** Current WASM heap size in bytes (it only grows: leaks show as growth). */
  heapBytes(): number;
}

let shared: Promise<Seal> | undefined;

/** node-seal's wasm file, found along Node's module lookup paths (node-seal's exports hide its files). */
function sealWasmPath(): string {
  const dirs = createRequire(import.meta.url).resolve.paths('node-seal') ?? [];
  for (const d of dirs) {
    const p = join(d, 'node-seal', 'dist', 'seal_throws.wasm');
    if (existsSync(p)) return p;
  }
  throw new Error(`node-seal is not installed (looked in ${dirs.join(', ')}); run npm ci`);
}

/**
 * Loads node-seal once per thread. The wasm is instantiated through
 * emscripten's instantiateWasm hook so the heap's WebAssembly.Memory can be
 * read (node-seal does not export it).
 */
export function loadSeal(): Promise<Seal> {
  shared ??= (async () => {
    let memory: WebAssembly.Memory | undefined;
    const bytes = await readFile(sealWasmPath());
    const m = await SEALFactory({
      instantiateWasm(imports: WebAssembly.Imports, receive: (i: WebAssembly.Instance, mod: WebAssembly.Module) => void) {
        WebAssembly.instantiate(bytes, imports).then(({ instance, module }) => {
          memory = Object.values(instance.exports).find((e): e is WebAssembly.Memory => e instanceof WebAssembly.Memory);
          receive(instance, module);
        });
        return {};
      },
    });
    return { m, heapBytes: () => memory?.buffer.byteLength ?? 0 };
  })();
  return shared;
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
    throw new Error(`${what}: the node-seal WASM heap reached ${(used / 2 ** 30).toFixed(2)} GiB (wasm32 limit 4 GiB); ` +
      'stopping here, because node-seal hangs when the heap runs out. Lower export.maxGaloisKeyMB, use smaller parameters, ' +
      'or keep fewer encoded weights in memory (--plaintext-budget-mb, evaluate.plaintextBudgetMB).');
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
