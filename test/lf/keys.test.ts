/**
 * LLaMA-Factory recipes run as written: every key of LF's argument classes is honoured, noticed once or refused with
 * an alternative; dataset + dataset_dir resolve through dataset_info.json as LF resolves them; recipes with the keys
 * of LF's LoRA SFT, pre-training and QLoRA examples train through `tunelab train` with only paths changed.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { createTinyModel } from "../../sdk/io/tiny";
import { loadDataset } from "../../sdk/data/load";
import { readRecipe, resolveRecipe, type RecipeInput } from "../../sdk/train/recipe";
import { IGNORED_KEYS, optionSpec } from "../../sdk/train/recipe-schema";
import { LF_KEYS, lfKeysMarkdown } from "../../sdk/train/recipe-lf-keys";
import { loadSplits } from "../../sdk/train/prepare";
import { train } from "../../sdk/train/trainer";
import { command as trainCommand } from "../../sdk/cli/commands/train";
import { lfPretrainRecipe, lfQloraRecipe, lfSftRecipe, tempDir, writeLfDataDir } from "./helpers";

const root = path.resolve(__dirname, "..", "..", "..");
const tmp = tempDir();
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const model = path.join(tmp, "tiny-llama");
createTinyModel({ arch: "llama", out: model, seed: 0, hiddenSize: 32, numLayers: 1, numHeads: 4, numKvHeads: 2 });
const dataDir = writeLfDataDir(path.join(tmp, "data"));

/**
 * Keys whose schema rows other branches add (bit widths, quantisation): until they are merged, a recipe here is read
 * without them. Once `optionSpec(key)` knows them nothing is removed and the recipes below run exactly as written.
 */
const PENDING_ROWS = ["bf16", "quantization_bit", "quantization_method", "quantization_type", "double_quantization", "use_dora"];

function writeRecipe(name: string, text: string): string {
  const pending = PENDING_ROWS.filter((k) => !optionSpec(k));
  const kept = text
    .split("\n")
    .filter((line) => !pending.some((k) => line.startsWith(`${k}:`)))
    .join("\n");
  const file = path.join(tmp, name);
  fs.writeFileSync(file, kept);
  return file;
}

/** Field names of LF's argument classes (src/llamafactory/hparams/*.py, fields with init=True) and transformers' Seq2SeqTrainingArguments. */
const LF_FIELDS = {
  model:
    "model_name_or_path adapter_name_or_path adapter_folder cache_dir use_fast_tokenizer resize_vocab split_special_tokens add_tokens add_special_tokens new_special_tokens_config init_special_tokens model_revision low_cpu_mem_usage rope_scaling flash_attn shift_attn mixture_of_depths use_unsloth use_unsloth_gc enable_liger_kernel moe_aux_loss_coef disable_gradient_checkpointing use_reentrant_gc upcast_layernorm upcast_lmhead_output train_from_scratch infer_backend offload_folder use_kv_cache use_v1_kernels infer_dtype hf_hub_token ms_hub_token om_hub_token print_param_status trust_remote_code quantization_method quantization_bit quantization_type double_quantization quantization_device_map image_max_pixels image_min_pixels image_do_pan_and_scan crop_to_patches video_max_pixels video_min_pixels video_fps video_maxlen use_audio_in_video audio_sampling_rate export_dir export_size export_device export_quantization_bit export_quantization_dataset export_quantization_nsamples export_quantization_maxlen export_legacy_format export_hub_model_id vllm_maxlen vllm_gpu_util vllm_enforce_eager vllm_max_lora_rank vllm_config sglang_maxlen sglang_mem_fraction sglang_tp_size sglang_config sglang_lora_backend use_kt kt_cpu_activation kt_weight_path kt_non_expert_weight_path kt_expert_checkpoint_path kt_use_lora_experts kt_lora_expert_num kt_lora_expert_intermediate_size",
  data: "template dataset eval_dataset dataset_dir media_dir cutoff_len train_on_prompt mask_history streaming buffer_size mix_strategy interleave_probs overwrite_cache preprocessing_batch_size preprocessing_num_workers max_samples eval_num_beams ignore_pad_token_for_loss val_size eval_on_each_dataset packing neat_packing tool_format default_system enable_thinking preserve_thinking tokenized_path data_shared_file_system",
  finetuning:
    "freeze_trainable_layers freeze_trainable_modules freeze_extra_modules additional_target lora_alpha lora_dropout lora_rank lora_target loraplus_lr_ratio loraplus_lr_embedding use_rslora use_dora pissa_init pissa_iter pissa_convert create_new_adapter module_dropout oft_rank oft_block_size oft_target pref_beta pref_ftx pref_bco_weight pref_loss dpo_label_smoothing kto_chosen_weight kto_rejected_weight simpo_gamma ppo_buffer_size ppo_epochs ppo_score_norm ppo_target ppo_whiten_rewards ref_model ref_model_adapters ref_model_quantization_bit reward_model reward_model_adapters reward_model_quantization_bit reward_model_type ld_alpha use_galore galore_target galore_rank galore_update_interval galore_scale galore_proj_type galore_layerwise use_apollo apollo_target apollo_rank apollo_update_interval apollo_scale apollo_proj apollo_proj_type apollo_scale_type apollo_layerwise apollo_scale_front use_badam badam_mode badam_start_block badam_switch_mode badam_switch_interval badam_update_ratio badam_mask_mode badam_verbose use_swanlab swanlab_project swanlab_workspace swanlab_run_name swanlab_mode swanlab_api_key swanlab_logdir swanlab_lark_webhook_url swanlab_lark_secret pure_bf16 stage finetuning_type use_llama_pro use_adam_mini use_mca use_megatron_bridge use_hyper_parallel hyper_parallel_args hyper_parallel_cp_size use_muon use_dft_loss use_asft_loss asft_alpha use_eaft_loss eaft_alpha freeze_vision_tower freeze_multi_modal_projector freeze_language_model compute_accuracy disable_shuffling early_stopping_steps plot_loss include_effective_tokens_per_second",
  training:
    "ray_num_workers ray_init_kwargs master_addr master_port enable_torch_profiler profiler_output_dir profiler_wait_steps profiler_warmup_steps profiler_active_steps profiler_repeat profiler_record_shapes profiler_profile_memory profiler_with_stack profile_modules fp8 fp8_backend fp8_enable_fsdp_float8_all_gather overwrite_output_dir " +
    // transformers' TrainingArguments
    "output_dir per_device_train_batch_size num_train_epochs max_steps learning_rate lr_scheduler_type lr_scheduler_kwargs warmup_steps optim optim_args weight_decay adam_beta1 adam_beta2 adam_epsilon optim_target_modules gradient_accumulation_steps average_tokens_across_devices max_grad_norm label_smoothing_factor bf16 fp16 bf16_full_eval fp16_full_eval tf32 gradient_checkpointing gradient_checkpointing_kwargs torch_compile torch_compile_backend torch_compile_mode use_liger_kernel liger_kernel_config use_cache neftune_noise_alpha torch_empty_cache_steps auto_find_batch_size logging_strategy logging_steps logging_first_step log_on_each_node logging_nan_inf_filter include_num_input_tokens_seen log_level log_level_replica disable_tqdm report_to run_name project trackio_space_id eval_strategy eval_steps eval_delay per_device_eval_batch_size prediction_loss_only eval_on_start eval_do_concat_batches eval_use_gather_object eval_accumulation_steps include_for_metrics batch_eval_metrics save_only_model save_strategy save_steps save_on_each_node save_total_limit enable_jit_checkpoint push_to_hub hub_token hub_private_repo hub_model_id hub_strategy hub_always_push hub_revision load_best_model_at_end metric_for_best_model greater_is_better ignore_data_skip restore_callback_states_from_checkpoint full_determinism seed data_seed use_cpu accelerator_config parallelism_config dataloader_drop_last dataloader_num_workers dataloader_pin_memory dataloader_persistent_workers dataloader_prefetch_factor remove_unused_columns label_names train_sampling_strategy length_column_name ddp_find_unused_parameters ddp_bucket_cap_mb ddp_broadcast_buffers ddp_backend ddp_timeout fsdp fsdp_config deepspeed debug skip_memory_metrics do_train do_eval do_predict resume_from_checkpoint warmup_ratio logging_dir local_rank " +
    // older transformers spellings LF recipes still carry, and Seq2SeqTrainingArguments
    "evaluation_strategy group_by_length save_safetensors no_cuda sortish_sampler predict_with_generate generation_max_length generation_num_beams generation_config",
  generating: "do_sample temperature top_p top_k num_beams max_length max_new_tokens repetition_penalty length_penalty skip_special_tokens",
};

/** Keys read as LF reads them and translated into tunelab options (recipe-lf.ts). */
const TRANSLATED = ["eval_strategy", "evaluation_strategy", "save_strategy"];

test("every field of LF's argument classes is a recipe option, a noticed key, a refused key or translated", () => {
  const missing: string[] = [];
  for (const names of Object.values(LF_FIELDS)) {
    for (const key of names.split(" ")) {
      const known = optionSpec(key) || LF_KEYS[key] || IGNORED_KEYS.includes(key) || TRANSLATED.includes(key) || PENDING_ROWS.includes(key);
      if (!known && !key.startsWith("quantization_")) missing.push(key);
    }
  }
  assert.deepEqual(missing, []);
  // A key no one knows is still an error naming it.
  assert.throws(
    () => resolveRecipe({ model_name_or_path: "m", dataset_path: "d.jsonl", output_dir: "o", lora_rnak: 8 } as never),
    /unknown option "lora_rnak"/,
  );
});

test("docs/llamafactory-keys.md is the table's (regenerate it from lfKeysMarkdown())", () => {
  const doc = fs.readFileSync(path.join(root, "docs", "llamafactory-keys.md"), "utf8");
  assert.equal(doc, lfKeysMarkdown());
});

test("an LF LoRA SFT recipe trains as written: one notice per key without effect, LF's readings of epochs and warmup", async () => {
  const out = path.join(tmp, "saves-sft");
  const file = writeRecipe("lf_lora_sft.yaml", lfSftRecipe({ model, dataDir, out }));
  const notices: string[] = [];
  const recipe = readRecipe(file, { notice: (l) => notices.push(l) });
  // Honoured keys, read the LF way.
  assert.equal(recipe.dataset, "identity,alpaca_en_demo");
  assert.equal(recipe.dataset_path, path.join(dataDir, "dataset_info.json"));
  assert.equal(recipe.max_steps, 0, "num_train_epochs without max_steps trains by epochs");
  assert.equal(recipe.num_train_epochs, 2);
  assert.equal(recipe.warmup_steps, 0, "warmup_ratio without warmup_steps warms up by ratio");
  assert.equal(recipe.warmup_ratio, 0.1);
  assert.equal(recipe.template, undefined, "an LF template tunelab lacks means the tokenizer's own");
  assert.equal(recipe.resume_from_checkpoint, undefined, "null is unset");
  assert.equal(recipe.lora_rank, 4);
  assert.equal(recipe.overwrite_output_dir, true);
  // One notice per key that has no effect; keys at their off value say nothing.
  const keysNoticed = notices.map((l) => /^[^:]+: ([a-z_0-9]+): /.exec(l)?.[1]);
  assert.deepEqual(
    keysNoticed.sort(),
    ["dataloader_num_workers", "ddp_timeout", "plot_loss", "preprocessing_num_workers", "template", "trust_remote_code"].sort(),
  );
  for (const l of notices) assert.ok(l.startsWith(`${file}: `), l);
  assert.match(
    notices.find((l) => l.includes("trust_remote_code"))!,
    /no effect in tunelab: tunelab runs no Python from the model folder/,
  );
  const result = await train(recipe);
  const rows = 4 + 6;
  assert.equal(result.data.train.length, rows, "both datasets of the comma list are trained on");
  // As transformers counts: floor(ceil(10 / 2) micro-batches / 2 accumulated) = 2 steps an epoch, 2 epochs.
  assert.equal(result.steps, Math.floor(Math.ceil(rows / 2) / 2) * 2);
  assert.ok(fs.existsSync(path.join(out, "adapter_model.safetensors")));
  // The run manifest hashes the files the datasets were read from, not only dataset_info.json.
  const manifest = JSON.parse(fs.readFileSync(path.join(out, "run.json"), "utf8")) as { data: { path: string }[] };
  assert.deepEqual(
    manifest.data.map((d) => path.basename(d.path)),
    ["dataset_info.json", "identity.json", "alpaca_en_demo.json"],
  );
});

test("tunelab train prints each notice once on stderr and trains an LF pre-training recipe", async () => {
  const out = path.join(tmp, "saves-pt");
  const file = writeRecipe("lf_lora_pretrain.yaml", lfPretrainRecipe({ model, dataDir, out }));
  const lines: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  let code: number;
  try {
    code = await trainCommand.run([file, "--num_train_epochs", "1"]);
  } finally {
    process.stderr.write = write;
  }
  assert.equal(code, 0);
  const notices = lines
    .join("")
    .split("\n")
    .filter((l) => l.startsWith("notice: "));
  assert.equal(notices.filter((l) => l.includes("plot_loss")).length, 1);
  assert.ok(notices.some((l) => /packing: unset; LLaMA-Factory packs stage pt data by default/.test(l)));
  const recipe = readRecipe(path.join(out, "recipe.yaml"));
  assert.equal(recipe.stage, "pt");
  assert.equal(recipe.num_train_epochs, 1, "the command-line override won");
  const splits = await loadSplits(recipe);
  assert.equal(splits.train.length, 4, "c4_demo's {prompt: text} column read as pre-training text");
  assert.equal(splits.train.rows[0].kind, "pretrain");
});

test(
  "an LF QLoRA recipe (quantization_bit 4) trains once the quantisation rows are in the schema",
  { skip: !optionSpec("quantization_bit") && "quantization_* rows are added by another branch" },
  async () => {
    const out = path.join(tmp, "saves-qlora");
    // Linears whose widths are multiples of bitsandbytes' block of 64, as every real model's are.
    const wide = path.join(tmp, "tiny-llama-64");
    createTinyModel({ arch: "llama", out: wide, seed: 0, hiddenSize: 64, intermediateSize: 128, numLayers: 1, numHeads: 4, numKvHeads: 2 });
    const recipe = readRecipe(writeRecipe("lf_qlora_sft.yaml", lfQloraRecipe({ model: wide, dataDir, out })));
    const result = await train(recipe);
    assert.ok(result.steps > 0);
    assert.ok(fs.existsSync(path.join(out, "adapter_model.safetensors")));
  },
);

test("refusals say why and what to do instead", () => {
  const base = { model_name_or_path: model, dataset: "identity", dataset_dir: dataDir, output_dir: path.join(tmp, "x") };
  const refused = (extra: Record<string, unknown>) => () => resolveRecipe({ ...base, ...extra } as RecipeInput, "r.yaml");
  assert.throws(
    refused({ deepspeed: "ds_z3_config.json" }),
    /r\.yaml: deepspeed: "ds_z3_config\.json" is not supported: DeepSpeed: .*use `tunelab export-recipe RECIPE\.yaml --to llamafactory/,
  );
  assert.throws(refused({ stage: "dpo" }), /r\.yaml: stage dpo \(preference training\) is not supported yet; train it with LLaMA-Factory/);
  assert.throws(refused({ stage: "ppo" }), /stage ppo is not supported yet/);
  assert.throws(refused({ use_galore: true }), /use_galore: true is not supported: the GaLore optimizer is not supported; use optim: adamw, sgd or lion/);
  assert.throws(refused({ eval_strategy: "epoch" }), /eval_strategy: "epoch" is not supported.*eval_strategy: steps with eval_steps/);
  assert.throws(refused({ val_size: 0.1, eval_dataset: "alpaca_en_demo" }), /eval_dataset and val_size are both given/);
});

test("secrets are accepted without echoing them; off values are silent; strategies translate", () => {
  const notices: string[] = [];
  const base = { model_name_or_path: model, dataset: "identity", dataset_dir: dataDir, output_dir: path.join(tmp, "x") };
  const r = resolveRecipe(
    { ...base, hf_hub_token: "hf_secret", use_unsloth: false, report_to: "none", eval_strategy: "steps", val_size: 0.2, logging_steps: 7 } as RecipeInput,
    "r.yaml",
    { notice: (l) => notices.push(l) },
  );
  assert.equal(notices.length, 1);
  assert.ok(!notices[0].includes("hf_secret"));
  assert.match(notices[0], /hf_hub_token: \(value not shown\) has no effect/);
  assert.equal(r.eval_steps, 7, "eval_strategy steps without eval_steps evaluates every logging_steps (transformers)");
  assert.equal(resolveRecipe({ ...base, eval_strategy: "no", eval_steps: 5 } as RecipeInput).eval_steps, 0);
  assert.equal(resolveRecipe({ ...base, max_steps: -1, num_train_epochs: 1 } as RecipeInput).max_steps, 0);
});

test("dataset + dataset_dir resolve through dataset_info.json as LF does", async () => {
  const info = path.join(dataDir, "dataset_info.json");
  // Comma lists concatenate in order.
  const both = await loadDataset(dataDir, { dataset: "identity, alpaca_en_demo" });
  assert.equal(both.length, 10);
  assert.equal(both.rows[0].kind === "chat" && both.rows[0].messages[0].content, "hi");
  assert.equal(both.rows[4].kind === "chat" && both.rows[4].messages[0].content, "Add the two numbers.\n2 and 3");
  // max_samples: the first N of each dataset.
  const few = await loadDataset(dataDir, { dataset: "identity,alpaca_en_demo", maxSamples: 2 });
  assert.deepEqual(
    few.rows.map((r) => r.kind === "chat" && r.messages[0].content),
    ["hi", "who are you?", "Add the two numbers.\n2 and 3", "Name a colour."],
  );
  // A folder as file_name: every file in it, in name order.
  const parts = await loadDataset(info, { dataset: "parts_demo" });
  assert.deepEqual(
    parts.rows.map((r) => r.kind === "chat" && r.messages.at(-1)!.content),
    ["A", "B"],
  );
  // sharegpt with its own columns and role tags; the system column becomes the system message.
  const chat = await loadDataset(dataDir, { dataset: "chat_demo" });
  assert.deepEqual(chat.rows[0].kind === "chat" && chat.rows[0].messages, [
    { role: "system", content: "Answer in one word." },
    { role: "user", content: "ping" },
    { role: "assistant", content: "pong" },
  ]);
  await assert.rejects(
    loadDataset(dataDir, { dataset: "dpo_en_demo" }),
    /field "ranking": true marks a preference \(chosen\/rejected\) dataset.*not train yet/,
  );
  await assert.rejects(
    loadDataset(dataDir, { dataset: "hub_demo" }),
    /"hf_hub_url" \("someone\/some-dataset"\) is fetched from the network, and tunelab works offline; download the data/,
  );
  await assert.rejects(loadDataset(dataDir, { dataset: "nope" }), /no dataset named "nope"; it has "identity"/);
  // eval_dataset: the validation split comes from its own entry.
  const recipe = resolveRecipe({
    model_name_or_path: model,
    dataset: "identity",
    eval_dataset: "alpaca_en_demo",
    dataset_dir: dataDir,
    output_dir: path.join(tmp, "y"),
  } as RecipeInput);
  const splits = await loadSplits(recipe);
  assert.equal(splits.train.length, 4);
  assert.equal(splits.val.length, 6);
});
