/**
 * Reverse-mode autodiff over the graph IR. The walk is here; the gradient of each op kind is one rule in
 * rules/*.ts, and every rule emits plain ONNX ops through the same Builder (no *Grad contrib ops exist in
 * the shipped runtime).
 */
import { isFloat, Node, Value } from "../ir";
import { Builder } from "../ops";
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
    if (node.inputs.some((v) => v && requires.has(v))) for (const out of node.outputs) if (isFloat(out.dtype)) requires.add(out);
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

  const last = loss.producer?.index ?? -1;
  for (let i = last; i >= 0; i--) {
    const node = nodes[i];
    if (!node.outputs.some((v) => partials.has(v))) continue;
    const needs = node.inputs.map(onPath);
    if (!needs.some(Boolean)) continue;
    const dys = node.outputs.map(total);
    const dxs = ruleFor(node)(b, node, dys, needs);
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
