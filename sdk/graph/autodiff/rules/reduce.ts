/** Gradients of reductions: the output gradient is broadcast back over the reduced axes. */
import { int, Node, Value } from "../../ir";
import { Builder } from "../../ops";
import { constInts, GradRule, only } from "../rule";

/** Reduced axes (normalised) and whether the node kept them. */
function reducedAxes(b: Builder, node: Node): { axes: number[]; keepdims: boolean } {
  const x = node.inputs[0]!;
  const given = constInts(b, node.inputs[1]);
  if (!given) throw new Error(`autodiff: ${node.op} needs constant axes`);
  const axes = given.map((a) => (a < 0 ? a + x.rank : a));
  const keep = node.attrs.keepdims;
  return { axes, keepdims: !(keep?.kind === "int" && keep.value === 0) };
}

/** dy with the reduced axes restored as size 1, then expanded to x's shape. */
function spread(b: Builder, node: Node, dy: Value): Value {
  const x = node.inputs[0]!;
  const { axes, keepdims } = reducedAxes(b, node);
  const kept = keepdims ? dy : b.unsqueeze(dy, axes);
  return b.expand(kept, b.shapeOf(x), x.shape);
}

/** Number of elements folded into each output, as a scalar of x's dtype (run-time when dims are symbolic). */
function reducedCount(b: Builder, node: Node): Value {
  const x = node.inputs[0]!;
  const { axes } = reducedAxes(b, node);
  const dims = axes.map((a) => x.shape[a]);
  if (dims.every((d) => typeof d === "number"))
    return b.scalarLike(
      (dims as number[]).reduce((p, d) => p * d, 1),
      x,
    );
  const picked = b.gather(b.shapeOf(x), b.int64s(axes), 0);
  const [prod] = b.op("ReduceProd", [picked], [{ dtype: "int64", shape: [] }], { keepdims: int(0) });
  return b.cast(prod, x.dtype);
}

export const reduceRules: Record<string, GradRule> = {
  ReduceSum: (b, node, dys) => [spread(b, node, only(dys)), null],
  ReduceMean: (b, node, dys) => [b.div(spread(b, node, only(dys)), reducedCount(b, node)), null],
  ReduceMax: (b, node, dys) => {
    // Ties share the gradient equally, as PyTorch's amax does.
    const x = node.inputs[0]!;
    const { axes, keepdims } = reducedAxes(b, node);
    const y = keepdims ? node.outputs[0] : b.unsqueeze(node.outputs[0], axes);
    const hit = b.cast(b.compare("Equal", x, y), x.dtype);
    const ties = b.reduceSum(hit, axes, true);
    return [b.div(b.mul(hit, spread(b, node, only(dys))), ties), null];
  },
};
