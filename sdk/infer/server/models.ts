/**
 * The models one server serves: the base model under its name, and each adapter under its own (as vLLM serves
 * LoRA modules). A causal-LM adapter generates; a SEQ_CLS adapter (PEFT task_type, with the `score` head in
 * modules_to_save) classifies. Each model has its own session and its own batching queue.
 */
import * as path from "node:path";
import { loadAdapter } from "../../models/lora";
import type { BaseModel } from "../../models/model";
import type { Device } from "../../runtime/device";
import { Generator, type GenerateRow, type GenerationResult } from "../generate";
import { Classifier, readLabels, type Classification } from "./classifier";
import { BatchQueue, type BatchRunner, type QueueEntry } from "./queue";

/** An adapter to serve: its folder, and the model name clients ask for (default: the folder's name). */
export interface AdapterSpec {
  path: string;
  name?: string;
}

/** One served model: what it does and its queue. */
export type ServedModel =
  | { id: string; kind: "generate"; created: number; generator: Generator; queue: BatchQueue<GenerateRow, GenerationResult> }
  | { id: string; kind: "classify"; created: number; classifier: Classifier; queue: BatchQueue<string, Classification> };

/** Limits and placement shared by every served model. */
export interface ModelSetOptions {
  maxBatchSize: number;
  maxQueue: number;
  device?: Device;
  threads?: number;
  /** Name of the base model; default its folder's name. */
  servedModelName?: string;
  /** Called with the number of rows in each forward pass (generation) or batch (classification). */
  onStep?: (rows: number) => void;
}

/** Opens every model, compiles its session and runs one tiny pass, so that a broken model fails at start-up. */
export async function openServedModels(base: BaseModel, adapters: readonly AdapterSpec[], o: ModelSetOptions): Promise<ServedModel[]> {
  const created = Math.floor(Date.now() / 1000);
  const queueOptions = (name: string) => ({ maxBatchSize: o.maxBatchSize, maxQueue: o.maxQueue, name });
  const generating = (id: string, generator: Generator): ServedModel => {
    // Each request is answered when its own row ends; waiting requests join the running batch between steps.
    const toRow = (e: QueueEntry<GenerateRow, GenerationResult>): GenerateRow => ({ ...e.item, onDone: (r) => e.resolve(r) });
    const runner: BatchRunner<GenerateRow, GenerationResult> = async (batch, take) => {
      await generator.generateRows(batch.map(toRow), { join: (running) => take(running).map(toRow), onStep: o.onStep });
    };
    return { id, kind: "generate", created, generator, queue: new BatchQueue(runner, queueOptions(id)) };
  };
  const models: ServedModel[] = [generating(o.servedModelName ?? path.basename(base.dir), new Generator(base, { device: o.device, threads: o.threads }))];
  for (const spec of adapters) {
    const id = spec.name ?? path.basename(path.resolve(spec.path));
    if (models.some((m) => m.id === id)) throw new Error(`two served models are named "${id}"; name adapters with --adapter NAME=DIR`);
    const adapter = loadAdapter(spec.path);
    if (adapter.config.taskType === "SEQ_CLS") {
      const numLabels = adapter.modulesToSave["score.weight"]?.shape[0] ?? 0;
      const classifier = new Classifier(base, adapter, readLabels(spec.path, numLabels), o.device);
      models.push({
        id,
        kind: "classify",
        created,
        classifier,
        queue: BatchQueue.simple((texts: string[]) => (o.onStep?.(texts.length), classifier.classify(texts)), queueOptions(id)),
      });
    } else {
      models.push(generating(id, new Generator(base, { lora: adapter, device: o.device, threads: o.threads })));
    }
  }
  for (const m of models) {
    if (m.kind === "classify") await m.classifier.prepare();
    else await m.generator.generateRows([{ prompt: [base.tokenizer.eosTokenId], options: { maxNewTokens: 1, doSample: false } }]);
  }
  return models;
}

/** Waits for every queue to finish its work, then frees the sessions. */
export async function closeServedModels(models: readonly ServedModel[]): Promise<void> {
  await Promise.all(models.map((m) => m.queue.drain()));
  await Promise.all(models.map((m) => (m.kind === "classify" ? m.classifier.release() : m.generator.release())));
}
