/** LLaMA-Factory-shaped test material: a data folder with dataset_info.json, and recipes with the keys of LF's examples. */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

/** A fresh temporary folder. */
export function tempDir(prefix = "tunelab-lf-"): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

const QA: [string, string][] = [
  ["hi", "Hello! I am Tiny, an assistant. How can I help?"],
  ["who are you?", "I am Tiny, a small assistant trained with tunelab."],
  ["what can you do?", "I answer short questions."],
  ["hello", "Hello! How can I help you today?"],
];

/**
 * A data folder as LF's data/ is laid out: `identity` and `alpaca_en_demo` (alpaca), `c4_demo` (pre-training text,
 * columns {prompt: text}), `chat_demo` (sharegpt with custom tags), a folder entry, a ranking entry and a hub entry.
 */
export function writeLfDataDir(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const write = (name: string, value: unknown) => fs.writeFileSync(path.join(dir, name), typeof value === "string" ? value : JSON.stringify(value, null, 2));
  write(
    "identity.json",
    QA.map(([q, a]) => ({ instruction: q, input: "", output: a })),
  );
  write("alpaca_en_demo.json", [
    { instruction: "Add the two numbers.", input: "2 and 3", output: "5" },
    { instruction: "Name a colour.", input: "", output: "Blue." },
    { instruction: "Reverse the word.", input: "abc", output: "cba" },
    { instruction: "Say yes.", input: "", output: "Yes." },
    { instruction: "Count to three.", input: "", output: "1, 2, 3" },
    { instruction: "Double the number.", input: "4", output: "8" },
  ]);
  write(
    "c4_demo.jsonl",
    ["The cat sat on the mat.", "Two plus two is four.", "Rain falls in spring.", "A short text to learn from."]
      .map((t) => JSON.stringify({ text: t }))
      .join("\n") + "\n",
  );
  write("chat_demo.json", [
    {
      dialog: [
        { who: "asker", said: "ping" },
        { who: "bot", said: "pong" },
      ],
      sys: "Answer in one word.",
    },
    {
      dialog: [
        { who: "asker", said: "ding" },
        { who: "bot", said: "dong" },
      ],
    },
  ]);
  fs.mkdirSync(path.join(dir, "parts"), { recursive: true });
  fs.writeFileSync(path.join(dir, "parts", "b.jsonl"), JSON.stringify({ instruction: "second file", output: "B" }) + "\n");
  fs.writeFileSync(path.join(dir, "parts", "a.jsonl"), JSON.stringify({ instruction: "first file", output: "A" }) + "\n");
  write("dataset_info.json", {
    identity: { file_name: "identity.json" },
    alpaca_en_demo: { file_name: "alpaca_en_demo.json" },
    c4_demo: { file_name: "c4_demo.jsonl", columns: { prompt: "text" } },
    chat_demo: {
      file_name: "chat_demo.json",
      formatting: "sharegpt",
      columns: { messages: "dialog", system: "sys" },
      tags: { role_tag: "who", content_tag: "said", user_tag: "asker", assistant_tag: "bot" },
    },
    parts_demo: { file_name: "parts" },
    dpo_en_demo: {
      file_name: "dpo_en_demo.json",
      ranking: true,
      formatting: "sharegpt",
      columns: { messages: "conversations", chosen: "chosen", rejected: "rejected" },
    },
    hub_demo: { hf_hub_url: "someone/some-dataset" },
  });
  return dir;
}

/** The keys of LF's examples/train_lora/*_lora_sft.yaml, values of our own, paths pointing at `paths`. */
export function lfSftRecipe(paths: { model: string; dataDir: string; out: string }): string {
  return `### model
model_name_or_path: ${paths.model}
trust_remote_code: true

### method
stage: sft
do_train: true
finetuning_type: lora
lora_rank: 4
lora_target: all

### dataset
dataset: identity,alpaca_en_demo
dataset_dir: ${paths.dataDir}
template: qwen3_nothink
cutoff_len: 128
max_samples: 1000
preprocessing_num_workers: 16
dataloader_num_workers: 4

### output
output_dir: ${paths.out}
logging_steps: 1
save_steps: 500
plot_loss: true
overwrite_output_dir: true
save_only_model: false
report_to: none  # choices: [none, wandb, tensorboard, swanlab, mlflow]

### train
per_device_train_batch_size: 2
gradient_accumulation_steps: 2
learning_rate: 1.0e-3
num_train_epochs: 2.0
lr_scheduler_type: cosine
warmup_ratio: 0.1
bf16: true
ddp_timeout: 180000000
resume_from_checkpoint: null

### eval
# val_size: 0.1
# per_device_eval_batch_size: 1
# eval_strategy: steps
# eval_steps: 500
`;
}

/** The keys of LF's examples/train_lora/*_lora_pretrain.yaml. */
export function lfPretrainRecipe(paths: { model: string; dataDir: string; out: string }): string {
  return lfSftRecipe(paths)
    .replace("stage: sft", "stage: pt")
    .replace("dataset: identity,alpaca_en_demo", "dataset: c4_demo")
    .replace("template: qwen3_nothink\n", "");
}

/** The keys of LF's examples/train_qlora/*_lora_sft_otfq.yaml (on-the-fly 4-bit quantisation). */
export function lfQloraRecipe(paths: { model: string; dataDir: string; out: string }): string {
  return lfSftRecipe(paths)
    .replace(
      "trust_remote_code: true",
      "quantization_bit: 4  # choices: [8 (bnb/hqq/eetq), 4 (bnb/hqq), 3 (hqq), 2 (hqq)]\nquantization_method: bnb\ntrust_remote_code: true",
    )
    .replace("resume_from_checkpoint: null\n", "");
}
