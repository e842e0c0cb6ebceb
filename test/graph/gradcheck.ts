/**
 * Finite-difference gradient checker for the autodiff rules (a helper, not a test file).
 *
 * For an output y = f(x1, ..., xn) built by the caller, the checker forms loss = sum(y * R) with a fixed seeded
 * random R, appends `gradients(loss, inputs)`, runs the graph on the CPU provider in float64 and compares every
 * element of every analytic gradient with the central difference (loss(x + h) - loss(x - h)) / 2h. One session
 * serves the analytic run and every perturbed run; perturbed runs fetch only the loss.
 */
import { Builder, Dim, DType, gradients, Shape, TensorArray, toOnnx, Value } from "../../sdk/graph";
import { toArray } from "../../sdk/graph/ops";
import { HostTensor, Session } from "../../sdk/runtime/session";
import { Rng } from "../../sdk/util/random";

/** How one input of the checked function is declared, filled and treated. */
export interface InputSpec {
  /** Name of the graph input (default `x0`, `x1`, ...). */
  name?: string;
  /** Concrete shape fed at run time. */
  shape: readonly number[];
  /** Shape declared in the graph when it differs from `shape` by symbols, e.g. ["n", 4] for a run shape [3, 4]. */
  declared?: Shape;
  /** Element type (default float64). Only float64 inputs are differentiated. */
  dtype?: DType;
  /** Fixed data, or a generator called once per element (default: standard normal from the check's Rng). */
  data?: readonly number[] | TensorArray | ((rng: Rng, index: number) => number);
  /** Whether to take and check the gradient of this input (default: true for float64 inputs). */
  wrt?: boolean;
}

/** Options of one gradient check. */
export interface GradCheckOptions {
  /** Name of the op or construction under test, used in failure messages. */
  op: string;
  /** The inputs, in the order `build` receives them. */
  inputs: readonly InputSpec[];
  /** Builds the output from the input Values (any float dtype; float32/float16 outputs are cast to float64). */
  build: (b: Builder, inputs: Value[]) => Value;
  /** Seed of the input data and of R (default 1). */
  seed?: number;
  /** Finite-difference step (default 1e-6). */
  h?: number;
  /** Absolute tolerance (default 1e-6). */
  atol?: number;
  /** Relative tolerance, times |numeric| (default 1e-5). */
  rtol?: number;
  /** Run shape of the output when it cannot be derived from the inputs' symbols. */
  outputShape?: readonly number[];
}

/** What a passing check measured, for further assertions by the caller. */
export interface GradCheckResult {
  /** Forward loss sum(y * R) at the unperturbed inputs. */
  loss: number;
  /** Forward output y at the unperturbed inputs (as float64). */
  output: HostTensor;
  /** Analytic gradient of each input (null for inputs not differentiated), in input order. */
  grads: (Float64Array | null)[];
  /** Input data actually fed, in input order. */
  feeds: HostTensor[];
  /** Largest |analytic - numeric| over all checked elements. */
  maxAbsError: number;
  /** Number of graph nodes the gradients() call appended. */
  gradNodes: number;
  /** Number of session runs the check made. */
  runs: number;
}

/** Numbers in (-hi, -lo] ∪ [lo, hi): keeps inputs of Relu/Abs/Sign-like ops away from their kink at 0. */
export function awayFromZero(lo = 0.2, hi = 2): (rng: Rng) => number {
  return (rng) => (rng.next() < 0.5 ? -1 : 1) * (lo + (hi - lo) * rng.next());
}

/** Uniform numbers in [lo, hi) (e.g. positive values for Log, Sqrt and Pow bases). */
export function uniform(lo: number, hi: number): (rng: Rng) => number {
  return (rng) => lo + (hi - lo) * rng.next();
}

/** Product of a run shape. */
export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Multi-dimensional index of flat element `i` of `shape`, for failure messages. */
export function unravel(i: number, shape: readonly number[]): number[] {
  const idx: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    idx.unshift(i % shape[d]);
    i = Math.floor(i / shape[d]);
  }
  return idx;
}

/** Builds the check graph, runs it and throws an Error naming op, input, element and both values on a mismatch. */
export async function gradCheck(options: GradCheckOptions): Promise<GradCheckResult> {
  const { op, inputs: specs } = options;
  const h = options.h ?? 1e-6;
  const atol = options.atol ?? 1e-6;
  const rtol = options.rtol ?? 1e-5;
  const rng = new Rng(options.seed ?? 1);

  const b = new Builder();
  const names = specs.map((s, i) => s.name ?? `x${i}`);
  const values = specs.map((s, i) => b.graph.input(names[i], s.dtype ?? "float64", s.declared ?? s.shape));
  const feeds: HostTensor[] = specs.map((s, i) => ({ dtype: s.dtype ?? "float64", shape: s.shape, data: fill(s, rng.fork(i + 1), names[i]) }));
  const wrt = specs.map((s) => (s.dtype ?? "float64") === "float64" && s.wrt !== false);

  let y = options.build(b, values);
  if (y.dtype !== "float64") y = b.cast(y, "float64");
  const outShape = options.outputShape ?? resolveShape(y.shape, specs, op);
  const r = b.graph.input("gc_r", "float64", y.shape);
  const rData = Float64Array.from({ length: numel(outShape) }, () => rng.normal());
  const loss = b.sumAll(b.mul(y, r));
  b.graph.output(loss, "gc_loss");
  b.graph.output(y, "gc_out");

  const targets = values.filter((_, i) => wrt[i]);
  const before = b.graph.nodes.length;
  const gradValues = gradients(b, loss, targets);
  const gradNodes = b.graph.nodes.length - before;
  gradValues.forEach((g, k) => b.graph.output(g, `gc_grad_${k}`));

  // One thread: these graphs are tiny, and a thread pool's hand-offs cost more than the ops (about 2x wall time).
  const session = await Session.create(toOnnx(b.graph), { device: "cpu", threads: 1 });
  let runs = 0;
  const feedMap = (): Record<string, HostTensor> => {
    const m: Record<string, HostTensor> = { gc_r: { dtype: "float64", shape: outShape, data: rData } };
    feeds.forEach((f, i) => (m[names[i]] = f));
    return m;
  };
  try {
    const full = await session.run(feedMap());
    runs++;
    const output = full.gc_out;
    if (!sameShape(output.shape, outShape)) throw new Error(`${op}: output has run shape [${output.shape}], expected [${outShape}]`);
    const grads: (Float64Array | null)[] = [];
    let k = 0;
    for (let i = 0; i < specs.length; i++) {
      if (!wrt[i]) {
        grads.push(null);
        continue;
      }
      const g = full[`gc_grad_${k++}`];
      if (!sameShape(g.shape, specs[i].shape)) {
        throw new Error(`${op}: gradient of ${names[i]} has shape [${g.shape}], input has [${specs[i].shape}]`);
      }
      grads.push(g.data as Float64Array);
    }

    const lossAt = async (): Promise<number> => {
      runs++;
      return Number((await session.run(feedMap(), ["gc_loss"])).gc_loss.data[0]);
    };
    let maxAbsError = 0;
    for (let i = 0; i < specs.length; i++) {
      const g = grads[i];
      if (!g) continue;
      const data = feeds[i].data as Float64Array;
      for (let e = 0; e < data.length; e++) {
        const x = data[e];
        data[e] = x + h;
        const up = await lossAt();
        data[e] = x - h;
        const down = await lossAt();
        data[e] = x;
        const numeric = (up - down) / (2 * h);
        const analytic = g[e];
        const err = Math.abs(analytic - numeric);
        if (!(err <= atol + rtol * Math.abs(numeric))) {
          throw new Error(
            `${op}: gradient of input ${names[i]} at element ${e} [${unravel(e, specs[i].shape)}] of [${specs[i].shape}]: ` +
              `analytic ${analytic}, numeric ${numeric} (|diff| ${err.toExponential(3)} > ${atol} + ${rtol}*|numeric|)`,
          );
        }
        maxAbsError = Math.max(maxAbsError, err);
      }
    }
    return { loss: Number(full.gc_loss.data[0]), output, grads, feeds, maxAbsError, gradNodes, runs };
  } finally {
    await session.release();
  }
}

function fill(spec: InputSpec, rng: Rng, name: string): TensorArray {
  const n = numel(spec.shape);
  const dtype = spec.dtype ?? "float64";
  const d = spec.data;
  const list = typeof d === "function" ? Array.from({ length: n }, (_, i) => d(rng, i)) : (d ?? Array.from({ length: n }, () => rng.normal()));
  if (list.length !== n) throw new Error(`gradCheck: input ${name} has ${list.length} values, shape [${spec.shape}] needs ${n}`);
  // Copy so perturbing never touches the caller's array.
  return toArray(Array.from(list as ArrayLike<number | bigint>, Number), dtype);
}

/** Run shape of a declared shape whose symbols are plain names bound by the inputs' declared vs run shapes. */
function resolveShape(shape: Shape, specs: readonly InputSpec[], op: string): number[] {
  const bound = new Map<string, number>();
  for (const s of specs) (s.declared ?? []).forEach((d, i) => typeof d === "string" && bound.set(d, s.shape[i]));
  return shape.map((d: Dim) => {
    if (typeof d === "number") return d;
    const v = bound.get(d);
    if (v === undefined) throw new Error(`${op}: output dim "${d}" is not bound by an input; pass outputShape`);
    return v;
  });
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
