/** onnxruntime-node sessions: one place that creates them, feeds them and reads their outputs. */
import * as ort from "onnxruntime-node";
import type { DType, TensorArray } from "../graph/ir";
import { executionProviders, installHint, Provider } from "./device";

/** A host tensor crossing into or out of the runtime. */
export interface HostTensor {
  dtype: DType;
  shape: readonly number[];
  data: TensorArray;
}

const ORT_TYPE: Record<DType, ort.Tensor.Type> = {
  float32: "float32",
  float16: "float16",
  float64: "float64",
  int64: "int64",
  int32: "int32",
  bool: "bool",
  uint8: "uint8",
  int8: "int8",
};

/** Wraps a host tensor for onnxruntime without copying its data. */
export function toOrt(t: HostTensor): ort.Tensor {
  return new ort.Tensor(ORT_TYPE[t.dtype], t.data as never, t.shape as number[]);
}

/**
 * A value the runtime produced and keeps where it put it: host memory the caller gave it (a preallocated output) or
 * the GPU provider's memory. It goes back in as an input without a copy through JavaScript.
 */
export class RuntimeTensor {
  /** @internal */
  constructor(readonly inner: ort.Tensor) {}

  get shape(): readonly number[] {
    return this.inner.dims;
  }

  /** Where the data lives: "cpu" (host) or "gpu-buffer" (GPU provider memory). */
  get location(): string {
    return this.inner.location;
  }

  /** The data as a host tensor (a download from GPU memory; host data as it is, not copied). */
  async toHost(): Promise<HostTensor> {
    const data = this.inner.location === "cpu" ? this.inner.data : await this.inner.getData();
    return fromOrt(new ort.Tensor(this.inner.type, data as never, this.inner.dims as number[]));
  }

  /** Frees GPU memory now (host data is left to the garbage collector). */
  dispose(): void {
    if (this.inner.location !== "cpu") this.inner.dispose();
  }
}

/** An input of `Session.runKeeping`: a host tensor, or a value the runtime kept from an earlier run. */
export type RunInput = HostTensor | RuntimeTensor;

/** Reads an onnxruntime output back into a host tensor. */
export function fromOrt(t: ort.Tensor): HostTensor {
  const dtype = (Object.keys(ORT_TYPE) as DType[]).find((k) => ORT_TYPE[k] === t.type);
  if (!dtype) throw new Error(`unsupported output type ${t.type}`);
  return { dtype, shape: t.dims.slice(), data: t.data as TensorArray };
}

/** Options for `createSession`. */
export interface SessionOptions {
  /** A concrete provider; "auto" is resolved by `sessionForGraph` (runtime/graph-session.ts). */
  device?: Provider;
  /** Threads for one op (default: onnxruntime's choice, all cores). */
  threads?: number;
  /** Turn off graph optimisation (for debugging numerics). */
  optimize?: boolean;
  /** Use constant weights in place instead of keeping a repacked copy per session (for memory-mapped weights). */
  disablePrepacking?: boolean;
  /**
   * Keep onnxruntime's CPU memory arena (default true). Without it, activations go back to the system after each
   * run instead of staying reserved at their peak: what a big model's sessions want.
   */
  memoryArena?: boolean;
  /** Outputs a GPU provider keeps in its own memory (read with `runKeeping`); host memory on the CPU provider. */
  keepOnDevice?: readonly string[];
}

/** A compiled graph ready to run on one provider. */
export class Session {
  private constructor(
    private readonly inner: ort.InferenceSession,
    /** The provider this session was created for. */
    readonly provider: Provider,
  ) {}

  /** Creates a session for an ONNX model (bytes or a path whose external data sits beside it). */
  static async create(model: Uint8Array | string, options: SessionOptions = {}): Promise<Session> {
    const provider = options.device ?? "cpu";
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      executionProviders: executionProviders(provider),
      graphOptimizationLevel: options.optimize === false ? "disabled" : "all",
      logSeverityLevel: 3,
    };
    if (options.threads) sessionOptions.intraOpNumThreads = options.threads;
    if (options.disablePrepacking) sessionOptions.extra = { session: { disable_prepacking: "1" } };
    if (options.memoryArena === false) sessionOptions.enableCpuMemArena = false;
    if (options.keepOnDevice?.length && provider !== "cpu") {
      sessionOptions.preferredOutputLocation = Object.fromEntries(options.keepOnDevice.map((name) => [name, "gpu-buffer" as const]));
    }
    try {
      const inner =
        typeof model === "string" ? await ort.InferenceSession.create(model, sessionOptions) : await ort.InferenceSession.create(model, sessionOptions);
      return new Session(inner, provider);
    } catch (err) {
      throw providerError(provider, err);
    }
  }

  get inputNames(): readonly string[] {
    return this.inner.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.inner.outputNames;
  }

  /** Runs the graph; `fetch` limits which outputs are returned. */
  async run(feeds: Record<string, HostTensor>, fetch?: readonly string[]): Promise<Record<string, HostTensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = toOrt(t);
    const results = fetch ? await this.inner.run(ortFeeds, fetch as string[]) : await this.inner.run(ortFeeds);
    const out: Record<string, HostTensor> = {};
    for (const [name, t] of Object.entries(results)) out[name] = fromOrt(t as ort.Tensor);
    return out;
  }

  /**
   * Runs the graph and keeps the outputs named in `keep` where the runtime writes them: into the given preallocated
   * host tensor (CPU provider), or, for null, in the provider's memory (GPU providers, `keepOnDevice`). Other outputs
   * come back as host tensors.
   */
  async runKeeping(
    feeds: Record<string, RunInput>,
    keep: Record<string, HostTensor | null>,
  ): Promise<{ host: Record<string, HostTensor>; kept: Record<string, RuntimeTensor> }> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = t instanceof RuntimeTensor ? t.inner : toOrt(t);
    const fetches: Record<string, ort.Tensor | null> = {};
    for (const name of this.outputNames) fetches[name] = null;
    for (const [name, t] of Object.entries(keep)) fetches[name] = t ? toOrt(t) : null;
    const results = (await this.inner.run(ortFeeds, fetches)) as Record<string, ort.Tensor>;
    const host: Record<string, HostTensor> = {};
    const kept: Record<string, RuntimeTensor> = {};
    for (const [name, t] of Object.entries(results)) {
      if (name in keep) kept[name] = new RuntimeTensor(keep[name] ? fetches[name]! : t);
      else host[name] = fromOrt(t);
    }
    return { host, kept };
  }

  /** Frees the runtime's memory for this session. */
  async release(): Promise<void> {
    await this.inner.release();
  }
}

function providerError(provider: Provider, err: unknown): Error {
  const msg = err instanceof Error ? err.message : String(err);
  if (provider === "cpu") return err instanceof Error ? err : new Error(msg);
  return new Error(`the ${provider} execution provider is not available: ${msg.split("\n")[0]}\n  to fix: ${installHint(provider)}`);
}
