/**
 * A sequence classifier served from a SEQ_CLS adapter: the text's last token's hidden state through the adapter's
 * `score` head (models/tasks' classificationForward, as training and evaluation run it), softmax scores per label.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { collate } from "../../data/batch";
import type { TokenizedExample } from "../../data/tokenize";
import { adapterTrainables, type Adapter } from "../../models/lora";
import type { BaseModel } from "../../models/model";
import { classificationForward } from "../../models/tasks";
import type { Device } from "../../runtime/device";
import { batchFeeds, ForwardPass } from "../forward-pass";
import { softmax } from "../sampling";

/** One text's prediction. */
export interface Classification {
  /** The most likely label. */
  label: string;
  /** Its probability. */
  score: number;
  /** Every label with its probability, in the head's label order. */
  scores: { label: string; score: number }[];
  promptTokens: number;
}

/** Label names of a classification adapter: labels.json's id2label beside it (as training writes it), else LABEL_i. */
export function readLabels(adapterDir: string, numLabels: number): string[] {
  const file = path.join(adapterDir, "labels.json");
  const fallback = Array.from({ length: numLabels }, (_, i) => `LABEL_${i}`);
  if (!fs.existsSync(file)) return fallback;
  const id2label = (JSON.parse(fs.readFileSync(file, "utf8")) as { id2label?: Record<string, string> }).id2label;
  if (!id2label || typeof id2label !== "object") throw new Error(`${file}: expected {"id2label": {"0": "label", ...}}`);
  return fallback.map((name, i) => {
    const l = id2label[String(i)];
    if (typeof l !== "string") throw new Error(`${file}: id2label has no label for class ${i} of ${numLabels}`);
    return l ?? name;
  });
}

/** Batched classification with one forward session. */
export class Classifier {
  readonly labels: string[];
  private readonly pass: ForwardPass;
  private readonly values: Map<string, Float32Array>;

  constructor(
    readonly model: BaseModel,
    adapter: Adapter,
    labels: string[],
    device?: Device,
  ) {
    const { modules, trainable } = adapterTrainables(model.config, adapter, true);
    const numLabels = trainable[trainable.length - 1].shape[0];
    if (labels.length !== numLabels) throw new Error(`the classifier head has ${numLabels} classes but ${labels.length} labels were given`);
    this.labels = labels;
    const ctx = { config: model.config, weights: model.weights, lora: modules, loraDropout: 0 };
    this.pass = new ForwardPass(classificationForward(ctx), trainable, { device });
    this.values = new Map(trainable.map((t) => [t.name, t.init]));
  }

  /** Compiles the session now. */
  prepare(): Promise<void> {
    return this.pass.prepare();
  }

  /** Classifies texts in one batch (tokenised as training does: the tokenizer's special tokens added, right padding). */
  async classify(texts: readonly string[]): Promise<Classification[]> {
    const tok = this.model.tokenizer;
    const examples: TokenizedExample[] = texts.map((t, i) => {
      const ids = tok.encode(t, { addSpecialTokens: true }).slice(0, this.model.config.maxPositionEmbeddings);
      return { id: String(i), inputIds: ids.length ? ids : [tok.padTokenId], classLabel: -100 };
    });
    const out = await this.pass.run(batchFeeds(collate(examples, tok.padTokenId)), this.values);
    const logits = out.outputs.logits.data as Float32Array;
    const n = this.labels.length;
    return examples.map((e, r) => {
      const p = softmax(logits.subarray(r * n, (r + 1) * n));
      const scores = this.labels.map((label, i) => ({ label, score: p[i] }));
      const best = scores.reduce((a, b) => (b.score > a.score ? b : a));
      return { label: best.label, score: best.score, scores, promptTokens: e.inputIds.length };
    });
  }

  /** Frees the session. */
  release(): Promise<void> {
    return this.pass.release();
  }
}
