/**
 * The step compiler: turns a forward builder and a set of trainable tensors into ONNX graphs for one training
 * step (forward, loss, gradients, clipping, optimizer update) and for gradient-only accumulation.
 */
import { Graph, Value } from "../graph/ir";
import { Builder } from "../graph/ops";
import { gradients } from "../graph/autodiff";
import { declareTrainables, ForwardBuilder, forwardNames, TrainableSpec } from "../models/forward";
import { emitUpdate, OptimizerOptions, stateSlots } from "./optimizers";

/** Options of the update part of a step. */
export interface UpdateOptions {
  optimizer: OptimizerOptions;
  /** Global-norm clipping threshold; 0 disables clipping. */
  maxGradNorm: number;
  /** Adds a "loss_scale" input multiplying the loss before gradients (fp16 training). */
  lossScaling?: boolean;
}

/** Input and output names shared by the compiler and the runner. */
export const names = {
  ...forwardNames,
  newParam: (n: string) => `new.${n}`,
  state: (slot: string, n: string) => `state.${slot}.${n}`,
  newState: (slot: string, n: string) => `new_state.${slot}.${n}`,
  grad: (n: string) => `grad.${n}`,
  lr: "lr",
  step: "step",
  denom: "denom",
  lossScale: "loss_scale",
  gradNorm: "grad_norm",
  updateNorm: "update_norm",
  /** The gradient step's summed squares of all gradients. */
  gradSq: "grad_sq",
  /** The chunked update's squared update norm (the engine sums the chunks'). */
  updateSq: "update_sq",
  /** The chunked update's factor on the summed gradient: the clip coefficient over the denominator. */
  gradScale: "grad_scale",
  stateCheck: "state_check",
};

function forwardWithGrads(b: Builder, forward: ForwardBuilder, params: Map<string, Value>, lossScaling: boolean) {
  const out = forward(b, params);
  b.graph.output(out.lossSum, names.lossSum);
  b.graph.output(out.count, names.count);
  let target = out.lossSum;
  let scale: Value | null = null;
  if (lossScaling) {
    scale = b.graph.input(names.lossScale, "float32", []);
    target = b.mul(target, b.cast(scale, target.dtype));
  }
  const grads = gradients(b, target, [...params.values()]);
  return { out, grads, scale };
}

/** Most outputs of one Split: WebGPU guarantees 8 storage buffers per shader (lavapipe has 16), one for the input. */
const SPLIT_WIDTH = 7;

/** Splits a flat vector into pieces of `sizes` as a tree of Splits no wider than SPLIT_WIDTH: the same values. */
function splitNarrow(b: Builder, flat: Value, sizes: readonly number[]): Value[] {
  if (sizes.length <= SPLIT_WIDTH) return b.split(flat, 0, sizes);
  const per = Math.ceil(sizes.length / SPLIT_WIDTH);
  const groups = Array.from({ length: Math.ceil(sizes.length / per) }, (_, i) => sizes.slice(i * per, (i + 1) * per));
  const parts = b.split(
    flat,
    0,
    groups.map((g) => g.reduce((a, n) => a + n, 0)),
  );
  return groups.flatMap((g, i) => (g.length === 1 ? [parts[i]] : splitNarrow(b, parts[i], g)));
}

/** Emits clipping and the optimizer update for summed gradients `grads` divided by `denom`. */
function emitApply(b: Builder, trainable: readonly TrainableSpec[], params: Map<string, Value>, grads: Value[], denom: Value, opts: UpdateOptions): void {
  // The update is element-wise, so it runs once over all trainable tensors laid end to end: a handful of ops instead
  // of some thirty per tensor, which keeps the graph (and onnxruntime's session setup, which grows faster than the
  // node count) small. The engine still feeds and receives each tensor under its own name.
  const sizes = trainable.map((t) => t.shape.reduce((a, d) => a * d, 1));
  const flat = (values: readonly Value[]) =>
    values.length === 1
      ? b.reshape(values[0], [-1])
      : b.concat(
          values.map((v) => b.reshape(v, [-1])),
          0,
        );
  const unflat = (value: Value, output: (name: string) => string) => {
    const parts = trainable.length === 1 ? [value] : splitNarrow(b, value, sizes);
    trainable.forEach((t, i) => b.graph.output(b.reshape(parts[i], [...t.shape]), output(t.name)));
  };
  let g = b.div(flat(grads.map((gr) => b.cast(gr, "float32"))), denom);
  const norm = b.sqrt(b.sumAll(b.mul(g, g)));
  b.graph.output(norm, names.gradNorm);
  if (opts.maxGradNorm > 0) {
    const [coef] = b.op("Min", [b.scalar(1), b.div(b.scalar(opts.maxGradNorm), b.add(norm, b.scalar(1e-6)))], [{ dtype: "float32", shape: [] }]);
    g = b.mul(g, coef);
  }
  const slots = stateSlots(opts.optimizer);
  const p = flat(trainable.map((t) => params.get(t.name)!));
  const state = slots.map((slot) => flat(trainable.map((t) => b.graph.input(names.state(slot, t.name), "float32", t.shape))));
  const next = emitFlatUpdate(b, opts, p, g, state);
  unflat(next.param, names.newParam);
  next.state.forEach((value, k) => unflat(value, (name) => names.newState(slots[k], name)));
  b.graph.output(b.sqrt(next.deltaSq), names.updateNorm);
}

/**
 * The optimizer update of the flat tensor `p` with (clipped, averaged) gradient `g`, plus what tells whether it may be
 * applied: `check` (outputs as state_check) and the update's squared norm.
 */
function emitFlatUpdate(b: Builder, opts: UpdateOptions, p: Value, g: Value, state: Value[]): { param: Value; state: Value[]; deltaSq: Value } {
  const lr = b.graph.input(names.lr, "float32", []);
  const step = b.graph.input(names.step, "float32", []);
  const next = emitUpdate(b, opts.optimizer, { param: p, grad: g, state }, lr, step);
  // 0 when every new state value is finite, NaN otherwise (x·0 is NaN exactly for x = ±inf or NaN; a norm could overflow).
  if (next.state.length > 0)
    b.graph.output(
      next.state.map((s) => b.sumAll(b.mul(s, b.scalar(0)))).reduce((x, y) => b.add(x, y)),
      names.stateCheck,
    );
  const delta = b.sub(next.param, p);
  return { ...next, deltaSq: b.sumAll(b.mul(delta, delta)) };
}

/** The fused training step: forward, loss, gradients, clipping and update in one graph. */
export function compileTrainStep(forward: ForwardBuilder, trainable: readonly TrainableSpec[], opts: UpdateOptions): Graph {
  const b = new Builder();
  const params = declareTrainables(b, trainable);
  const { out, grads, scale } = forwardWithGrads(b, forward, params, !!opts.lossScaling);
  let denom = b.cast(out.count, "float32");
  denom = b.add(denom, b.cast(b.compare("Equal", denom, b.scalar(0)), "float32")); // an all-padding batch divides by 1
  if (scale) denom = b.mul(denom, scale);
  emitApply(b, trainable, params, grads, denom, opts);
  return b.graph;
}

/**
 * Gradients only (of the summed loss), for gradient accumulation across micro-batches and for updates in place; also
 * their summed squares (grad_sq).
 */
export function compileGradStep(forward: ForwardBuilder, trainable: readonly TrainableSpec[], lossScaling = false): Graph {
  const b = new Builder();
  const params = declareTrainables(b, trainable);
  const { grads } = forwardWithGrads(b, forward, params, lossScaling);
  const outs = grads.map((g) => b.cast(g, "float32"));
  trainable.forEach((t, i) => b.graph.output(outs[i], names.grad(t.name)));
  b.graph.output(squaresInBackwardOrder(b, outs), names.gradSq);
  return b.graph;
}

/**
 * The summed squares of `grads`, added in the order the backward pass makes them. The chain also orders
 * onnxruntime's work: it runs nodes depth first from the graph's leaves, highest index first, so with each gradient
 * a leaf of its own the first layer's would come first, every layer's backward would run before any LoRA gradient
 * of the others, and each layer's recomputed activations would stay alive until the end (about 80 MB a layer at 7B).
 */
function squaresInBackwardOrder(b: Builder, grads: readonly Value[]): Value {
  const order = [...grads].sort((x, y) => (x.producer?.index ?? -1) - (y.producer?.index ?? -1));
  const squares = order.map((g) => b.sumAll(b.mul(g, g)));
  return squares.reduce((sum, sq) => b.add(sq, sum));
}

/** The update alone: takes summed gradients and their denominator (total count times loss scale). */
export function compileApplyStep(trainable: readonly TrainableSpec[], opts: UpdateOptions): Graph {
  const b = new Builder();
  const params = declareTrainables(b, trainable);
  const grads = trainable.map((t) => b.graph.input(names.grad(t.name), "float32", t.shape));
  const denom = b.graph.input(names.denom, "float32", []);
  emitApply(b, trainable, params, grads, denom, opts);
  return b.graph;
}

/** The name compileChunkUpdate's flat slices go by (after the role: param.flat, grad.flat, ...). */
export const FLAT = "flat";

/**
 * The update of one flat slice of the trainable tensors (all of them laid end to end), for updating large ones in
 * place chunk by chunk: inputs param.flat, grad.flat, state.<slot>.flat ["values"], grad_scale, lr, step; the
 * gradient is grad · grad_scale (the engine folds clipping and the mean into that factor from the whole norm).
 */
export function compileChunkUpdate(opts: UpdateOptions): Graph {
  const b = new Builder();
  const flat = (name: string) => b.graph.input(name, "float32", ["values"]);
  const p = flat(names.param(FLAT));
  const g = b.mul(flat(names.grad(FLAT)), b.graph.input(names.gradScale, "float32", []));
  const slots = stateSlots(opts.optimizer);
  const next = emitFlatUpdate(
    b,
    opts,
    p,
    g,
    slots.map((slot) => flat(names.state(slot, FLAT))),
  );
  b.graph.output(next.param, names.newParam(FLAT));
  next.state.forEach((value, k) => b.graph.output(value, names.newState(slots[k], FLAT)));
  b.graph.output(next.deltaSq, names.updateSq);
  return b.graph;
}
