/** The shape of a gradient rule, and helpers most rules share. */
import { Node, Value } from "../ir";
import { Builder } from "../ops";

/**
 * A gradient rule: given the node, the gradient of each of its outputs (null when an output does not reach
 * the loss) and which inputs need a gradient, returns one gradient per input (null where not needed).
 */
export type GradRule = (b: Builder, node: Node, dys: readonly (Value | null)[], needs: readonly boolean[]) => (Value | null)[];

/** Sums a broadcast gradient `dy` back to the shape of `x` (numpy broadcasting in reverse). */
export function unbroadcast(b: Builder, dy: Value, x: Value): Value {
  const lead = dy.rank - x.rank;
  const axes: number[] = [];
  for (let i = 0; i < dy.rank; i++) {
    if (i < lead) axes.push(i);
    else if (x.shape[i - lead] === 1 && dy.shape[i] !== 1) axes.push(i);
  }
  if (axes.length === 0) return dy;
  const summed = b.reduceSum(dy, axes, true);
  return lead > 0 ? b.squeeze(summed, axes.slice(0, lead)) : summed;
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
