/**
 * The only module that imports onnxruntime-node. Everything else sees {@link Graph}s, plain typed arrays and the
 * tensor helpers below, so that swapping the runtime (or its version) touches one file.
 */
import * as ort from 'onnxruntime-node';
import { performance } from 'node:perf_hooks';
import { InferenceError, ModelDisposedError, ProviderUnavailableError } from './errors.ts';

export type ExecutionProvider = 'cpu' | 'cuda' | 'webgpu';

/** How graphs are opened. */
export interface SessionConfig {
  /** Execution provider. Defaults to `'cpu'`. */
  provider?: ExecutionProvider;
  /** onnxruntime intra-op threads per graph. Defaults to onnxruntime's choice (the number of physical cores). */
  intraOpThreads?: number;
  /** onnxruntime inter-op threads. Defaults to onnxruntime's choice. */
  interOpThreads?: number;
}

/** A tensor as onnxruntime returns and takes it; other modules treat it as `{ type, dims, data }`. */
export type Tensor = ort.Tensor;

export type FloatDtype = 'float32' | 'float16';
/** Float data as a graph stores it: float16 values travel as their IEEE bits in a Uint16Array. */
export type FloatData = Float32Array | Uint16Array;

/** One input or output of a graph, with what the graph's metadata says about it. */
export interface PortInfo {
  name: string;
  /** Element type ('int64', 'float32', 'float16'…), when the graph declares a tensor. */
  type?: string;
  /** Dimensions: numbers for fixed axes, names for dynamic ones; undefined when unknown. */
  shape?: readonly (number | string)[];
}

const INSTALL_HINTS: Record<ExecutionProvider, string> = {
  cpu: 'the CPU provider ships inside onnxruntime-node; reinstall the package',
  cuda:
    'install the CUDA 12 runtime and cuDNN 9, then run onnxruntime-node\'s install script with ' +
    'ONNXRUNTIME_NODE_INSTALL_CUDA=v12 (npm rebuild onnxruntime-node) so that it fetches the CUDA provider library',
  webgpu: 'use an onnxruntime-node build with WebGPU (the default Linux x64, Windows and macOS builds have it) and a GPU driver with Vulkan, Metal or D3D12',
};

/** Providers this onnxruntime-node build knows, and whether each ships in the package. */
export function supportedProviders(): { name: string; bundled: boolean }[] {
  return ort.listSupportedBackends().map((b) => ({ name: b.name, bundled: b.bundled }));
}

/** Throws {@link ProviderUnavailableError} when this build has no such provider. */
export function assertProviderKnown(provider: ExecutionProvider): void {
  const known = supportedProviders();
  if (!known.some((b) => b.name === provider)) {
    throw new ProviderUnavailableError(
      `the execution provider "${provider}" is not in this onnxruntime-node build (it has: ${known
        .map((b) => b.name)
        .join(', ')}); ${INSTALL_HINTS[provider]}`,
    );
  }
}

/** An opened ONNX graph. `run` is safe to call concurrently (onnxruntime sessions are thread-safe). */
export class Graph {
  readonly inputs: readonly PortInfo[];
  readonly outputs: readonly PortInfo[];
  #session: ort.InferenceSession | undefined;
  readonly #inFlight = new Set<Promise<unknown>>();

  private constructor(
    readonly label: string,
    readonly path: string,
    session: ort.InferenceSession,
  ) {
    this.#session = session;
    this.inputs = session.inputMetadata.map(portInfo);
    this.outputs = session.outputMetadata.map(portInfo);
  }

  /** Opens a graph by path, so that onnxruntime finds external-data files next to it. */
  static async open(path: string, config: SessionConfig = {}, label = path): Promise<Graph> {
    const provider = config.provider ?? 'cpu';
    assertProviderKnown(provider);
    const options: ort.InferenceSession.SessionOptions = {
      executionProviders: [provider],
      graphOptimizationLevel: 'all',
      ...(config.intraOpThreads === undefined ? {} : { intraOpNumThreads: config.intraOpThreads }),
      ...(config.interOpThreads === undefined ? {} : { interOpNumThreads: config.interOpThreads }),
    };
    try {
      return new Graph(label, path, await ort.InferenceSession.create(path, options));
    } catch (error) {
      const message = (error as Error).message ?? String(error);
      if (provider !== 'cpu' && /provider|cuda|webgpu|dawn|vulkan|libcu|cudnn/i.test(message)) {
        throw new ProviderUnavailableError(
          `could not start the "${provider}" execution provider for ${label}: ${message}; ${INSTALL_HINTS[provider]}`,
          { cause: error },
        );
      }
      throw new InferenceError(`onnxruntime could not load ${label} (${path}): ${message}`, { cause: error });
    }
  }

  /** Runs the graph; `ms` is the wall time spent inside onnxruntime. */
  async run(feeds: Record<string, Tensor>): Promise<{ outputs: Record<string, Tensor>; ms: number }> {
    const session = this.#session;
    if (session === undefined) throw new ModelDisposedError(`${this.label} has been disposed`);
    const start = performance.now();
    const running = session.run(feeds);
    this.#inFlight.add(running);
    let outputs: Record<string, Tensor>;
    try {
      outputs = (await running) as Record<string, Tensor>;
    } catch (error) {
      throw new InferenceError(`${this.label} failed: ${(error as Error).message ?? String(error)}`, { cause: error });
    } finally {
      this.#inFlight.delete(running);
    }
    return { outputs, ms: performance.now() - start };
  }

  /** Refuses new runs, waits for the runs in flight (releasing a session under a run is unsafe), then releases. */
  async dispose(): Promise<void> {
    const session = this.#session;
    this.#session = undefined;
    await Promise.allSettled([...this.#inFlight]);
    await session?.release();
  }
}

function portInfo(meta: ort.InferenceSession.ValueMetadata): PortInfo {
  if (!meta.isTensor) return { name: meta.name };
  return { name: meta.name, type: meta.type, shape: meta.shape.length === 0 ? undefined : [...meta.shape] } as PortInfo;
}

/** An int64 tensor from numbers (ids, positions, masks). */
export function int64Tensor(values: ArrayLike<number> | BigInt64Array, dims: readonly number[]): Tensor {
  let data: BigInt64Array;
  if (values instanceof BigInt64Array) data = values;
  else {
    data = new BigInt64Array(values.length);
    for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i] as number);
  }
  return new ort.Tensor('int64', data, dims);
}

/** A float tensor in the graph's dtype from float32 values (converted to float16 bits when needed). */
export function floatTensor(dtype: FloatDtype, values: Float32Array, dims: readonly number[]): Tensor {
  return dtype === 'float32' ? new ort.Tensor('float32', values, dims) : new ort.Tensor('float16', toFloat16(values), dims);
}

/** A float tensor from data already in the graph's dtype (KV caches travel this way, never converted). */
export function rawFloatTensor(dtype: FloatDtype, data: FloatData, dims: readonly number[]): Tensor {
  if (dtype === 'float32') {
    if (!(data instanceof Float32Array)) throw new TypeError('float32 tensor needs a Float32Array');
    return new ort.Tensor('float32', data, dims);
  }
  if (!(data instanceof Uint16Array)) throw new TypeError('float16 tensor needs a Uint16Array');
  return new ort.Tensor('float16', data, dims);
}

/** Allocates float data of `length` elements in a graph's dtype. */
export function allocFloat(dtype: FloatDtype, length: number): FloatData {
  return dtype === 'float32' ? new Float32Array(length) : new Uint16Array(length);
}

/** The data of a float output as the graph wrote it (float32 values or float16 bits). */
export function floatData(tensor: Tensor): FloatData {
  const data = tensor.data;
  if (tensor.type === 'float32' && data instanceof Float32Array) return data;
  if (tensor.type === 'float16') {
    if (data instanceof Uint16Array) return data;
    // A runtime with a global Float16Array hands those out; keep the bits so that caches stay byte-exact.
    return new Uint16Array((data as unknown as { buffer: ArrayBuffer; byteOffset: number; length: number }).buffer,
      (data as unknown as { byteOffset: number }).byteOffset, (data as unknown as { length: number }).length);
  }
  throw new InferenceError(`expected a float tensor, found ${tensor.type}`);
}

/** A float output as float32 values (a view when it already is float32, a converted copy for float16). */
export function readFloat32(tensor: Tensor): Float32Array {
  const data = floatData(tensor);
  return data instanceof Float32Array ? data : fromFloat16(data);
}

/** An int64 output as numbers. */
export function readInt64(tensor: Tensor): number[] {
  if (tensor.type !== 'int64') throw new InferenceError(`expected an int64 tensor, found ${tensor.type}`);
  return Array.from(tensor.data as BigInt64Array, (v) => Number(v));
}

export function dimsOf(tensor: Tensor): readonly number[] {
  return tensor.dims;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → IEEE half bits, round to nearest even, with subnormals, infinities and NaN. */
export function toFloat16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    f32[0] = values[i] as number;
    const x = u32[0] as number;
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
      continue;
    }
    const e = exp - 127 + 15;
    if (e >= 0x1f) {
      out[i] = sign | 0x7c00;
      continue;
    }
    if (e <= 0) {
      if (e < -10) {
        out[i] = sign;
        continue;
      }
      mant |= 0x800000;
      const shift = 14 - e;
      let half = mant >>> shift;
      const rest = mant & ((1 << shift) - 1);
      const midpoint = 1 << (shift - 1);
      if (rest > midpoint || (rest === midpoint && (half & 1) === 1)) half++;
      out[i] = sign | half;
      continue;
    }
    let half = (e << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half++;
    out[i] = sign | half; // a carry into the exponent is the correct rounding (up to infinity)
  }
  return out;
}

/** IEEE half bits → float32. */
export function fromFloat16(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i] as number;
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) out[i] = sign * mant * 2 ** -24;
    else if (exp === 0x1f) out[i] = mant === 0 ? sign * Infinity : NaN;
    else out[i] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  return out;
}
