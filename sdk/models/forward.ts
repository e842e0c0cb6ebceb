/**
 * The forward contract between models and whoever runs them: a forward builder declares its batch inputs and
 * returns the summed loss from named trainable tensors. Training differentiates it (train/step.ts); evaluation
 * runs it as is (compileEval here), so inference and evaluation need nothing from train.
 */
import { Graph, Value } from "../graph/ir";
import { Builder } from "../graph/ops";

/** What a forward builder returns: the summed loss and what it was summed over, plus any extra outputs. */
export interface ForwardOutputs {
  /** Sum of per-example (or per-token) losses in the batch. */
  lossSum: Value;
  /** Number of examples (or predicted tokens) summed in lossSum, as a float32 scalar. */
  count: Value;
  /** Extra outputs for evaluation, e.g. logits. */
  outputs?: Record<string, Value>;
}

/** Declares the batch inputs on `b` and builds the loss from the trainable tensors (float32 Values by name). */
export type ForwardBuilder = (b: Builder, trainable: ReadonlyMap<string, Value>) => ForwardOutputs;

/** One trainable tensor: name and shape (its values live on the host between steps). */
export interface TrainableSpec {
  name: string;
  shape: readonly number[];
}

/** A trainable tensor with its starting values. */
export type InitializedTrainable = TrainableSpec & { init: Float32Array };

/** Graph input and output names of a forward graph (the step graphs add their own). */
export const forwardNames = {
  param: (n: string) => `param.${n}`,
  lossSum: "loss_sum",
  count: "count",
};

/** Declares every trainable tensor as a float32 graph input named `param.<name>`. */
export function declareTrainables(b: Builder, trainable: readonly TrainableSpec[]): Map<string, Value> {
  return new Map(trainable.map((t) => [t.name, b.graph.input(forwardNames.param(t.name), "float32", t.shape)]));
}

/** The evaluation graph: summed loss, count and the forward's extra outputs, no gradients. */
export function compileEval(forward: ForwardBuilder, trainable: readonly TrainableSpec[]): Graph {
  const b = new Builder();
  const out = forward(b, declareTrainables(b, trainable));
  b.graph.output(out.lossSum, forwardNames.lossSum);
  b.graph.output(out.count, forwardNames.count);
  for (const [name, v] of Object.entries(out.outputs ?? {})) b.graph.output(v, name);
  return b.graph;
}
