import * as tf from '@tensorflow/tfjs';

type LayerArgs = NonNullable<ConstructorParameters<typeof tf.layers.Layer>[0]>;

export interface GroupedConv2DArgs extends LayerArgs {
  filters: number;
  kernelSize: number;
  strides?: number;
  /** 'same', 'valid', or an explicit symmetric pad (e.g. 2 for LeNet's 5x5 pad 2). */
  padding?: 'same' | 'valid' | number;
  groups?: number;
  useBias?: boolean;
  /**
   * Set on the second convolution of a factorised pair, with no activation
   * between the two: the 1×1 half of an FFConv factorisation, or the
   * pointwise convolution of a mobile block without its middle activation
   * (a depthwise-separable convolution is a factorised one). Names the first
   * (the d×d half, the depthwise convolution). HE lowering keeps the pair as
   * two linear steps, which the compiler runs split or composes into one.
   */
  factorOf?: string;
}

/**
 * 2-D convolution with channel groups (tfjs has no `groups`): the kernel is
 * [k, k, Cin/G, Cout] as in PyTorch, and group g's Cout/G outputs see only its
 * Cin/G inputs. Implemented as G convolutions on channel slices, so a grouped
 * layer also trains with G times fewer FLOPs. G = 1 is an ordinary conv;
 * G = Cin = Cout is a depthwise convolution (MobileNet), run as one
 * tf.depthwiseConv2d rather than Cin single-channel convolutions.
 */
export class GroupedConv2D extends tf.layers.Layer {
  static className = 'HeGroupedConv2D';
  readonly filters: number;
  readonly kernelSize: number;
  readonly strides: number;
  readonly padding: 'same' | 'valid' | number;
  readonly groups: number;
  readonly useBias: boolean;
  readonly factorOf?: string;
  kernel?: tf.LayerVariable;
  bias?: tf.LayerVariable;

  constructor(args: GroupedConv2DArgs) {
    // Pass every base-layer arg through: deserialisation hands back batchInputShape, dtype, etc.
    const { filters: _f, kernelSize: _k, strides: _s, padding: _p, groups: _g, useBias: _u, factorOf: _fo, ...base } = args;
    super(base);
    this.filters = args.filters;
    this.kernelSize = args.kernelSize;
    this.strides = args.strides ?? 1;
    this.padding = args.padding ?? 'same';
    this.groups = args.groups ?? 1;
    this.useBias = args.useBias ?? true;
    if (args.factorOf !== undefined) this.factorOf = args.factorOf;
    if (this.filters % this.groups !== 0) throw new Error(`${this.name}: filters ${this.filters} not divisible by groups ${this.groups}`);
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const cin = shape[shape.length - 1]!;
    if (cin % this.groups !== 0) throw new Error(`${this.name}: input channels ${cin} not divisible by groups ${this.groups}`);
    const k = this.kernelSize;
    const fanIn = k * k * (cin / this.groups);
    // He-normal-like scale on the per-group fan-in: keeps the activation variance
    // near 1, which polynomial activations need (x² doubles any drift in scale).
    this.kernel = this.addWeight(
      'kernel',
      [k, k, cin / this.groups, this.filters],
      'float32',
      tf.initializers.randomNormal({ mean: 0, stddev: Math.sqrt(1 / fanIn) }),
    );
    if (this.useBias) this.bias = this.addWeight('bias', [this.filters], 'float32', tf.initializers.zeros());
    super.build(inputShape);
  }

  private pad(): 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]] {
    if (typeof this.padding === 'string') return this.padding;
    const p = this.padding;
    return [
      [0, 0],
      [p, p],
      [p, p],
      [0, 0],
    ];
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const out = (n: number) => {
      if (this.padding === 'same') return Math.ceil(n / this.strides);
      const p = this.padding === 'valid' ? 0 : this.padding;
      return Math.floor((n + 2 * p - this.kernelSize) / this.strides) + 1;
    };
    return [s[0], out(s[1]!), out(s[2]!), this.filters];
  }

  /** One input channel per group and one output channel per input channel: a depthwise convolution. */
  get depthwise(): boolean {
    return this.groups > 1 && this.groups === this.filters && this.kernel?.shape[2] === 1;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      const w = this.kernel!.read() as tf.Tensor4D;
      let y: tf.Tensor4D;
      if (this.groups === 1) {
        y = tf.conv2d(x, w, this.strides, this.pad());
      } else if (this.depthwise) {
        // [k, k, 1, C] and tfjs's depthwise filter [k, k, C, 1] hold the same values in the same order.
        const k = this.kernelSize;
        y = tf.depthwiseConv2d(x, tf.reshape(w, [k, k, this.filters, 1]), this.strides, this.pad());
      } else {
        const xs = tf.split(x, this.groups, 3);
        const ws = tf.split(w, this.groups, 3);
        y = tf.concat(
          xs.map((xg, g) => tf.conv2d(xg as tf.Tensor4D, ws[g] as tf.Tensor4D, this.strides, this.pad())),
          3,
        );
      }
      return this.useBias ? tf.add(y, this.bias!.read()) : y;
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      filters: this.filters,
      kernelSize: this.kernelSize,
      strides: this.strides,
      padding: this.padding,
      groups: this.groups,
      useBias: this.useBias,
      // Only when set: unfactorised layers serialise as before.
      ...(this.factorOf !== undefined ? { factorOf: this.factorOf } : {}),
    };
  }
}
tf.serialization.registerClass(GroupedConv2D);
