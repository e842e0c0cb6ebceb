/**
 * `tunelab export-recipe --to llamafactory`: a folder LLaMA-Factory runs on one node or many — the LF YAML, the data
 * after tunelab's split, DeepSpeed config, launch scripts (shell, multi-node, Slurm, Kubeflow PyTorchJob) and a README.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { loadSplits } from "../../train/prepare";
import { recipeToYaml, type Recipe } from "../../train/recipe";
import { writeLfData } from "./data";
import { DEEPSPEED_FILE, DEEPSPEED_STAGES, deepSpeedConfig, type DeepSpeedStage } from "./deepspeed";
import { multiNodeScript, pyTorchJobYaml, singleNodeScript, slurmScript, type LaunchPlan } from "./launch";
import { readmeText } from "./readme";
import { lfRecipeOf, lfRecipeYaml, scaleBatch } from "./recipe";

export { DEEPSPEED_STAGES, type DeepSpeedStage } from "./deepspeed";
export { pyTorchJob, type LaunchPlan } from "./launch";
export { lfRecipeOf, scaleBatch } from "./recipe";

/** Options of exportLlamaFactory. */
export interface LlamaFactoryExportOptions {
  /** The folder to write (created; must be empty or absent unless `overwrite`). */
  out: string;
  /** Nodes (default 1). */
  nodes?: number;
  /** GPUs per node (default 1). */
  gpusPerNode?: number;
  deepspeed?: DeepSpeedStage;
  /** model_name_or_path in the LF YAML (default: the recipe's). */
  model?: string;
  /** Container image for the PyTorchJob (default hiyouga/llamafactory:latest, LF's published image). */
  image?: string;
  overwrite?: boolean;
}

/** What was written. */
export interface LlamaFactoryExport {
  dir: string;
  /** Paths relative to `dir`. */
  files: string[];
  /** Rows per part of the split. */
  rows: { train: number; val: number; test: number };
  /** Whether the global batch is the recipe's exactly. */
  batchKept: boolean;
}

/** The files' names in the export folder. */
export const LF_EXPORT_FILES = {
  yaml: "llamafactory.yaml",
  recipe: "tunelab-recipe.yaml",
  dataDir: "data",
  outputDir: "output",
} as const;

const positive = (v: number | undefined, name: string, d: number) => {
  const n = v ?? d;
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`export-recipe: ${name} must be a positive whole number, got ${v}`);
  return n;
};

/** Writes the LLaMA-Factory job of `recipe` into options.out. */
export async function exportLlamaFactory(recipe: Recipe, options: LlamaFactoryExportOptions): Promise<LlamaFactoryExport> {
  const nodes = positive(options.nodes, "--nodes", 1);
  const gpusPerNode = positive(options.gpusPerNode, "--gpus-per-node", 1);
  if (options.deepspeed !== undefined && !DEEPSPEED_STAGES.includes(options.deepspeed)) {
    throw new Error(`export-recipe: --deepspeed must be ${DEEPSPEED_STAGES.join(", ")}, got ${JSON.stringify(options.deepspeed)}`);
  }
  const dir = path.resolve(options.out);
  if (fs.existsSync(dir) && fs.readdirSync(dir).length > 0 && !options.overwrite) {
    throw new Error(`export-recipe: ${dir} is not empty; choose a new folder or pass --overwrite`);
  }
  const scale = { nodes, gpusPerNode };
  const modelPath = options.model ?? recipe.model_name_or_path;
  // Checked before any file is written, so a recipe LF cannot run leaves nothing behind.
  lfRecipeOf(recipe, { datasetDir: LF_EXPORT_FILES.dataDir, train: "x", outputDir: LF_EXPORT_FILES.outputDir }, scale, modelPath);
  const splits = await loadSplits(recipe);
  fs.mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  const write = (name: string, text: string, mode?: number) => {
    fs.writeFileSync(path.join(dir, name), text, mode ? { mode } : undefined);
    files.push(name);
  };

  const data = writeLfData(path.join(dir, LF_EXPORT_FILES.dataDir), splits);
  files.push(...fs.readdirSync(path.join(dir, LF_EXPORT_FILES.dataDir)).map((f) => `${LF_EXPORT_FILES.dataDir}/${f}`));
  const layout = { datasetDir: LF_EXPORT_FILES.dataDir, train: data.train, val: data.val, outputDir: LF_EXPORT_FILES.outputDir };
  const groups = lfRecipeOf(recipe, layout, scale, modelPath);
  write(LF_EXPORT_FILES.yaml, lfRecipeYaml(groups, `# LLaMA-Factory recipe written by tunelab export-recipe; run with ./train.sh (see README.md)`));
  write(LF_EXPORT_FILES.recipe, recipeToYaml(recipe));
  const deepspeed = options.deepspeed ? DEEPSPEED_FILE[options.deepspeed] : undefined;
  if (options.deepspeed && deepspeed) write(deepspeed, JSON.stringify(deepSpeedConfig(options.deepspeed), null, 2) + "\n");
  const name = `tunelab-${
    path
      .basename(dir)
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, "-")
      .replace(/^-+|-+$/g, "") || "job"
  }`
    .slice(0, 63)
    .replace(/-+$/, "");
  const plan: LaunchPlan = {
    yaml: LF_EXPORT_FILES.yaml,
    nodes,
    gpusPerNode,
    deepspeed,
    name,
    image: options.image ?? "hiyouga/llamafactory:latest",
  };
  write("train.sh", singleNodeScript(plan), 0o755);
  write("train-multinode.sh", multiNodeScript(plan), 0o755);
  write("slurm.sbatch", slurmScript(plan), 0o755);
  write("pytorchjob.yaml", pyTorchJobYaml(plan));
  const rows = { train: splits.train.length, val: splits.val.length, test: splits.test.length };
  const batch = scaleBatch(recipe.per_device_train_batch_size, recipe.gradient_accumulation_steps, nodes * gpusPerNode);
  write("README.md", readmeText({ recipe, plan, data, rows, batch, outputDir: LF_EXPORT_FILES.outputDir, modelPath }));
  return { dir, files, rows, batchKept: batch.exact };
}
