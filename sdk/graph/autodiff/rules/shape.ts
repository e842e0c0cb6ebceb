/** Gradients of shape and indexing ops: they move dy back to where each input element came from. */
import { Dim, Node, Value } from "../../ir";
import { Builder } from "../../ops";
import { constInts, GradRule, only, unbroadcast } from "../rule";

function axisAttr(node: Node, fallback = 0): number {
  const a = node.attrs.axis;
  const axis = a?.kind === "int" ? a.value : fallback;
  return axis < 0 ? axis + node.inputs[0]!.rank : axis;
}

function constAxes(b: Builder, node: Node, index: number): number[] {
  const axes = constInts(b, node.inputs[index]);
  if (!axes) throw new Error(`autodiff: ${node.op} needs constant axes`);
  return axes;
}

/** Size of `x` along `axis` as a 1-element int64 tensor. */
function dimOf(b: Builder, x: Value, axis: number): Value {
  const d = x.shape[axis];
  return typeof d === "number" ? b.int64s([d]) : b.gather(b.shapeOf(x), b.int64s([axis]), 0);
}

/** Pads dy back to x's shape for a step-1 slice (pads computed at run time, so symbolic dims work). */
function sliceGrad(b: Builder, node: Node, dy: Value): Value {
  const x = node.inputs[0]!;
  const starts = constInts(b, node.inputs[1]);
  const ends = constInts(b, node.inputs[2]);
  const axes = constInts(b, node.inputs[3]) ?? starts?.map((_, i) => i);
  const steps = constInts(b, node.inputs[4]);
  if (!starts || !ends || !axes) throw new Error("autodiff: Slice needs constant starts, ends and axes");
  if (steps && steps.some((s) => s !== 1)) throw new Error("autodiff: Slice with steps other than 1 has no rule");
  const before: Value[] = [];
  const after: Value[] = [];
  const zero = b.int64s([0]);
  for (let axis = 0; axis < x.rank; axis++) {
    const k = axes.findIndex((a) => (a < 0 ? a + x.rank : a) === axis);
    if (k < 0) {
      before.push(zero);
      after.push(zero);
      continue;
    }
    const dim = dimOf(b, x, axis);
    const clamp = (v: number) => {
      const raw = v < 0 ? b.add(b.int64s([v]), dim) : b.int64s([Math.min(v, 2 ** 53)]);
      return b.op("Min", [b.op("Max", [raw, zero], [{ dtype: "int64", shape: [1] }])[0], dim], [{ dtype: "int64", shape: [1] }])[0];
    };
    const s = clamp(starts[k]);
    const e = clamp(ends[k]);
    before.push(s);
    after.push(b.sub(dim, b.op("Max", [e, s], [{ dtype: "int64", shape: [1] }])[0]));
  }
  const pads = b.concat([...before, ...after], 0);
  return b.op("Pad", [dy, pads], [{ dtype: dy.dtype, shape: x.shape }])[0];
}

export const shapeRules: Record<string, GradRule> = {
  Reshape: (b, node, dys) => {
    const x = node.inputs[0]!;
    return [b.reshapeTo(only(dys), b.shapeOf(x), x.shape), null];
  },
  Transpose: (b, node, dys) => {
    const perm = node.attrs.perm;
    if (perm?.kind !== "ints") throw new Error("autodiff: Transpose needs a perm attribute");
    const inverse: number[] = [];
    perm.value.forEach((p, i) => (inverse[p] = i));
    return [b.transpose(only(dys), inverse)];
  },
  Squeeze: (b, node, dys) => [b.unsqueeze(only(dys), constAxes(b, node, 1)), null],
  Unsqueeze: (b, node, dys) => [b.squeeze(only(dys), constAxes(b, node, 1)), null],
  Slice: (b, node, dys) => [sliceGrad(b, node, only(dys)), null, null, null, null],
  Concat: (b, node, dys, needs) => {
    const axis = axisAttr(node);
    const inputs = node.inputs as Value[];
    const dims: Dim[] = inputs.map((x) => x.shape[axis]);
    const dy = only(dys);
    if (dims.every((d) => typeof d === "number")) {
      const parts = b.split(dy, axis, dims as number[]);
      return parts.map((p, i) => (needs[i] ? p : null));
    }
    const sizes = b.concat(
      inputs.map((x) => dimOf(b, x, axis)),
      0,
    );
    const parts = b.op(
      "Split",
      [dy, sizes],
      inputs.map((x) => ({ dtype: dy.dtype, shape: x.shape })),
      { axis: { kind: "int", value: axis } },
    );
    return parts.map((p, i) => (needs[i] ? p : null));
  },
  Split: (b, node, dys) => {
    const axis = axisAttr(node);
    const parts = node.outputs.map((out, i) => dys[i] ?? b.fillLike(out, 0));
    return [b.concat(parts, axis), null];
  },
  Expand: (b, node, dys) => [unbroadcast(b, only(dys), node.inputs[0]!), null],
  Gather: (b, node, dys) => {
    // Rows picked by `indices` receive dy; repeated indices accumulate (ScatterND with add).
    const [data, indices] = node.inputs as Value[];
    if (axisAttr(node) !== 0) throw new Error("autodiff: Gather gradient is implemented for axis 0 only");
    const rowShape = data.shape.slice(1);
    const flatIdx = b.reshape(indices, [-1, 1]);
    const flatDy = b.reshape(only(dys), [-1, ...rowShape.map((d) => (typeof d === "number" ? d : 0))]);
    const zeros = b.fillLike(data, 0);
    return [b.scatterNDAdd(zeros, flatIdx, flatDy), null];
  },
  GatherElements: (b, node, dys) => {
    const [data, indices] = node.inputs as Value[];
    return [b.scatterAdd(b.fillLike(data, 0), indices, only(dys), axisAttr(node)), null];
  },
};
