/** Gradients of element-wise ops: arithmetic with broadcasting, unary math, Where and Cast. */
import { isFloat, Value } from "../../ir";
import { Builder } from "../../ops";
import { GradRule, only, unbroadcast } from "../rule";

/** Rule for a unary op whose gradient is dy * f'(x, y). */
function unary(derivative: (b: Builder, x: Value, y: Value) => Value): GradRule {
  return (b, node, dys) => [b.mul(only(dys), derivative(b, node.inputs[0]!, node.outputs[0]))];
}

const one = (b: Builder, like: Value) => b.scalarLike(1, like);

export const elementwiseRules: Record<string, GradRule> = {
  Add: (b, node, dys, needs) => {
    const [x, y] = node.inputs as Value[];
    const dy = only(dys);
    return [needs[0] ? unbroadcast(b, dy, x) : null, needs[1] ? unbroadcast(b, dy, y) : null];
  },
  Sub: (b, node, dys, needs) => {
    const [x, y] = node.inputs as Value[];
    const dy = only(dys);
    return [needs[0] ? unbroadcast(b, dy, x) : null, needs[1] ? unbroadcast(b, b.neg(dy), y) : null];
  },
  Mul: (b, node, dys, needs) => {
    const [x, y] = node.inputs as Value[];
    const dy = only(dys);
    return [needs[0] ? unbroadcast(b, b.mul(dy, y), x) : null, needs[1] ? unbroadcast(b, b.mul(dy, x), y) : null];
  },
  Div: (b, node, dys, needs) => {
    const [x, y] = node.inputs as Value[];
    const dy = only(dys);
    const dx = needs[0] ? unbroadcast(b, b.div(dy, y), x) : null;
    // d(x/y)/dy = -(x/y)/y
    const dyy = needs[1] ? unbroadcast(b, b.neg(b.div(b.mul(dy, node.outputs[0]), y)), y) : null;
    return [dx, dyy];
  },
  Pow: (b, node, dys, needs) => {
    const [x, p] = node.inputs as Value[];
    const dy = only(dys);
    const dx = needs[0] ? unbroadcast(b, b.mul(dy, b.mul(p, b.pow(x, b.sub(p, one(b, p))))), x) : null;
    const dp = needs[1] ? unbroadcast(b, b.mul(dy, b.mul(node.outputs[0], b.log(x))), p) : null;
    return [dx, dp];
  },
  Neg: (b, _node, dys) => [b.neg(only(dys))],
  Identity: (_b, _node, dys) => [only(dys)],
  Exp: unary((_b, _x, y) => y),
  Log: (b, node, dys) => [b.div(only(dys), node.inputs[0]!)],
  Sqrt: (b, node, dys) => [b.div(b.mul(only(dys), b.scalarLike(0.5, node.outputs[0])), node.outputs[0])],
  Reciprocal: unary((b, _x, y) => b.neg(b.mul(y, y))),
  Tanh: unary((b, _x, y) => b.sub(one(b, y), b.mul(y, y))),
  Sigmoid: unary((b, _x, y) => b.mul(y, b.sub(one(b, y), y))),
  Relu: unary((b, x) => b.cast(b.compare("Greater", x, b.scalarLike(0, x)), x.dtype)),
  Abs: unary((b, x) => b.sign(x)),
  Sign: () => [null],
  Sin: unary((b, x) => b.cos(x)),
  Cos: unary((b, x) => b.neg(b.sin(x))),
  // d erf(x) = 2/sqrt(pi) * exp(-x^2)
  Erf: unary((b, x) => b.mul(b.scalarLike(2 / Math.sqrt(Math.PI), x), b.exp(b.neg(b.mul(x, x))))),
  Where: (b, node, dys, needs) => {
    const [cond, x, y] = node.inputs as Value[];
    const dy = only(dys);
    const zero = b.scalarLike(0, dy);
    return [null, needs[1] ? unbroadcast(b, b.where(cond, dy, zero), x) : null, needs[2] ? unbroadcast(b, b.where(cond, zero, dy), y) : null];
  },
  Cast: (b, node, dys) => {
    const x = node.inputs[0]!;
    return [isFloat(x.dtype) ? b.cast(only(dys), x.dtype) : null];
  },
};
