// Module resolve hook for a child process: any import of tfjs fails loudly.
export async function resolve(specifier: string, context: unknown, next: (s: string, c: unknown) => Promise<unknown>): Promise<unknown> {
  if (specifier.startsWith('@tensorflow/')) throw new Error(`tfjs was imported (${specifier})`);
  return next(specifier, context);
}
