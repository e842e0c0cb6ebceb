/**
 * Runs compiled steps: keeps the trainable tensors and optimizer state on the host (they are small for LoRA) in
 * flat arrays, feeds views of them to the cached sessions each step, and writes the new values back into them.
 */
import { Graph } from "../graph/ir";
import { Device } from "../runtime/device";
import { sessionForGraph } from "../runtime/graph-session";
import { HostTensor, Session } from "../runtime/session";
import type { Feeds } from "../infer/forward-pass";
import type { ForwardBuilder, InitializedTrainable } from "../models/forward";
import { OptimizerOptions, stateSlots } from "./optimizers";
import { compileApplyStep, compileChunkUpdate, compileGradStep, compileTrainStep, FLAT, names, UpdateOptions } from "./step";

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
  /**
   * Values per run of an update made in place, chunk by chunk, after a gradient-only pass (see `train`); null for the
   * fused step. Default: UPDATE_CHUNK when the trainable tensors and their optimizer state exceed
   * STREAMED_UPDATE_BYTES, else null.
   */
  updateChunk?: number | null;
}

/**
 * Trainable tensors plus optimizer state above which the update runs in place: onnxruntime-node copies every output
 * into a new JavaScript buffer only after the run, so the fused step ends holding the state three times (old, the
 * runtime's new, its copy), about 1.5 GB for rank-16 LoRA on every linear of a 7B model.
 */
export const STREAMED_UPDATE_BYTES = 256 * 2 ** 20;
/** Values per update run in place (4 MiB of float32 per tensor role: the runtime holds a dozen such temporaries). */
export const UPDATE_CHUNK = 2 ** 20;

/** Where one trainable tensor sits in the engine's flat arrays. */
interface Placed {
  name: string;
  shape: readonly number[];
  offset: number;
  size: number;
}

/** Summed gradients of one step, laid out as the trainable tensors, with the loss and the count they came with. */
interface Gradients {
  flat: Float32Array;
  lossSum: number;
  count: number;
}

/** Holds the sessions of one training run and the host copies of what they update. */
export class StepEngine {
  private fused?: Session;
  private gradOnly?: Session;
  private apply?: Session;
  private chunkUpdate?: Session;
  private readonly placed: Placed[] = [];
  private readonly byName = new Map<string, Placed>();
  /** Every trainable tensor laid end to end; sessions are fed views of it. */
  private readonly params: Float32Array;
  /** The optimizer's state by slot, in the same layout. */
  private readonly state = new Map<string, Float32Array>();
  /** Values per in-place update run, or null for the fused step. */
  private readonly chunk: number | null;
  /** Optimizer steps taken so far. */
  step = 0;

  private constructor(private readonly opts: EngineOptions) {
    let total = 0;
    for (const t of opts.trainable) {
      const size = t.shape.reduce((a, b) => a * b, 1);
      if (t.init.length !== size) throw new Error(`trainable "${t.name}": init has ${t.init.length} values, shape [${t.shape}] needs ${size}`);
      const placed = { name: t.name, shape: t.shape, offset: total, size };
      this.placed.push(placed);
      this.byName.set(t.name, placed);
      total += size;
    }
    this.params = new Float32Array(total);
    for (const t of opts.trainable) this.params.set(t.init, this.byName.get(t.name)!.offset);
    const slots = stateSlots(opts.optimizer);
    for (const slot of slots) this.state.set(slot, new Float32Array(total));
    if (opts.updateChunk != null && !(Number.isSafeInteger(opts.updateChunk) && opts.updateChunk > 0))
      throw new Error(`updateChunk must be a positive integer, got ${opts.updateChunk}`);
    this.chunk = opts.updateChunk ?? (total * 4 * (1 + slots.length) > STREAMED_UPDATE_BYTES ? UPDATE_CHUNK : null);
  }

  /** Creates an engine; sessions are compiled lazily on first use. */
  static create(opts: EngineOptions): StepEngine {
    return new StepEngine(opts);
  }

  get optimizer(): OptimizerOptions {
    return this.opts.optimizer;
  }

  /** True when steps update the tensors in place chunk by chunk after a gradient-only pass (large trainable state). */
  get updatesInPlace(): boolean {
    return this.chunk !== null;
  }

  private async session(kind: "fused" | "gradOnly" | "apply" | "chunkUpdate"): Promise<Session> {
    const { forward, trainable } = this.opts;
    const create = (graph: Graph) => this.createSession(graph);
    switch (kind) {
      case "fused":
        return (this.fused ??= await create(compileTrainStep(forward, trainable, this.opts)));
      case "gradOnly":
        return (this.gradOnly ??= await create(compileGradStep(forward, trainable, !!this.opts.lossScaling)));
      case "apply":
        return (this.apply ??= await create(compileApplyStep(trainable, this.opts)));
      case "chunkUpdate":
        return (this.chunkUpdate ??= await create(compileChunkUpdate(this.opts)));
    }
  }

  private createSession(graph: Graph): Promise<Session> {
    return sessionForGraph(graph, { device: this.opts.device, externalDataBytes: this.opts.externalDataBytes });
  }

  /** Compiles the graphs the steps will run and creates their sessions now (they are otherwise made by the first step). */
  async prepare(): Promise<void> {
    if (this.chunk === null) await this.session("fused");
    else await Promise.all([this.session("gradOnly"), this.session("chunkUpdate")]);
  }

  /** `flat`'s slice of tensor `p`, shaped as the tensor (a view, not a copy). */
  private view(flat: Float32Array, p: Placed): HostTensor {
    return { dtype: "float32", shape: p.shape, data: flat.subarray(p.offset, p.offset + p.size) };
  }

  private paramFeeds(): Feeds {
    const feeds: Feeds = {};
    for (const p of this.placed) feeds[names.param(p.name)] = this.view(this.params, p);
    return feeds;
  }

  private stepFeeds(lr: number): Feeds {
    return { [names.lr]: scalar(lr), [names.step]: scalar(this.step + 1) };
  }

  private stateFeeds(): Feeds {
    const feeds: Feeds = {};
    for (const [slot, flat] of this.state) for (const p of this.placed) feeds[names.state(slot, p.name)] = this.view(flat, p);
    return feeds;
  }

  /**
   * Takes one optimizer step over one or more micro-batches (gradient accumulation) at learning rate `lr`. Small
   * trainable sets run one fused graph (forward, gradients, clipping, update). Large ones (`updatesInPlace`) run the
   * gradients alone, then the update a chunk at a time into the engine's own arrays: twice, the first time only to
   * learn whether every new value is finite, so a step is applied whole or not at all.
   */
  async train(microBatches: readonly Feeds[], lr: number, lossScale = 1): Promise<StepResult> {
    if (microBatches.length === 0) throw new Error("train: no batches given");
    const scaleFeed: Feeds = this.opts.lossScaling ? { [names.lossScale]: scalar(lossScale) } : {};
    if (microBatches.length === 1 && this.chunk === null) {
      const out = await (
        await this.session("fused")
      ).run({ ...microBatches[0], ...this.paramFeeds(), ...this.stepFeeds(lr), ...this.stateFeeds(), ...scaleFeed });
      return this.finish(num(out[names.lossSum]), num(out[names.count]), out);
    }
    const grads = await this.gradients(microBatches, scaleFeed);
    const denom = Math.max(grads.count, 1) * lossScale;
    if (this.chunk !== null) return this.updateInPlace(grads, denom, lr, this.chunk);
    const feeds: Feeds = { ...this.paramFeeds(), ...this.stepFeeds(lr), ...this.stateFeeds(), [names.denom]: scalar(denom) };
    for (const p of this.placed) feeds[names.grad(p.name)] = this.view(grads.flat, p);
    return this.finish(grads.lossSum, grads.count, await (await this.session("apply")).run(feeds));
  }

  /** Applies the outputs of a fused or apply run when every figure is finite, and reports the step. */
  private finish(lossSum: number, count: number, out: Record<string, HostTensor>): StepResult {
    const stateCheck = this.state.size > 0 ? num(out[names.stateCheck]) : 0;
    const result = stepResult(lossSum, count, num(out[names.gradNorm]), num(out[names.updateNorm]), stateCheck);
    if (result.applied) {
      for (const p of this.placed) {
        this.params.set(out[names.newParam(p.name)].data as Float32Array, p.offset);
        for (const [slot, flat] of this.state) flat.set(out[names.newState(slot, p.name)].data as Float32Array, p.offset);
      }
      this.step++;
    }
    return result;
  }

  /** The gradients of the summed loss over the micro-batches, summed, in the flat layout. */
  private async gradients(microBatches: readonly Feeds[], scaleFeed: Feeds): Promise<Gradients> {
    const session = await this.session("gradOnly");
    const flat = new Float32Array(this.params.length);
    let lossSum = 0;
    let count = 0;
    for (const [k, batch] of microBatches.entries()) {
      const out = await session.run({ ...batch, ...this.paramFeeds(), ...scaleFeed });
      lossSum += num(out[names.lossSum]);
      count += num(out[names.count]);
      for (const p of this.placed) {
        const grad = out[names.grad(p.name)].data as Float32Array;
        if (k === 0) flat.set(grad, p.offset);
        else for (let i = 0; i < p.size; i++) flat[p.offset + i] += grad[i];
      }
    }
    return { flat, lossSum, count };
  }

  /**
   * The update in place, `chunk` values per run. Clipping needs the whole gradient's norm, so it is taken here (in
   * float64) and folded with the mean into one factor on the summed gradient.
   */
  private async updateInPlace(grads: Gradients, denom: number, lr: number, chunk: number): Promise<StepResult> {
    let sq = 0;
    for (const x of grads.flat) sq += (x / denom) ** 2;
    const gradNorm = Math.sqrt(sq);
    const clip = this.opts.maxGradNorm > 0 ? Math.min(1, this.opts.maxGradNorm / (gradNorm + 1e-6)) : 1;
    const session = await this.session("chunkUpdate");
    const run = async (start: number, fetch: readonly string[]) => {
      const end = Math.min(start + chunk, this.params.length);
      const feeds: Feeds = {
        ...this.stepFeeds(lr),
        [names.gradScale]: scalar(clip / denom),
        [names.param(FLAT)]: flatSlice(this.params, start, end),
        [names.grad(FLAT)]: flatSlice(grads.flat, start, end),
      };
      for (const [slot, flat] of this.state) feeds[names.state(slot, FLAT)] = flatSlice(flat, start, end);
      return session.run(feeds, fetch);
    };
    const report = (updateNorm: number, stateCheck: number) => stepResult(grads.lossSum, grads.count, gradNorm, updateNorm, stateCheck);
    if (!Number.isFinite(grads.lossSum) || !Number.isFinite(gradNorm)) return report(NaN, NaN);
    // First pass: only the figures, so nothing is written unless all of it is finite.
    let updateSq = 0;
    let stateCheck = 0;
    const checks = this.state.size > 0 ? [names.updateSq, names.stateCheck] : [names.updateSq];
    for (let start = 0; start < this.params.length; start += chunk) {
      const out = await run(start, checks);
      updateSq += num(out[names.updateSq]);
      if (this.state.size > 0) stateCheck += num(out[names.stateCheck]);
    }
    const result = report(Math.sqrt(updateSq), stateCheck);
    if (!result.applied) return result;
    const outputs = [names.newParam(FLAT), ...[...this.state.keys()].map((slot) => names.newState(slot, FLAT))];
    for (let start = 0; start < this.params.length; start += chunk) {
      const out = await run(start, outputs);
      this.params.set(out[names.newParam(FLAT)].data as Float32Array, start);
      for (const [slot, flat] of this.state) flat.set(out[names.newState(slot, FLAT)].data as Float32Array, start);
    }
    this.step++;
    return result;
  }

  /** Current value of a trainable tensor (the engine's own array: read it, do not keep it across steps). */
  param(name: string): Float32Array {
    const p = this.byName.get(name);
    if (!p) throw new Error(`no trainable tensor named "${name}"`);
    return this.view(this.params, p).data as Float32Array;
  }

  /** Current values of every trainable tensor by name (the engine's own arrays: read them, do not keep them across steps). */
  values(): ReadonlyMap<string, Float32Array> {
    return new Map(this.placed.map((p) => [p.name, this.param(p.name)]));
  }

  /** A copy of everything needed to resume (for checkpoints). */
  snapshot(): EngineState {
    const optimizer: Record<string, Float32Array> = {};
    for (const [slot, flat] of this.state)
      for (const p of this.placed) optimizer[names.state(slot, p.name)] = Float32Array.from(this.view(flat, p).data as Float32Array);
    return { ...this.snapshotParams(), optimizer };
  }

  /** A copy of the trainable tensors and the step they belong to. */
  snapshotParams(): ParamsState {
    const params: Record<string, Float32Array> = {};
    for (const p of this.placed) params[p.name] = Float32Array.from(this.param(p.name));
    return { step: this.step, params };
  }

  /** Restores a snapshot taken from an engine with the same trainable tensors and optimizer. */
  restore(state: EngineState): void {
    const checked = this.placed.flatMap((p) =>
      [...this.state.keys()].map((slot) => [slot, p, checkedValues(state.optimizer, names.state(slot, p.name), p.size)] as const),
    );
    this.restoreParams(state);
    for (const [slot, p, values] of checked) this.state.get(slot)!.set(values, p.offset);
    this.step = state.step;
  }

  /** Puts back the trainable tensors of a snapshot; the step count and optimizer state stay as they are. */
  restoreParams(state: ParamsState): void {
    const checked = this.placed.map((p) => [p, checkedValues(state.params, p.name, p.size)] as const);
    for (const [p, values] of checked) this.params.set(values, p.offset);
  }

  /** Releases all sessions. */
  async release(): Promise<void> {
    for (const s of [this.fused, this.gradOnly, this.apply, this.chunkUpdate]) await s?.release();
  }
}

/** A step's report: it is applied only when every figure is finite. */
function stepResult(lossSum: number, count: number, gradNorm: number, updateNorm: number, stateCheck: number): StepResult {
  const nonFinite = firstNonFinite(lossSum, gradNorm, updateNorm, stateCheck);
  return { loss: lossSum / Math.max(count, 1), gradNorm, updateNorm, count, applied: nonFinite === null, nonFinite };
}

/** The first of a step's figures that is not finite, in the order they are computed, or null. */
function firstNonFinite(lossSum: number, gradNorm: number, updateNorm: number, stateCheck: number): NonFinite | null {
  if (!Number.isFinite(lossSum)) return "loss";
  if (!Number.isFinite(gradNorm)) return "gradients";
  if (!Number.isFinite(updateNorm)) return "update";
  if (!Number.isFinite(stateCheck)) return "optimizer_state";
  return null;
}

function checkedValues(from: Record<string, Float32Array>, name: string, size: number): Float32Array {
  const data = from[name];
  if (!data || data.length !== size)
    throw new Error(`checkpoint does not match this run: "${name}" is ${data ? `${data.length} values, expected ${size}` : "missing"}`);
  return data;
}

/** A flat vector's slice [start, end) as a 1-D host tensor (a view). */
function flatSlice(flat: Float32Array, start: number, end: number): HostTensor {
  return { dtype: "float32", shape: [end - start], data: flat.subarray(start, end) };
}

function scalar(x: number): HostTensor {
  return { dtype: "float32", shape: [], data: new Float32Array([x]) };
}

function num(t: HostTensor): number {
  return Number(t.data[0]);
}
