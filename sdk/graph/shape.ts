/** Shape rules over symbolic dimensions. */
import { Dim, Shape } from "./ir";

/** Numpy-style broadcast of two shapes; symbols must match by name unless the other side is 1. */
export function broadcastShapes(a: Shape, b: Shape, op: string): Dim[] {
  const rank = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    const da = i < rank - a.length ? 1 : a[i - (rank - a.length)];
    const db = i < rank - b.length ? 1 : b[i - (rank - b.length)];
    if (da === db || db === 1) out.push(da);
    else if (da === 1) out.push(db);
    else if (typeof da === "string" && typeof db === "number") out.push(db);
    else if (typeof db === "string" && typeof da === "number") out.push(da);
    else throw new Error(`${op}: shapes [${a.join(", ")}] and [${b.join(", ")}] do not broadcast (axis ${i}: ${da} vs ${db})`);
  }
  return out;
}

/** Normalises a possibly negative axis for a tensor of `rank`. */
export function normAxis(axis: number, rank: number, op: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`${op}: axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** Product of dims, as a number when all are fixed, else a symbolic expression. */
export function dimProduct(dims: readonly Dim[]): Dim {
  let n = 1;
  const syms: string[] = [];
  for (const d of dims) {
    if (typeof d === "number") n *= d;
    else syms.push(d);
  }
  if (syms.length === 0) return n;
  return n === 1 ? syms.join("*") : [String(n), ...syms].join("*");
}

/** True when every dim is a fixed number. */
export function isStatic(shape: Shape): shape is readonly number[] {
  return shape.every((d) => typeof d === "number");
}

/** Shape of ONNX Reshape with 0 (copy) and -1 (infer) entries. */
export function reshapeShape(input: Shape, target: readonly number[], op = "Reshape"): Dim[] {
  const out: Dim[] = target.map((t, i) => {
    if (t === 0) {
      if (i >= input.length) throw new Error(`${op}: 0 at axis ${i} copies a dim the input [${input}] lacks`);
      return input[i];
    }
    return t;
  });
  const inferAt = target.indexOf(-1);
  if (inferAt >= 0) {
    const known = out.filter((_, i) => i !== inferAt);
    out[inferAt] = divideDims(dimProduct(input), dimProduct(known), input, target);
  }
  return out;
}

function divideDims(total: Dim, part: Dim, input: Shape, target: readonly number[]): Dim {
  if (typeof total === "number" && typeof part === "number") {
    if (total % part !== 0) throw new Error(`Reshape: cannot reshape [${input}] to [${target}]`);
    return total / part;
  }
  // Cancel symbolic factors, e.g. "4*batch*seq" / "batch" -> "4*seq".
  const factors = (d: Dim) => (typeof d === "number" ? [String(d)] : d.split("*"));
  const num = factors(total);
  let coef = 1;
  for (const f of factors(part)) {
    const i = num.indexOf(f);
    if (i >= 0) num.splice(i, 1);
    else if (/^\d+$/.test(f)) coef *= Number(f);
    else return `${total}/${part}`;
  }
  let numeric = 1;
  const syms: string[] = [];
  for (const f of num) {
    if (/^\d+$/.test(f)) numeric *= Number(f);
    else syms.push(f);
  }
  if (numeric % coef !== 0) return `${total}/${part}`;
  numeric /= coef;
  if (syms.length === 0) return numeric;
  return numeric === 1 ? syms.join("*") : [String(numeric), ...syms].join("*");
}
