/**
 * A base model's weights with a LoRA adapter merged in (W + scaling * B @ A, as PEFT's merge_and_unload), under
 * Hugging Face names, read one tensor at a time so an exporter never holds the whole model twice.
 */
import { expectedWeights, type ModelConfig } from "../io/config";
import { mergeModuleInto, resolveLora, type LoraModule, type LoraSource, type LoraState } from "../models/lora";
import type { BaseModel } from "../models/model";

/** One float32 tensor in its Hugging Face layout (linears [out, in]). */
export interface HostTensor32 {
  shape: number[];
  data: Float32Array;
}

/** The merged weights of a causal language model: names in checkpoint order and each tensor on demand. */
export class MergedWeights {
  private readonly state: LoraState | null;
  private readonly byWeight: Map<string, LoraModule>;
  private readonly shapes: Map<string, number[]>;

  /** @param lora the adapter to merge, or null for the base weights unchanged. */
  constructor(
    readonly model: BaseModel,
    lora: LoraSource | null,
  ) {
    const config = model.config;
    if (config.architecture.endsWith("ForSequenceClassification")) {
      throw new Error(
        `${model.dir}: a ${config.architecture} has no language-model head; export supports causal language models (or use --format merged/peft)`,
      );
    }
    this.state = lora ? resolveLora(config, lora) : null;
    this.byWeight = new Map((this.state?.modules ?? []).map((m) => [`${m.path}.weight`, m]));
    this.shapes = expectedWeights(config);
    for (const name of this.shapes.keys()) {
      if (!model.weights.has(name)) throw new Error(`${model.dir}: the checkpoint has no tensor "${name}", which a ${config.architecture} needs`);
    }
  }

  get config(): ModelConfig {
    return this.model.config;
  }

  /** Hugging Face tensor names (embedding, layers, final norm, lm_head unless tied). */
  names(): string[] {
    return [...this.shapes.keys()];
  }

  has(name: string): boolean {
    return this.shapes.has(name);
  }

  shape(name: string): number[] {
    const s = this.shapes.get(name);
    if (!s) throw new Error(`no weight "${name}" in this ${this.config.architecture}`);
    return s;
  }

  /** The names a LoRA merge changes. */
  mergedNames(): string[] {
    return [...this.byWeight.keys()];
  }

  /** One tensor as float32, with the adapter merged when it adapts this weight (summed in float64, rounded once). */
  get(name: string): HostTensor32 {
    const shape = this.shape(name);
    const t = this.model.weights.get(name);
    if (t.shape.join(",") !== shape.join(",")) throw new Error(`${this.model.dir}: "${name}" is [${t.shape}], the config implies [${shape}]`);
    const m = this.byWeight.get(name);
    if (!m || !this.state) return { shape, data: t.data };
    const w = Float64Array.from(t.data);
    mergeModuleInto(w, m, this.state);
    return { shape, data: Float32Array.from(w) };
  }

  /** The output projection: lm_head, or the embedding when the model ties them. */
  lmHeadName(): string {
    return this.shapes.has("lm_head.weight") ? "lm_head.weight" : "model.embed_tokens.weight";
  }
}
