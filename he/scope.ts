/** Frees node-seal objects created during `f` unless kept (like tf.tidy for the WASM heap). */
export interface Deletable {
  delete(): void;
}

export class Scope {
  private items: Deletable[] = [];
  track<T extends Deletable>(x: T): T {
    this.items.push(x);
    return x;
  }
  dispose(): void {
    for (const x of this.items.reverse()) x.delete();
    this.items = [];
  }
}

export function scoped<T>(f: (s: Scope) => T): T {
  const s = new Scope();
  try {
    return f(s);
  } finally {
    s.dispose();
  }
}
