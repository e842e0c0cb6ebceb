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
  const lr = b.graph.input(names.lr, "float32", []);
  const step = b.graph.input(names.step, "float32", []);
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
  const next = emitUpdate(b, opts.optimizer, { param: p, grad: g, state }, lr, step);
  unflat(next.param, names.newParam);
  next.state.forEach((value, k) => unflat(value, (name) => names.newState(slots[k], name)));
  // 0 when every new state value is finite, NaN otherwise (x·0 is NaN exactly for x = ±inf or NaN; a norm could overflow).
  if (next.state.length > 0)
    b.graph.output(
      next.state.map((s) => b.sumAll(b.mul(s, b.scalar(0)))).reduce((x, y) => b.add(x, y)),
      names.stateCheck,
    );
  const delta = b.sub(next.param, p);
  b.graph.output(b.sqrt(b.sumAll(b.mul(delta, delta))), names.updateNorm);
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

/** Gradients only (of the summed loss), for gradient accumulation across micro-batches. */
export function compileGradStep(forward: ForwardBuilder, trainable: readonly TrainableSpec[], lossScaling = false): Graph {
  const b = new Builder();
  const params = declareTrainables(b, trainable);
  const { grads } = forwardWithGrads(b, forward, params, lossScaling);
  trainable.forEach((t, i) => b.graph.output(b.cast(grads[i], "float32"), names.grad(t.name)));
  return b.graph;
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
