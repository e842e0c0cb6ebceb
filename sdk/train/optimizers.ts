/**
 * Optimizers written as graph ops, so a whole update runs inside onnxruntime. Semantics follow PyTorch's
 * torch.optim (SGD, AdamW) and the Lion paper, which is what Hugging Face and LLaMA-Factory users get.
 */
import { Value } from "../graph/ir";
import { Builder } from "../graph/ops";

/** SGD with optional momentum and (coupled, PyTorch-style) weight decay. */
export interface SgdOptions {
  name: "sgd";
  momentum?: number;
  weightDecay?: number;
}

/** AdamW with decoupled weight decay and bias correction. */
export interface AdamWOptions {
  name: "adamw";
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

/** Lion (sign of an interpolated momentum); wants a ~3-10x smaller learning rate than AdamW. */
export interface LionOptions {
  name: "lion";
  beta1?: number;
  beta2?: number;
  weightDecay?: number;
}

/** Any optimizer tunelab can put in a graph. */
export type OptimizerOptions = SgdOptions | AdamWOptions | LionOptions;

/** Names of the per-tensor state slots each optimizer keeps (fed and returned every step). */
export function stateSlots(opt: OptimizerOptions): string[] {
  switch (opt.name) {
    case "sgd":
      return (opt.momentum ?? 0) > 0 ? ["momentum"] : [];
    case "adamw":
      return ["exp_avg", "exp_avg_sq"];
    case "lion":
      return ["exp_avg"];
  }
}

/** One trainable tensor in the update: its value, its (clipped, unscaled) gradient and its state. */
export interface UpdateInput {
  param: Value;
  grad: Value;
  state: Value[];
}

/** Emits the update; `lr` and `step` (1-based, float32 scalar) are run-time inputs so schedules never rebuild. */
export function emitUpdate(b: Builder, opt: OptimizerOptions, t: UpdateInput, lr: Value, step: Value): { param: Value; state: Value[] } {
  const c = (x: number) => b.scalar(x);
  const { param: p, grad: g, state } = t;
  switch (opt.name) {
    case "sgd": {
      const wd = opt.weightDecay ?? 0;
      const grad = wd > 0 ? b.add(g, b.mul(p, c(wd))) : g;
      const momentum = opt.momentum ?? 0;
      if (momentum <= 0) return { param: b.sub(p, b.mul(grad, lr)), state: [] };
      const buf = b.add(b.mul(state[0], c(momentum)), grad);
      return { param: b.sub(p, b.mul(buf, lr)), state: [buf] };
    }
    case "adamw": {
      const [beta1, beta2, eps, wd] = [opt.beta1 ?? 0.9, opt.beta2 ?? 0.999, opt.eps ?? 1e-8, opt.weightDecay ?? 0];
      const m = b.add(b.mul(state[0], c(beta1)), b.mul(g, c(1 - beta1)));
      const v = b.add(b.mul(state[1], c(beta2)), b.mul(b.mul(g, g), c(1 - beta2)));
      const bc1 = b.sub(c(1), b.pow(c(beta1), step));
      const bc2 = b.sub(c(1), b.pow(c(beta2), step));
      const denom = b.add(b.div(b.sqrt(v), b.sqrt(bc2)), c(eps));
      const decayed = wd > 0 ? b.mul(p, b.sub(c(1), b.mul(lr, c(wd)))) : p;
      const next = b.sub(decayed, b.mul(b.div(lr, bc1), b.div(m, denom)));
      return { param: next, state: [m, v] };
    }
    case "lion": {
      const [beta1, beta2, wd] = [opt.beta1 ?? 0.9, opt.beta2 ?? 0.99, opt.weightDecay ?? 0];
      const interp = b.add(b.mul(state[0], c(beta1)), b.mul(g, c(1 - beta1)));
      const decayed = wd > 0 ? b.mul(p, b.sub(c(1), b.mul(lr, c(wd)))) : p;
      const next = b.sub(decayed, b.mul(b.sign(interp), lr));
      const m = b.add(b.mul(state[0], c(beta2)), b.mul(g, c(1 - beta2)));
      return { param: next, state: [m] };
    }
  }
}
