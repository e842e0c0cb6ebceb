/**
 * export-recipe --to llamafactory: the LF YAML reads back to the same resolved recipe on the same rows; the global
 * batch is kept over GPUs; scripts parse in bash; the PyTorchJob validates against Kubeflow's CRD schema and
 * Kubernetes' PodTemplateSpec; DeepSpeed configs are LF's.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import Ajv, { type ErrorObject } from "ajv";
import YAML from "yaml";
import { createTinyModel } from "../../sdk/io/tiny";
import { exportLlamaFactory, pyTorchJob, scaleBatch } from "../../sdk/export/llamafactory";
import { loadSplits } from "../../sdk/train/prepare";
import { readRecipe, resolveRecipe, type Recipe } from "../../sdk/train/recipe";
import { command as exportCommand } from "../../sdk/cli/commands/export-recipe";
import { tempDir } from "./helpers";

const root = path.resolve(__dirname, "..", "..", "..");
const tmp = tempDir();
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const model = path.join(tmp, "tiny-llama");
createTinyModel({ arch: "llama", out: model, seed: 0, hiddenSize: 32, numLayers: 1, numHeads: 4, numKvHeads: 2 });

const recipe = resolveRecipe({
  model_name_or_path: model,
  dataset_path: path.join(root, "data/alpaca_tasks.json"),
  output_dir: path.join(tmp, "local-run"),
  val_size: 0.1,
  test_size: 0.1,
  augment: { synonyms: 0.1, per_row: 1 },
  learning_rate: 2e-4,
  max_steps: 0,
  num_train_epochs: 2,
  per_device_train_batch_size: 4,
  gradient_accumulation_steps: 4,
  lora_rank: 8,
  lora_alpha: 24,
  lora_dropout: 0.05,
  lora_target: "q_proj,v_proj",
  use_rslora: true,
  lr_scheduler_type: "cosine",
  warmup_ratio: 0.1,
  warmup_steps: 0,
  weight_decay: 0.01,
  eval_steps: 5,
  early_stopping_steps: 3,
  save_steps: 10,
  logging_steps: 2,
  cutoff_len: 256,
  gradient_checkpointing: true,
  seed: 7,
});

/** Keys that say where things are (or the local device), not what is trained: compared by content below instead. */
const WHERE = [
  "dataset_path",
  "dataset",
  "dataset_dir",
  "eval_dataset",
  "formatting",
  "val_size",
  "test_size",
  "augment",
  "max_samples",
  "output_dir",
  "device",
];
const meaning = (r: Recipe) => Object.fromEntries(Object.entries(r).filter(([k]) => !WHERE.includes(k)));

/** readRecipe from inside the export folder, as LLaMA-Factory's launcher runs there. */
function readBack(dir: string): { recipe: Recipe; notices: string[] } {
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    const notices: string[] = [];
    const r = readRecipe("llamafactory.yaml", { notice: (l) => notices.push(l) });
    return { recipe: { ...r, dataset_path: path.resolve(r.dataset_path as string) }, notices };
  } finally {
    process.chdir(cwd);
  }
}

test("round trip: tunelab recipe -> LF YAML -> read back by tunelab -> the same resolved recipe on the same rows", async () => {
  const out = path.join(tmp, "job1");
  const result = await exportLlamaFactory(recipe, { out });
  const { recipe: back, notices } = readBack(out);
  assert.deepEqual(meaning(back), meaning(recipe));
  assert.deepEqual(
    notices.map((l) => l.replace(/^llamafactory\.yaml: /, "").split(":")[0]),
    ["plot_loss"],
    "only plot_loss (LF draws a PNG) has no effect here",
  );
  // Same rows: train (with the augmented copies) and val come back from data/, test is held out beside them.
  const original = await loadSplits(recipe);
  const again = await loadSplits(back);
  const content = (rows: readonly { kind: string }[]) => rows.map((r) => JSON.stringify({ ...r, provenance: undefined }));
  assert.deepEqual(content(again.train.rows), content(original.train.rows));
  assert.deepEqual(content(again.val.rows), content(original.val.rows));
  assert.equal(again.test.length, 0, "the LF job never sees the test rows");
  assert.deepEqual(result.rows, { train: original.train.length, val: original.val.length, test: original.test.length });
  assert.ok(
    original.train.rows.some((r) => r.provenance.augmented),
    "augmented rows were exported",
  );
  const test_ = fs
    .readFileSync(path.join(out, "data", "test.jsonl"), "utf8")
    .trim()
    .split("\n");
  assert.equal(test_.length, original.test.length);
  // The YAML is valid YAML 1.1 for PyYAML: no exponent without a dot.
  const yamlText = fs.readFileSync(path.join(out, "llamafactory.yaml"), "utf8");
  assert.doesNotMatch(yamlText, /: -?\d+e-?\d+$/m);
  assert.match(yamlText, /^adam_epsilon: 1\.0e-8$/m);
  assert.equal(readRecipe(path.join(out, "tunelab-recipe.yaml")).learning_rate, recipe.learning_rate);
});

test("2 nodes x 4 GPUs with ZeRO-3: the global batch is kept, scripts parse, DeepSpeed config is LF's", async () => {
  const out = path.join(tmp, "job2");
  const code = await exportCommand.run([
    "recipe.yaml".replace("recipe.yaml", writeRecipeFile()),
    "--to",
    "llamafactory",
    "--out",
    out,
    "--nodes",
    "2",
    "--gpus-per-node",
    "4",
    "--deepspeed",
    "zero3",
  ]);
  assert.equal(code, 0);
  const lf = YAML.parse(fs.readFileSync(path.join(out, "llamafactory.yaml"), "utf8"));
  assert.equal(lf.per_device_train_batch_size * lf.gradient_accumulation_steps * 8, recipe.per_device_train_batch_size * recipe.gradient_accumulation_steps);
  assert.equal(lf.deepspeed, undefined, "DeepSpeed comes on the command line, so tunelab still reads the YAML");
  const ds = JSON.parse(fs.readFileSync(path.join(out, "ds_z3_config.json"), "utf8"));
  assert.equal(ds.zero_optimization.stage, 3);
  assert.equal(ds.train_micro_batch_size_per_gpu, "auto");
  assert.equal(ds.zero_optimization.stage3_gather_16bit_weights_on_model_save, true);
  for (const script of ["train.sh", "train-multinode.sh", "slurm.sbatch"]) {
    const check = spawnSync("bash", ["-n", path.join(out, script)], { encoding: "utf8" });
    assert.equal(check.status, 0, `${script}: ${check.stderr}`);
    assert.match(fs.readFileSync(path.join(out, script), "utf8"), /FORCE_TORCHRUN=1 .*llamafactory-cli train llamafactory\.yaml deepspeed=ds_z3_config\.json/s);
  }
  const multi = fs.readFileSync(path.join(out, "train-multinode.sh"), "utf8");
  for (const v of ["NNODES", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT", "NPROC_PER_NODE"]) assert.match(multi, new RegExp(`${v}=`));
  assert.match(fs.readFileSync(path.join(out, "slurm.sbatch"), "utf8"), /#SBATCH --nodes=2\n#SBATCH --ntasks-per-node=1\n#SBATCH --gpus-per-node=4/);
  // The multi-node script refuses to start without its rank.
  const noRank = spawnSync("bash", [path.join(out, "train-multinode.sh")], { encoding: "utf8", env: { PATH: process.env.PATH ?? "" } });
  assert.notEqual(noRank.status, 0);
  assert.match(noRank.stderr, /NODE_RANK: set NODE_RANK: 0 on the master node/);
  const readme = fs.readFileSync(path.join(out, "README.md"), "utf8");
  assert.match(readme, /The global batch stays 16 examples per optimizer step: 2 per GPU x 8 GPU\(s\) x 1 accumulation/);
  assert.match(readme, /Run\.open\("output"\)/);
});

test("the PyTorchJob validates against Kubeflow's PyTorchJob schema and Kubernetes' PodTemplateSpec", async () => {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a parsed manifest, checked by the schemas below
  const manifest: any = YAML.parse(fs.readFileSync(path.join(tmp, "job2", "pytorchjob.yaml"), "utf8"));
  const schema = JSON.parse(fs.readFileSync(path.join(root, "test", "lf", "fixtures", "pytorchjob.schema.json"), "utf8"));
  const ajv = new Ajv({ allErrors: true, formats: { int32: true, int64: true } });
  // Not ajv's type guard: it would narrow the manifest to unknown.
  const validate = ajv.compile(schema) as ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };
  assert.ok(validate(manifest), JSON.stringify(validate.errors));
  const importEsm = new Function("s", "return import(s)") as (s: string) => Promise<{ PodTemplateSpec: new (d: unknown) => { validate(): void } }>;
  const { PodTemplateSpec } = await importEsm("kubernetes-models/v1/PodTemplateSpec");
  const specs = manifest.spec.pytorchReplicaSpecs;
  let pods = 0;
  for (const [type, spec] of Object.entries(specs) as [
    string,
    { replicas: number; template: { spec: { containers: { name: string; args: string[]; resources: { limits: Record<string, number> } }[] } } },
  ][]) {
    new PodTemplateSpec(spec.template).validate();
    pods += spec.replicas;
    const c = spec.template.spec.containers[0];
    assert.equal(c.name, "pytorch", `${type}: the training operator configures the container named pytorch`);
    assert.equal(c.resources.limits["nvidia.com/gpu"], 4, `${type}: 4 GPUs per worker`);
    const parsed = spawnSync("bash", ["-n", "-c", c.args[0]], { encoding: "utf8" });
    assert.equal(parsed.status, 0, `${type}: the container command parses in bash: ${parsed.stderr}`);
    assert.match(c.args[0], /NNODES="\$\{PET_NNODES:-\$WORLD_SIZE\}" NODE_RANK="\$\{PET_NODE_RANK:-\$RANK\}" NPROC_PER_NODE=4 /);
  }
  assert.equal(pods, 2, "one pod per node");
  // The schema is not a rubber stamp: a misspelt replica type, a wrong restart policy and a bad container fail.
  const bad = structuredClone(manifest);
  bad.spec.pytorchReplicaSpecs.Wroker = bad.spec.pytorchReplicaSpecs.Worker;
  bad.spec.pytorchReplicaSpecs.Master.restartPolicy = "Sometimes";
  assert.equal(validate(bad), false);
  assert.deepEqual(validate.errors!.map((e) => e.keyword).sort(), ["enum", "enum", "propertyNames"].sort());
  const badPod = pyTorchJob({ yaml: "x.yaml", nodes: 1, gpusPerNode: 1, name: "n", image: "i" }) as {
    spec: { pytorchReplicaSpecs: { Master: { template: { spec: { containers: { name: unknown }[] } } } } };
  };
  badPod.spec.pytorchReplicaSpecs.Master.template.spec.containers[0].name = 5;
  assert.throws(() => new PodTemplateSpec(badPod.spec.pytorchReplicaSpecs.Master.template).validate(), /name must be string/);
});

test("batches over GPUs, and recipes LF cannot run the same way, are said plainly", async () => {
  assert.deepEqual(scaleBatch(16, 1, 8), { perDevice: 2, accumulation: 1, exact: true });
  assert.deepEqual(scaleBatch(4, 4, 2), { perDevice: 4, accumulation: 2, exact: true });
  assert.deepEqual(scaleBatch(3, 1, 2), { perDevice: 3, accumulation: 1, exact: false });
  const cls = resolveRecipe({ model_name_or_path: model, dataset_path: path.join(root, "data/support_tickets.jsonl"), output_dir: "o", stage: "cls" });
  await assert.rejects(exportLlamaFactory(cls, { out: path.join(tmp, "cls") }), /stage cls \(sequence classification\) has no LLaMA-Factory stage/);
  assert.equal(fs.existsSync(path.join(tmp, "cls")), false, "nothing written");
  await assert.rejects(exportLlamaFactory(recipe, { out: path.join(tmp, "job1") }), /is not empty; choose a new folder or pass --overwrite/);
  await assert.rejects(
    exportLlamaFactory({ ...recipe, save_steps: 7 }, { out: path.join(tmp, "es") }),
    /needs save_steps to be a multiple of eval_steps \(5\), got save_steps 7; set save_steps: 10/,
  );
  await assert.rejects(
    exportLlamaFactory(recipe, { out: path.join(tmp, "j"), deepspeed: "zero4" as never }),
    /--deepspeed must be zero2, zero3, zero3-offload/,
  );
});

function writeRecipeFile(): string {
  const file = path.join(tmp, "recipe.yaml");
  fs.writeFileSync(file, YAML.stringify(recipe));
  return file;
}
