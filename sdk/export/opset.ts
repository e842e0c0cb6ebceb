/**
 * Rewrites a tunelab graph (built against opset 18) for an older default-domain opset, where the ops it uses take
 * another form: before opset 18, ReduceMean & co. take `axes` as an attribute rather than an input.
 */
import { ints, type Graph, type Node, type Value } from "../graph/ir";

/** The oldest opset tunelab graphs can be written for (Squeeze, Unsqueeze and ReduceSum take axes as inputs from 13). */
export const MIN_EXPORT_OPSET = 13;

/** Reductions whose `axes` became an input in opset 18 (ReduceSum already did in 13). */
const AXES_INPUT_FROM_18 = new Set([
  "ReduceMean",
  "ReduceMax",
  "ReduceMin",
  "ReduceProd",
  "ReduceL1",
  "ReduceL2",
  "ReduceLogSum",
  "ReduceLogSumExp",
  "ReduceSumSquare",
]);

/** Default-domain ops introduced after opset 13, with the version that introduced them. */
const INTRODUCED_AFTER_13: Readonly<Record<string, number>> = {
  Trilu: 14,
  HardSwish: 14,
  Bernoulli: 15,
  CastLike: 15,
  Optional: 15,
  GridSample: 16,
  LayerNormalization: 17,
  DFT: 17,
  SequenceMap: 17,
  BitwiseAnd: 18,
  BitwiseOr: 18,
  BitwiseXor: 18,
  BitwiseNot: 18,
  CenterCropPad: 18,
  Col2Im: 18,
  GroupNormalization: 18,
  Mish: 18,
};

/**
 * Rewrites `graph` in place so it is valid at default-domain `opset` (13..18): constant `axes` inputs of reductions
 * become attributes; an op that does not exist there, or an `axes` that is not a constant, is an error naming it.
 */
export function lowerToOpset(graph: Graph, opset: number): void {
  if (!Number.isInteger(opset) || opset < MIN_EXPORT_OPSET || opset > 18) {
    throw new Error(`opset must be an integer from ${MIN_EXPORT_OPSET} to 18, got ${opset}`);
  }
  const replaced: Value[] = [];
  graph.nodes.forEach((node, i) => {
    if (node.domain) return;
    const since = INTRODUCED_AFTER_13[node.op];
    if (since !== undefined && since > opset)
      throw new Error(`opset ${opset}: the graph uses ${node.op}, which ONNX introduced in opset ${since}; use --opset ${since} or higher`);
    if (node.op === "Split" && opset < 18 && node.attrs.num_outputs) {
      throw new Error(`opset ${opset}: Split with num_outputs needs opset 18`);
    }
    if (opset >= 18 || !AXES_INPUT_FROM_18.has(node.op) || node.inputs.length < 2) return;
    const axesValue = node.inputs[1];
    if (!axesValue) return;
    const t = graph.initializers.get(axesValue);
    if (!t || !(t.data instanceof BigInt64Array))
      throw new Error(`opset ${opset}: ${node.op} "${node.outputs[0].name}" has non-constant axes; it needs opset 18`);
    const lowered: Node = { ...node, inputs: [node.inputs[0]], attrs: { ...node.attrs, axes: ints(Array.from(t.data, Number)) } };
    graph.nodes[i] = lowered;
    replaced.push(axesValue);
  });
  // Drop axes constants nothing reads any more.
  const used = new Set<Value>();
  for (const n of graph.nodes) for (const v of n.inputs) if (v) used.add(v);
  for (const o of graph.outputs) used.add(o.value);
  for (const v of replaced) if (!used.has(v)) graph.initializers.delete(v);
}
