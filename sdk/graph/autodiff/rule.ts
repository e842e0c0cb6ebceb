/** The shape of a gradient rule, and helpers most rules share. */
import { int, Node, Value } from "../ir";
import { Builder } from "../ops";

/**
 * A gradient rule: given the node, the gradient of each of its outputs (null when an output does not reach
 * the loss) and which inputs need a gradient, returns one gradient per input (null where not needed).
 */
export type GradRule = (b: Builder, node: Node, dys: readonly (Value | null)[], needs: readonly boolean[]) => (Value | null)[];

/**
 * Sums a broadcast gradient `dy` back to the shape of `x` (numpy broadcasting in reverse). Axes known statically
 * are reduced directly; where x has a symbolic dim that may be 1 at run time, the axes are found at run time.
 */
export function unbroadcast(b: Builder, dy: Value, x: Value): Value {
  const lead = dy.rank - x.rank;
  const axes: number[] = [];
  for (let i = 0; i < dy.rank; i++) {
    if (i < lead) axes.push(i);
    else if (x.shape[i - lead] === 1 && dy.shape[i] !== 1) axes.push(i);
  }
  let out = dy;
  if (axes.length > 0) {
    const summed = b.reduceSum(dy, axes, true);
    out = lead > 0 ? b.squeeze(summed, axes.slice(0, lead)) : summed;
  }
  const ambiguous = x.shape.some((d, i) => typeof d === "string" && d !== dy.shape[lead + i]);
  return ambiguous ? reduceWhereOne(b, out, x) : out;
}

/** Sums `g` (same rank as x) over every axis where x is 1 at run time and g is not. */
function reduceWhereOne(b: Builder, g: Value, x: Value): Value {
  const one = b.scalar(1, "int64");
  const xIsOne = b.compare("Equal", b.shapeOf(x), one);
  const gIsNotOne = b.not(b.compare("Equal", b.shapeOf(g), one));
  const [both] = b.op("And", [xIsOne, gIsNotOne], [{ dtype: "bool", shape: [x.rank] }]);
  const [found] = b.op("NonZero", [both], [{ dtype: "int64", shape: [1, "axes"] }]);
  const axes = b.reshape(found, [-1]);
  return b.op("ReduceSum", [g, axes], [{ dtype: g.dtype, shape: x.shape }], { keepdims: int(1), noop_with_empty_axes: int(1) })[0];
}

/** The constant data of an initializer input, for rules that need static attributes passed as inputs. */
export function constInts(b: Builder, v: Value | null): number[] | null {
  if (!v) return null;
  const t = b.graph.initializers.get(v);
  if (!t?.data) return null;
  return Array.from(t.data as ArrayLike<number | bigint>, Number);
}

/** The dy of a single-output node, which a rule is only called with when it reaches the loss. */
export function only(dys: readonly (Value | null)[]): Value {
  const dy = dys[0];
  if (!dy) throw new Error("autodiff: missing output gradient");
  return dy;
}
