import * as tf from '@tensorflow/tfjs';

export const ACTIVATIONS = ['square', 'quadratic', 'relu'] as const;
export type ActivationKind = (typeof ACTIVATIONS)[number];

type LayerArgs = NonNullable<ConstructorParameters<typeof tf.layers.Layer>[0]>;

export interface PolyActivationArgs extends LayerArgs {
  kind: 'square' | 'quadratic';
  /** Initial α, β, c of αx²+βx+c (quadratic only). */
  init?: { alpha: number; beta: number; c: number };
}

/**
 * HE-friendly activation: `square` is x², `quadratic` is αx²+βx+c with α, β, c
 * trainable scalars per layer (SpENCNN). Starting close to the identity
 * (small α, β=1) keeps deep polynomial nets from blowing up in the first steps.
 * Each costs exactly one ciphertext multiplication and one level after
 * coefficient merging at export.
 */
/**
 * While set (inside a training step), every activation adds the penalty
 * mean(relu(|x| − bound)²) of its input to `terms`, so the loss can keep
 * activation inputs in range.
 */
export const rangePenalty: { current: { bound: number; terms: tf.Tensor[] } | null } = { current: null };

export class PolyActivation extends tf.layers.Layer {
  static className = 'HePolyActivation';
  readonly kind: 'square' | 'quadratic';
  private readonly init: { alpha: number; beta: number; c: number };
  private alpha?: tf.LayerVariable;
  private beta?: tf.LayerVariable;
  private c?: tf.LayerVariable;

  constructor(args: PolyActivationArgs) {
    const { kind: _k, init: _i, ...base } = args;
    super(base);
    this.kind = args.kind;
    this.init = args.init ?? { alpha: 0.1, beta: 1, c: 0 };
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    if (this.kind === 'quadratic') {
      const k = (v: number) => tf.initializers.constant({ value: v });
      this.alpha = this.addWeight('alpha', [], 'float32', k(this.init.alpha));
      this.beta = this.addWeight('beta', [], 'float32', k(this.init.beta));
      this.c = this.addWeight('c', [], 'float32', k(this.init.c));
    }
    super.build(inputShape);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x0 = Array.isArray(inputs) ? inputs[0] : inputs;
    const r = rangePenalty.current;
    // Kept (the model's execution disposes intermediates): the step reads it after the forward pass and disposes it.
    if (r) r.terms.push(tf.keep(tf.tidy(() => tf.mean(tf.square(tf.relu(tf.sub(tf.abs(x0), r.bound)))))));
    return tf.tidy(() => {
      const x = x0;
      if (this.kind === 'square') return tf.mul(x, x);
      const a = this.alpha!.read(),
        b = this.beta!.read(),
        c = this.c!.read();
      return tf.add(tf.add(tf.mul(a, tf.mul(x, x)), tf.mul(b, x)), c);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), kind: this.kind, init: this.init };
  }

  /** Current coefficients (for export's coefficient merging). */
  coefficients(): { alpha: number; beta: number; c: number } {
    if (this.kind === 'square') return { alpha: 1, beta: 0, c: 0 };
    return { alpha: this.alpha!.read().dataSync()[0], beta: this.beta!.read().dataSync()[0], c: this.c!.read().dataSync()[0] };
  }
}
tf.serialization.registerClass(PolyActivation);

/** The activation layer for `kind`; relu is the plaintext-only baseline. */
export function activationLayer(kind: ActivationKind, name?: string, init?: PolyActivationArgs['init']): tf.layers.Layer {
  if (kind === 'relu') return tf.layers.reLU({ name });
  return new PolyActivation({ kind, name, init });
}
