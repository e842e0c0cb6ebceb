/**
 * Reverse-mode autodiff over the graph IR. The walk is here; the gradient of each op kind is one rule in
 * rules/*.ts, and every rule emits plain ONNX ops through the same Builder (no *Grad contrib ops exist in
 * the shipped runtime).
 */
import { isFloat, Node, RecomputeRegion, Value } from "../ir";
import { Builder } from "../ops";
import { quantRules } from "../quant";
import { GradRule } from "./rule";
import { elementwiseRules } from "./rules/elementwise";
import { linalgRules } from "./rules/linalg";
import { reduceRules } from "./rules/reduce";
import { shapeRules } from "./rules/shape";

/** The gradient table: one rule per ONNX op kind. */
export const GRAD_RULES: Readonly<Record<string, GradRule>> = {
  ...elementwiseRules,
  ...reduceRules,
  ...linalgRules,
  ...shapeRules,
  ...quantRules,
};

/**
 * Appends to the builder's graph the gradients of scalar `loss` with respect to each of `wrt` and returns them
 * in order. Only nodes on a path from some `wrt` to `loss` are differentiated.
 */
export function gradients(b: Builder, loss: Value, wrt: readonly Value[]): Value[] {
  if (loss.rank !== 0) throw new Error(`gradients: loss must be a scalar, got ${loss}`);
  const nodes = b.graph.nodes;
  const requires = new Set<Value>(wrt);
  for (const node of nodes) {
    if (node.inputs.some((v) => v && requires.has(v))) {
      for (const out of node.outputs) if (isFloat(out.dtype) && !b.graph.detached.has(out)) requires.add(out);
    }
  }
  const contributes = new Set<Value>([loss]);
  for (let i = loss.producer?.index ?? -1; i >= 0; i--) {
    const node = nodes[i];
    if (node.outputs.some((v) => contributes.has(v))) for (const v of node.inputs) if (v) contributes.add(v);
  }
  const onPath = (v: Value | null): v is Value => !!v && requires.has(v) && contributes.has(v) && isFloat(v.dtype);

  const partials = new Map<Value, Value[]>([[loss, [b.scalarLike(1, loss)]]]);
  const total = (v: Value): Value | null => {
    const parts = partials.get(v);
    if (!parts) return null;
    const sum = parts.reduce((acc, p) => b.add(acc, p));
    partials.set(v, [sum]);
    return sum;
  };

  const recompute = new Recomputation(b);
  const last = loss.producer?.index ?? -1;
  for (let i = last; i >= 0; i--) {
    const node = nodes[i];
    if (!node.outputs.some((v) => partials.has(v))) continue;
    const needs = node.inputs.map(onPath);
    if (!needs.some(Boolean)) continue;
    const dys = node.outputs.map(total);
    const dxs = ruleFor(node)(b, recompute.view(node, dys), dys, needs);
    node.inputs.forEach((input, k) => {
      const dx = dxs[k];
      if (!input || !needs[k] || !dx) return;
      checkGradShape(node, input, dx);
      const list = partials.get(input);
      if (list) list.push(dx);
      else partials.set(input, [dx]);
    });
  }
  return wrt.map((w) => total(w) ?? b.fillLike(w, 0));
}

function ruleFor(node: Node): GradRule {
  const rule = GRAD_RULES[node.op];
  if (!rule) throw new Error(`autodiff: no gradient rule for ${node.op} (node ${node.index}); differentiable ops: ${Object.keys(GRAD_RULES).join(", ")}`);
  return rule;
}

function checkGradShape(node: Node, input: Value, dx: Value): void {
  const ok = dx.rank === input.rank && dx.shape.every((d, i) => d === input.shape[i] || typeof d !== "number" || typeof input.shape[i] !== "number");
  if (!ok) throw new Error(`autodiff: ${node.op} rule gave gradient ${dx} for input ${input}`);
}

/**
 * Gradient checkpointing: the first time the backward walk reaches a region the forward marked (graph.recompute), it
 * appends a copy of the region's nodes fed from the region's input, and rules inside the region read the copies. The
 * forward's own values then die as soon as the forward is done with them. The copy's input waits for a gradient
 * that reaches the region (input + 0 x one element of it), so no executor can run the copy early.
 */
class Recomputation {
  private readonly copies = new Map<Value, Value>();
  private readonly done = new Set<RecomputeRegion>();

  constructor(private readonly b: Builder) {}

  /** The node as its rule should see it: inside a marked region, with the recomputed values. */
  view(node: Node, dys: readonly (Value | null)[]): Node {
    const region = this.b.graph.recompute.find((r) => node.index >= r.from && node.index < r.to);
    if (!region) return node;
    if (!this.done.has(region))
      this.copy(
        region,
        dys.find((d): d is Value => !!d)!,
      );
    const map = (v: Value | null) => (v && this.copies.get(v)) ?? v;
    return { ...node, inputs: node.inputs.map(map), outputs: node.outputs.map((v) => map(v)!) };
  }

  private copy(region: RecomputeRegion, dy: Value): void {
    const b = this.b;
    const first = b.reshape(b.slice(b.reshape(dy, [-1]), [0], [1], [0]), [1]);
    const gate = b.cast(b.mul(first, b.scalarLike(0, first)), region.input.dtype);
    this.copies.set(region.input, b.add(region.input, gate));
    for (const node of b.graph.nodes.slice(region.from, region.to)) {
      const inputs = node.inputs.map((v) => (v && this.copies.get(v)) ?? v);
      const outs = b.graph.addNode(
        node.op,
        inputs,
        node.outputs.map((o) => ({ dtype: o.dtype, shape: o.shape })),
        { ...node.attrs },
        node.domain,
      );
      node.outputs.forEach((o, k) => this.copies.set(o, outs[k]));
    }
    this.done.add(region);
  }
}
