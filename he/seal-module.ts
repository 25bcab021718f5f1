import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import SEALFactory from 'node-seal';

export { HEAP_LIMIT_BYTES, assertHeapHeadroom, sealError, type Seal } from './seal-core.js';
import type { Seal } from './seal-core.js';

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
