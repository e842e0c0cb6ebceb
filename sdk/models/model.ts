/** A local Hugging Face model folder opened for training, evaluation and generation. */
import * as fs from "node:fs";
import * as path from "node:path";
import { GenerationConfig, ModelConfig, readGenerationConfig, readModelConfig } from "../io/config";
import { openWeights } from "../io/safetensors";
import { Tokenizer } from "../io/tokenizer";
import { FrozenWeights } from "./weights";

/** A base model: config, frozen weights (read lazily) and tokenizer. */
export interface BaseModel {
  /** The folder it was read from. */
  readonly dir: string;
  readonly config: ModelConfig;
  readonly weights: FrozenWeights;
  readonly tokenizer: Tokenizer;
  readonly generationConfig: GenerationConfig | null;
}

/** Opens a HF model folder (config.json, *.safetensors, tokenizer files); fails naming what is missing. */
export function openModel(dir: string): BaseModel {
  const abs = path.resolve(dir);
  if (!fs.existsSync(abs) || !fs.statSync(abs).isDirectory()) {
    throw new Error(`model folder ${abs} does not exist; create a tiny one with: tunelab model create --arch qwen2 --out ${dir}`);
  }
  const config = readModelConfig(abs);
  return {
    dir: abs,
    config,
    weights: new FrozenWeights(openWeights(abs)),
    tokenizer: Tokenizer.fromDir(abs),
    generationConfig: readGenerationConfig(abs),
  };
}
