/**
 * Runs compiled steps: keeps the trainable tensors and optimizer state on the host (they are small for LoRA),
 * feeds them to the cached sessions each step, and takes the new values back.
 */
import { Graph } from "../graph/ir";
import { Device } from "../runtime/device";
import { sessionForGraph } from "../runtime/graph-session";
import { HostTensor, Session } from "../runtime/session";
import type { Feeds } from "../infer/forward-pass";
import type { ForwardBuilder, InitializedTrainable } from "../models/forward";
import { OptimizerOptions, stateSlots } from "./optimizers";
import { compileApplyStep, compileGradStep, compileTrainStep, names, UpdateOptions } from "./step";

export type { Feeds };

/** What made a step unfit to apply: the first figure of it that was not finite. */
export type NonFinite = "loss" | "gradients" | "update" | "optimizer_state";

/** Figures of one optimizer step. */
export interface StepResult {
  /** Mean loss over the counted examples/tokens of all micro-batches. */
  loss: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Norm of the change to the trainable tensors (applied only when finite). */
  updateNorm: number;
  /** Examples or tokens the loss was averaged over. */
  count: number;
  /** False when anything the step computed or would write was not finite; the engine then keeps its state. */
  applied: boolean;
  /** Why the step was not applied, or null when it was. */
  nonFinite: NonFinite | null;
}

/** Everything needed to continue training exactly: step count, tensors and optimizer state. */
export interface EngineState {
  step: number;
  params: Record<string, Float32Array>;
  optimizer: Record<string, Float32Array>;
}

/** The trainable tensors at one step, without optimizer state (e.g. the best adapter early stopping keeps). */
export type ParamsState = Pick<EngineState, "step" | "params">;

/** Options for `StepEngine.create`. */
export interface EngineOptions extends UpdateOptions {
  forward: ForwardBuilder;
  trainable: readonly InitializedTrainable[];
  device?: Device;
  /** Graphs whose weights exceed this many bytes go to onnxruntime as a model file plus external data (default 1 GiB). */
  externalDataBytes?: number;
}

/** Holds the sessions of one training run and the host copies of what they update. */
export class StepEngine {
  private fused?: Session;
  private gradOnly?: Session;
  private apply?: Session;
  private readonly params = new Map<string, HostTensor>();
  private readonly state = new Map<string, HostTensor>();
  /** Optimizer steps taken so far. */
  step = 0;

  private constructor(private readonly opts: EngineOptions) {
    for (const t of opts.trainable) {
      const size = t.shape.reduce((a, b) => a * b, 1);
      if (t.init.length !== size) throw new Error(`trainable "${t.name}": init has ${t.init.length} values, shape [${t.shape}] needs ${size}`);
      this.params.set(t.name, { dtype: "float32", shape: t.shape, data: Float32Array.from(t.init) });
      for (const slot of stateSlots(opts.optimizer)) {
        this.state.set(names.state(slot, t.name), { dtype: "float32", shape: t.shape, data: new Float32Array(size) });
      }
    }
  }

  /** Creates an engine; sessions are compiled lazily on first use. */
  static create(opts: EngineOptions): StepEngine {
    return new StepEngine(opts);
  }

  get optimizer(): OptimizerOptions {
    return this.opts.optimizer;
  }

  private async session(kind: "fused" | "gradOnly" | "apply"): Promise<Session> {
    const { forward, trainable } = this.opts;
    const create = (graph: Graph) => this.createSession(graph);
    switch (kind) {
      case "fused":
        return (this.fused ??= await create(compileTrainStep(forward, trainable, this.opts)));
      case "gradOnly":
        return (this.gradOnly ??= await create(compileGradStep(forward, trainable, !!this.opts.lossScaling)));
      case "apply":
        return (this.apply ??= await create(compileApplyStep(trainable, this.opts)));
    }
  }

  private createSession(graph: Graph): Promise<Session> {
    return sessionForGraph(graph, { device: this.opts.device, externalDataBytes: this.opts.externalDataBytes });
  }

  private paramFeeds(): Feeds {
    const feeds: Feeds = {};
    for (const [name, t] of this.params) feeds[names.param(name)] = t;
    return feeds;
  }

  private updateFeeds(lr: number): Feeds {
    const feeds: Feeds = {
      [names.lr]: scalar(lr),
      [names.step]: scalar(this.step + 1),
    };
    for (const [name, t] of this.state) feeds[name] = t;
    return feeds;
  }

  /** Takes one optimizer step over one or more micro-batches (gradient accumulation) at learning rate `lr`. */
  async train(microBatches: readonly Feeds[], lr: number, lossScale = 1): Promise<StepResult> {
    if (microBatches.length === 0) throw new Error("train: no batches given");
    const scaleFeed: Feeds = this.opts.lossScaling ? { [names.lossScale]: scalar(lossScale) } : {};
    let out: Record<string, HostTensor>;
    let lossSum = 0;
    let count = 0;
    if (microBatches.length === 1) {
      out = await (await this.session("fused")).run({ ...microBatches[0], ...this.paramFeeds(), ...this.updateFeeds(lr), ...scaleFeed });
      lossSum = num(out[names.lossSum]);
      count = num(out[names.count]);
    } else {
      const gradSession = await this.session("gradOnly");
      const sums = new Map<string, Float32Array>();
      for (const batch of microBatches) {
        const g = await gradSession.run({ ...batch, ...this.paramFeeds(), ...scaleFeed });
        lossSum += num(g[names.lossSum]);
        count += num(g[names.count]);
        for (const t of this.opts.trainable) {
          const grad = g[names.grad(t.name)].data as Float32Array;
          const acc = sums.get(t.name);
          if (!acc) sums.set(t.name, Float32Array.from(grad));
          else for (let i = 0; i < acc.length; i++) acc[i] += grad[i];
        }
      }
      const feeds: Feeds = { ...this.paramFeeds(), ...this.updateFeeds(lr), [names.denom]: scalar(Math.max(count, 1) * lossScale) };
      for (const t of this.opts.trainable) feeds[names.grad(t.name)] = { dtype: "float32", shape: t.shape, data: sums.get(t.name)! };
      out = await (await this.session("apply")).run(feeds);
    }
    const gradNorm = num(out[names.gradNorm]);
    const updateNorm = num(out[names.updateNorm]);
    const nonFinite = firstNonFinite(lossSum, gradNorm, updateNorm, this.state.size > 0 ? num(out[names.stateCheck]) : 0);
    const applied = nonFinite === null;
    if (applied) {
      for (const name of this.params.keys()) this.params.set(name, out[names.newParam(name)]);
      for (const key of this.state.keys()) this.state.set(key, out[key.replace(/^state\./, "new_state.")]);
      this.step++;
    }
    return { loss: lossSum / Math.max(count, 1), gradNorm, updateNorm, count, applied, nonFinite };
  }

  /** Current value of a trainable tensor. */
  param(name: string): Float32Array {
    const t = this.params.get(name);
    if (!t) throw new Error(`no trainable tensor named "${name}"`);
    return t.data as Float32Array;
  }

  /** Current values of every trainable tensor by name (the engine's own arrays: read them, do not keep them across steps). */
  values(): ReadonlyMap<string, Float32Array> {
    return new Map([...this.params].map(([name, t]) => [name, t.data as Float32Array]));
  }

  /** A copy of everything needed to resume (for checkpoints). */
  snapshot(): EngineState {
    const optimizer: Record<string, Float32Array> = {};
    for (const [name, t] of this.state) optimizer[name] = Float32Array.from(t.data as Float32Array);
    return { ...this.snapshotParams(), optimizer };
  }

  /** A copy of the trainable tensors and the step they belong to. */
  snapshotParams(): ParamsState {
    const params: Record<string, Float32Array> = {};
    for (const [name, t] of this.params) params[name] = Float32Array.from(t.data as Float32Array);
    return { step: this.step, params };
  }

  /** Restores a snapshot taken from an engine with the same trainable tensors and optimizer. */
  restore(state: EngineState): void {
    this.restoreParams(state);
    for (const [name, t] of this.state) this.state.set(name, { ...t, data: copyChecked(state.optimizer, name, t.data.length) });
    this.step = state.step;
  }

  /** Puts back the trainable tensors of a snapshot; the step count and optimizer state stay as they are. */
  restoreParams(state: ParamsState): void {
    for (const [name, t] of this.params) this.params.set(name, { ...t, data: copyChecked(state.params, name, t.data.length) });
  }

  /** Releases all sessions. */
  async release(): Promise<void> {
    for (const s of [this.fused, this.gradOnly, this.apply]) await s?.release();
  }
}

/** The first of a step's figures that is not finite, in the order they are computed, or null. */
function firstNonFinite(lossSum: number, gradNorm: number, updateNorm: number, stateCheck: number): NonFinite | null {
  if (!Number.isFinite(lossSum)) return "loss";
  if (!Number.isFinite(gradNorm)) return "gradients";
  if (!Number.isFinite(updateNorm)) return "update";
  if (!Number.isFinite(stateCheck)) return "optimizer_state";
  return null;
}

function copyChecked(from: Record<string, Float32Array>, name: string, size: number): Float32Array {
  const data = from[name];
  if (!data || data.length !== size)
    throw new Error(`checkpoint does not match this run: "${name}" is ${data ? `${data.length} values, expected ${size}` : "missing"}`);
  return Float32Array.from(data);
}

function scalar(x: number): HostTensor {
  return { dtype: "float32", shape: [], data: new Float32Array([x]) };
}

function num(t: HostTensor): number {
  return Number(t.data[0]);
}
