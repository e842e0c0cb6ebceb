/**
 * The forward graph without gradients (loss, count and extra outputs such as logits), run on batches with
 * trainable tensors fed as inputs: what evaluation runs, for a saved adapter or for a training run's current tensors.
 */
import type { Batch } from "../data/batch";
import { compileEval, type ForwardBuilder, forwardNames, type TrainableSpec } from "../models/forward";
import type { Device } from "../runtime/device";
import { sessionForGraph } from "../runtime/graph-session";
import type { HostTensor, Session } from "../runtime/session";

/** A batch: host tensors named as the forward builder declared its inputs. */
export type Feeds = Record<string, HostTensor>;

/** Current values of trainable tensors by name. */
export type TrainableValues = ReadonlyMap<string, Float32Array>;

/** One batch through the forward graph: summed loss, its count, and every graph output by name. */
export interface ForwardPassResult {
  lossSum: number;
  count: number;
  outputs: Record<string, HostTensor>;
}

/** Options of a ForwardPass. */
export interface ForwardPassOptions {
  device?: Device;
  /** Graphs whose weights exceed this many bytes go to onnxruntime as a model file plus external data (default 1 GiB). */
  externalDataBytes?: number;
}

/** Graph feeds of a collated batch (input_ids, attention_mask, and labels per token or per row). */
export function batchFeeds(batch: Batch): Feeds {
  const shape = batch.shape as readonly number[];
  const feeds: Feeds = {
    input_ids: { dtype: "int64", shape, data: batch.inputIds },
    attention_mask: { dtype: "int64", shape, data: batch.attentionMask },
  };
  if (batch.labels) feeds.labels = { dtype: "int64", shape, data: batch.labels };
  if (batch.classLabels) feeds.labels = { dtype: "int64", shape: [shape[0]], data: batch.classLabels };
  return feeds;
}

/** One session of a forward builder's no-gradient graph, compiled on first use. */
export class ForwardPass {
  private session?: Promise<Session>;

  constructor(
    private readonly forward: ForwardBuilder,
    private readonly trainable: readonly TrainableSpec[],
    private readonly options: ForwardPassOptions = {},
  ) {}

  /** Creates the session now (so that the model's host copy of the weights can be dropped afterwards). */
  async prepare(): Promise<void> {
    if (!this.session) {
      this.session = sessionForGraph(compileEval(this.forward, this.trainable), this.options);
      this.session.catch(() => (this.session = undefined)); // a failed start is retried by the next call
    }
    await this.session;
  }

  /** Runs one batch with the given trainable tensors. */
  async run(batch: Feeds, values: TrainableValues): Promise<ForwardPassResult> {
    await this.prepare();
    const feeds: Feeds = { ...batch };
    for (const t of this.trainable) {
      const data = values.get(t.name);
      if (!data) throw new Error(`forward pass: no value given for trainable tensor "${t.name}"`);
      feeds[forwardNames.param(t.name)] = { dtype: "float32", shape: t.shape, data };
    }
    const out = await (await this.session!).run(feeds);
    return { lossSum: Number(out[forwardNames.lossSum].data[0]), count: Number(out[forwardNames.count].data[0]), outputs: out };
  }

  /** Releases the session (a later run makes a new one). */
  async release(): Promise<void> {
    const session = this.session;
    this.session = undefined;
    if (session) await (await session).release();
  }
}
