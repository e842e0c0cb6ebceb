/** The README.md of an export folder: what is in it, how to run it, what comes back and how to open that in tunelab. */
import type { Recipe } from "../../train/recipe";
import { claimName, POD_WORKDIR, type LaunchPlan } from "./launch";
import type { LfDataNames } from "./data";

/** What the README states. */
export interface ReadmeFacts {
  recipe: Recipe;
  plan: LaunchPlan;
  data: LfDataNames;
  rows: { train: number; val: number; test: number };
  batch: { perDevice: number; accumulation: number; exact: boolean };
  outputDir: string;
  modelPath: string;
}

/** README.md text. */
export function readmeText(f: ReadmeFacts): string {
  const { plan, recipe } = f;
  const world = plan.nodes * plan.gpusPerNode;
  const tunelabBatch = recipe.per_device_train_batch_size * recipe.gradient_accumulation_steps;
  const batchLine = f.batch.exact
    ? `The global batch stays ${tunelabBatch} examples per optimizer step: ${f.batch.perDevice} per GPU x ${world} GPU(s) x ${f.batch.accumulation} accumulation step(s).`
    : `tunelab's batch of ${tunelabBatch} (${recipe.per_device_train_batch_size} x ${recipe.gradient_accumulation_steps}) does not divide over ${world} GPUs, so the ` +
      `YAML keeps both and the global batch becomes ${tunelabBatch * world}; change per_device_train_batch_size or gradient_accumulation_steps to choose.`;
  return `# LLaMA-Factory job exported by tunelab

Made by \`tunelab export-recipe\` from a tunelab recipe (kept as \`tunelab-recipe.yaml\`). It trains the same
thing on ${plan.nodes} node(s) x ${plan.gpusPerNode} GPU(s) with LLaMA-Factory${plan.deepspeed ? ` and DeepSpeed (\`${plan.deepspeed}\`)` : ""}.

| File | What |
| --- | --- |
| \`${plan.yaml}\` | the LLaMA-Factory training recipe (tunelab reads it back: \`tunelab train ${plan.yaml}\` runs the same recipe locally) |
| \`data/dataset_info.json\`, \`data/*.jsonl\` | the data after tunelab's split: \`${f.data.train}\` (${f.rows.train} rows) is trained on${f.data.val ? `, \`${f.data.val}\` (${f.rows.val} rows) is the validation set (\`eval_dataset\`)` : ""}${f.data.test ? `, \`${f.data.test}\` (${f.rows.test} rows) is held out for testing and not used by the job` : ""} |
${plan.deepspeed ? `| \`${plan.deepspeed}\` | DeepSpeed config ("auto" values come from the recipe) |\n` : ""}| \`train.sh\` | one node |
| \`train-multinode.sh\` | several nodes, run on each with \`NODE_RANK\` and \`MASTER_ADDR\` |
| \`slurm.sbatch\` | Slurm: \`sbatch slurm.sbatch\` |
| \`pytorchjob.yaml\` | Kubernetes with the Kubeflow training operator: \`kubectl apply -f pytorchjob.yaml\` |

${batchLine}

## Before you run

- Install LLaMA-Factory on every node (\`pip install llamafactory\`, plus \`deepspeed\` when a DeepSpeed config is used).
- The model: \`model_name_or_path\` is \`${f.modelPath}\`. It must exist at that path on every node (or be a Hugging
  Face Hub id); pass \`--model PATH\` to \`tunelab export-recipe\`, or edit the YAML, to point elsewhere.${recipe.adapter_name_or_path ? `\n- The adapter being continued, \`${recipe.adapter_name_or_path}\`, must be reachable the same way.` : ""}
- Several nodes: put this folder on storage every node sees (NFS, Lustre, a PVC), and run from it.

## Run

\`\`\`sh
./train.sh                                                   # one node
NODE_RANK=0 MASTER_ADDR=10.0.0.1 ./train-multinode.sh        # on node 0; NODE_RANK=1.. on the others
sbatch slurm.sbatch                                          # Slurm
kubectl apply -f pytorchjob.yaml                             # Kubeflow; the PVC "${claimName(plan)}" holds this folder at ${POD_WORKDIR}
\`\`\`

## What comes back

LLaMA-Factory writes \`${f.outputDir}/\`: the PEFT adapter (\`adapter_config.json\`, \`adapter_model.safetensors\`) or,
for full/freeze runs, the model; \`trainer_log.jsonl\` (one line per logging step: \`current_steps\`, \`loss\`, \`lr\`,
\`epoch\`, ...), \`trainer_state.json\` (\`log_history\` with train and eval losses), \`all_results.json\`,
\`train_results.json\`, \`eval_results.json\`, \`training_loss.png\`, and \`checkpoint-N/\` folders.

Bring it back to the notebook:

\`\`\`ts
import { Run } from "tunelab";
const run = await Run.open("${f.outputDir}");   // this folder's ${f.outputDir}/, copied back if the job ran elsewhere
run.lossCurve();                                 // train and eval loss from trainer_state.json / trainer_log.jsonl
await run.evaluate({ split: "test" });           // the adapter on the held-out test rows of data/test.jsonl
\`\`\`

or from a shell: \`tunelab show ${f.outputDir}\`.

## Differences from a tunelab run

- Data order and LoRA initialisation come from PyTorch's random generators, so losses match a tunelab run in
  trend, not bit for bit.
- tunelab's \`checkpoint-N\` folders are not transformers checkpoints: a LLaMA-Factory job starts fresh.
`;
}
