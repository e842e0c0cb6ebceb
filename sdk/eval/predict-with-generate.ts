/**
 * `predict_with_generate` during training (LLaMA-Factory's name): at each evaluation, the model with the current
 * adapter answers a fixed sample of the validation split and the answers are scored like LLaMA-Factory's
 * ComputeSimilarity (BLEU-4, ROUGE-1/2/L) plus the stop rate. The prompt of a tokenised SFT example is its tokens
 * before the first trained label; the reference is its trained tokens decoded (special tokens skipped).
 */
import { IGNORE_INDEX, type TokenizedExample } from "../data/tokenize";
import { Generator } from "../infer/generate";
import type { Adapter } from "../models/lora";
import type { BaseModel } from "../models/model";
import type { Device } from "../runtime/device";
import type { GenerationSample } from "./generation-metric";
import { scoreGeneration } from "./generation-report";

/** Options of `predictWithGenerate`. */
export interface PredictWithGenerateOptions {
  /** Validation examples answered (the first N, default 32). */
  samples?: number;
  /** Tokens per answer (default 128). */
  maxNewTokens?: number;
  /** Prompts per generate call (default 16). */
  batchSize?: number;
  device?: Device;
}

/** The prompt and reference of a tokenised SFT example, or null when it has no trained tokens. */
export function promptAndReference(example: TokenizedExample): { prompt: number[]; reference: number[] } | null {
  const labels = example.labels;
  if (!labels) return null;
  const first = labels.findIndex((t) => t !== IGNORE_INDEX);
  if (first <= 0) return null;
  return { prompt: example.inputIds.slice(0, first), reference: labels.slice(first).filter((t) => t !== IGNORE_INDEX) };
}

/** Generation metrics of the model plus adapter on the first `samples` validation examples: bleu, rouge1/2/L, stop_rate. */
export async function predictWithGenerate(
  model: BaseModel,
  adapter: Adapter | null,
  examples: readonly TokenizedExample[],
  opts: PredictWithGenerateOptions = {},
): Promise<{ metrics: Record<string, number>; samples: GenerationSample[] }> {
  const pairs = examples
    .map(promptAndReference)
    .filter((p): p is NonNullable<typeof p> => p !== null)
    .slice(0, opts.samples ?? 32);
  if (pairs.length === 0) return { metrics: {}, samples: [] };
  const tok = model.tokenizer;
  const generator = new Generator(model, { lora: adapter, device: opts.device });
  const samples: GenerationSample[] = [];
  try {
    const batch = opts.batchSize ?? 16;
    for (let i = 0; i < pairs.length; i += batch) {
      const chunk = pairs.slice(i, i + batch);
      const results = await generator.generate(
        chunk.map((p) => p.prompt),
        { maxNewTokens: opts.maxNewTokens ?? 128, doSample: false },
      );
      results.forEach((r, j) =>
        samples.push({
          prompt: tok.decode(chunk[j].prompt, { skipSpecialTokens: true }),
          prediction: r.text,
          reference: tok.decode(chunk[j].reference, { skipSpecialTokens: true }),
          finishReason: r.finishReason,
        }),
      );
    }
  } finally {
    await generator.release();
  }
  const report = await scoreGeneration(samples, { metrics: ["bleu", "rouge", "stop_rate"], bootstrap: false });
  return { metrics: { ...report.metrics }, samples };
}
