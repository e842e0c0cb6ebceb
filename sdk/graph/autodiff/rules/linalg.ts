/** Gradients of MatMul, Gemm, Softmax, LogSoftmax and the fused softmax cross-entropy loss. */
import { Node, Value } from "../../ir";
import { Builder } from "../../ops";
import { GradRule, only, unbroadcast } from "../rule";

/** Swaps the last two axes. */
function transposeLast2(b: Builder, x: Value): Value {
  const perm = x.shape.map((_, i) => i);
  [perm[x.rank - 2], perm[x.rank - 1]] = [perm[x.rank - 1], perm[x.rank - 2]];
  return b.transpose(x, perm);
}

function isOne(node: Node, name: string): boolean {
  const a = node.attrs[name];
  return !a || (a.kind === "float" && a.value === 1);
}

function intAttr(node: Node, name: string, fallback: number): number {
  const a = node.attrs[name];
  return a?.kind === "int" ? a.value : fallback;
}

export const linalgRules: Record<string, GradRule> = {
  MatMul: (b, node, dys, needs) => {
    const [x, w] = node.inputs as Value[];
    const dy = only(dys);
    const dx = needs[0] ? unbroadcast(b, b.matmul(dy, transposeLast2(b, w)), x) : null;
    let dw: Value | null = null;
    if (needs[1]) {
      const k = x.shape[x.rank - 1];
      const n = dy.shape[dy.rank - 1];
      if (w.rank === 2 && x.rank > 2 && typeof k === "number" && typeof n === "number") {
        // Fold the batch axes into one matmul instead of a batched product followed by a sum.
        dw = b.matmul(transposeLast2(b, b.reshape(x, [-1, k])), b.reshape(dy, [-1, n]));
      } else {
        dw = unbroadcast(b, b.matmul(transposeLast2(b, x), dy), w);
      }
    }
    return [dx, dw];
  },
  Gemm: (b, node, dys, needs) => {
    const [a, w, c] = node.inputs as (Value | undefined)[];
    if (!a || !w) throw new Error("Gemm: missing input");
    const transA = intAttr(node, "transA", 0) === 1;
    const transB = intAttr(node, "transB", 0) === 1;
    if (!isOne(node, "alpha") || !isOne(node, "beta")) throw new Error("Gemm: gradients need alpha = beta = 1");
    const dy = only(dys);
    // Y = op(A) op(B): d op(A) = dY op(B)^T and d op(B) = op(A)^T dY, each transposed back when op transposes.
    const da = needs[0] ? (transA ? b.gemm(w, dy, { transA: transB, transB: true }) : b.gemm(dy, w, { transB: !transB })) : null;
    const dw = needs[1] ? (transB ? b.gemm(dy, a, { transA: true, transB: transA }) : b.gemm(a, dy, { transA: !transA })) : null;
    return c ? [da, dw, needs[2] ? unbroadcast(b, dy, c) : null] : [da, dw];
  },
  Softmax: (b, node, dys) => {
    const y = node.outputs[0];
    const dy = only(dys);
    const axis = intAttr(node, "axis", -1);
    return [b.mul(y, b.sub(dy, b.reduceSum(b.mul(dy, y), [axis], true)))];
  },
  LogSoftmax: (b, node, dys) => {
    const y = node.outputs[0];
    const dy = only(dys);
    const axis = intAttr(node, "axis", -1);
    return [b.sub(dy, b.mul(b.exp(y), b.reduceSum(dy, [axis], true)))];
  },
  SoftmaxCrossEntropyLoss: (b, node, dys) => {
    // d loss / d logits = (softmax(logits) - onehot(label)) * counted / denominator, rows with ignore_index get 0.
    const [logits, labels] = node.inputs as Value[];
    const dy = only(dys);
    const ignore = intAttr(node, "ignore_index", -100);
    const reductionAttr = node.attrs.reduction;
    const reduction = reductionAttr?.kind === "string" ? reductionAttr.value : "mean";
    const counted = b.not(b.compare("Equal", labels, b.scalar(ignore, "int64")));
    const safeLabels = b.unsqueeze(b.where(counted, labels, b.scalar(0, "int64")), [1]);
    const probs = b.softmax(logits, 1);
    const minusOne = b.fillLike(safeLabels, -1, logits.dtype);
    const delta = b.scatterAdd(probs, safeLabels, minusOne, 1);
    const mask = b.unsqueeze(b.cast(counted, logits.dtype), [1]);
    let scale = dy;
    if (reduction === "mean") {
      const count = b.sumAll(b.cast(counted, logits.dtype));
      scale = b.div(dy, b.add(count, b.where(b.compare("Equal", count, b.scalarLike(0, count)), b.scalarLike(1, count), b.scalarLike(0, count))));
    } else if (reduction !== "sum") {
      throw new Error(`autodiff: SoftmaxCrossEntropyLoss reduction "${reduction}" has no rule (use mean or sum)`);
    }
    return [b.mul(b.mul(delta, mask), scale), null];
  },
};
