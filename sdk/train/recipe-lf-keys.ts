/**
 * LLaMA-Factory's keys that are not tunelab recipe options: for each, whether a recipe carrying it is accepted with one
 * notice line (it has no effect here, and why) or refused (why, and what to do instead). Together with the recipe
 * schema (recipe-schema.ts, the keys tunelab honours) this covers every field of LF's ModelArguments, DataArguments,
 * FinetuningArguments, TrainingArguments (with the transformers Seq2SeqTrainingArguments fields) and
 * GeneratingArguments, as LF's sources (src/llamafactory/hparams/*.py) define them. docs/llamafactory-keys.md is
 * written from this table.
 *
 * Bit widths and DoRA (bf16, quantization_*, use_dora) have their rows in the recipe schema.
 */

/** The LF argument class a key belongs to (the docs group by it). */
export type LfArgs = "model" | "data" | "finetuning" | "training" | "generating";

/** What happens to a recipe carrying the key. */
export interface LfKeyRule {
  args: LfArgs;
  /** "notice": accepted, one line says it has no effect here; "refuse": an error. */
  kind: "notice" | "refuse";
  /** Why (no effect / not supported), one clause. */
  why: string;
  /** refuse: what to do instead. */
  instead?: string;
  /** Values that ask for nothing (LF's default or "off"): accepted without a word. null always is. */
  off?: readonly unknown[];
  /** The value is a credential: never echoed. */
  secret?: true;
}

const EXPORT = "run it on a cluster with `tunelab export-recipe RECIPE.yaml --to llamafactory`";
const DIST = "tunelab trains in one process on one device; distribution is LLaMA-Factory's job";
const MM = "multimodal inputs: tunelab trains text-only Llama/Qwen2 models";
const INFER = "an inference-engine option of LLaMA-Factory's chat/API; tunelab generates with onnxruntime (run.chat(), tunelab eval)";
const KERNEL = "a PyTorch kernel or speed switch; tunelab's step is its own ONNX graph, and the numbers do not depend on it";
const HUB = "tunelab reads local folders only and never downloads or uploads";
const RLHF = "used only by stages rm/ppo/dpo/kto, which tunelab does not train";
const GEN = "a generation setting of LLaMA-Factory's predict/chat; pass it to run.chat() or tunelab eval instead";
const TRACK = "tunelab logs to train.log, metrics.jsonl and TensorBoard event files in output_dir (docs/outputs.md) and reports to no service";
const LOADER = "a PyTorch DataLoader/preprocessing setting; tunelab reads and tokenises in-process, the rows are the same";

const n = (args: LfArgs, why: string, off?: readonly unknown[]): LfKeyRule => ({ args, kind: "notice", why, ...(off ? { off } : {}) });
const r = (args: LfArgs, why: string, instead: string, off?: readonly unknown[]): LfKeyRule => ({
  args,
  kind: "refuse",
  why,
  instead,
  ...(off ? { off } : {}),
});
const F = [false] as const;

/** Every LF key that is not a recipe option. */
export const LF_KEYS: Readonly<Record<string, LfKeyRule>> = {
  // ---- ModelArguments (BaseModelArguments, ProcessorArguments, ExportArguments, VllmArguments, SGLangArguments, KTransformersArguments)
  adapter_folder: r("model", "loading every adapter of a folder is not supported", "name one adapter with adapter_name_or_path"),
  cache_dir: n("model", HUB),
  use_fast_tokenizer: n("model", "tunelab has one tokenizer, reading tokenizer.json", [true]),
  resize_vocab: r("model", "resizing the embeddings is not supported", "train with the model's own vocabulary", F),
  split_special_tokens: r("model", "tunelab never splits special tokens, which would change tokenisation", "leave it false", F),
  add_tokens: r("model", "adding tokens (and so resizing the embeddings) is not supported", "train with the model's own vocabulary"),
  add_special_tokens: r("model", "adding tokens (and so resizing the embeddings) is not supported", "train with the model's own vocabulary"),
  new_special_tokens_config: r("model", "adding tokens (and so resizing the embeddings) is not supported", "train with the model's own vocabulary"),
  init_special_tokens: n("model", "only used when tokens are added, which tunelab does not do", ["noise_init"]),
  model_revision: n("model", HUB, ["main"]),
  low_cpu_mem_usage: n("model", "tunelab memory-maps the safetensors files and loads each weight once", [true]),
  rope_scaling: r("model", "changing the model's RoPE scaling is not supported", "use the rope_scaling of the model's config.json"),
  flash_attn: n("model", `${KERNEL} (attention is tunelab's own graph)`, ["auto"]),
  shift_attn: r("model", "LongLoRA's shifted sparse attention changes the computation", "train with full attention (leave it false)", F),
  mixture_of_depths: r("model", "mixture-of-depths conversion is not supported", "train the model as it is"),
  use_unsloth: n("model", KERNEL, F),
  use_unsloth_gc: n("model", KERNEL, F),
  enable_liger_kernel: n("model", KERNEL, F),
  moe_aux_loss_coef: n("model", "tunelab trains dense Llama/Qwen2 models, which have no MoE router"),
  disable_gradient_checkpointing: n(
    "model",
    "LLaMA-Factory recomputes activations unless told not to; tunelab recomputes only with gradient_checkpointing: true (same numbers, less memory)",
    F,
  ),
  use_reentrant_gc: n("model", KERNEL, [true]),
  upcast_layernorm: n("model", "tunelab has no separate layer-norm precision switch (RMSNorm runs in the run's compute type)", F),
  upcast_lmhead_output: n("model", "tunelab has no separate lm_head precision switch", F),
  train_from_scratch: r("model", "tunelab fine-tunes pretrained weights", "start from a pretrained model folder", F),
  infer_backend: n("model", INFER, ["huggingface"]),
  offload_folder: n("model", "tunelab does not offload weights to disk", ["offload"]),
  use_kv_cache: n("model", INFER, [true]),
  use_v1_kernels: n("model", KERNEL, F),
  infer_dtype: n("model", INFER, ["auto"]),
  hf_hub_token: { args: "model", kind: "notice", why: HUB, secret: true },
  ms_hub_token: { args: "model", kind: "notice", why: HUB, secret: true },
  om_hub_token: { args: "model", kind: "notice", why: HUB, secret: true },
  print_param_status: n("model", "tunelab's log names what is trained (LoRA modules or layers) at the start", F),
  trust_remote_code: n("model", "tunelab runs no Python from the model folder: it builds the Llama/Qwen2 graph itself from config.json", F),
  image_max_pixels: n("model", MM),
  image_min_pixels: n("model", MM),
  image_do_pan_and_scan: n("model", MM, F),
  crop_to_patches: n("model", MM, F),
  video_max_pixels: n("model", MM),
  video_min_pixels: n("model", MM),
  video_fps: n("model", MM),
  video_maxlen: n("model", MM),
  use_audio_in_video: n("model", MM, F),
  audio_sampling_rate: n("model", MM),
  export_dir: n("model", "an option of `llamafactory-cli export`, not of training; merge with run.merge(DIR) instead"),
  export_size: n("model", "an option of `llamafactory-cli export`, not of training"),
  export_device: n("model", "an option of `llamafactory-cli export`, not of training"),
  export_quantization_bit: n("model", "an option of `llamafactory-cli export`, not of training"),
  export_quantization_dataset: n("model", "an option of `llamafactory-cli export`, not of training"),
  export_quantization_nsamples: n("model", "an option of `llamafactory-cli export`, not of training"),
  export_quantization_maxlen: n("model", "an option of `llamafactory-cli export`, not of training"),
  export_legacy_format: n("model", "an option of `llamafactory-cli export`, not of training", F),
  export_hub_model_id: n("model", HUB),
  vllm_maxlen: n("model", INFER),
  vllm_gpu_util: n("model", INFER),
  vllm_enforce_eager: n("model", INFER, F),
  vllm_max_lora_rank: n("model", INFER),
  vllm_config: n("model", INFER),
  sglang_maxlen: n("model", INFER),
  sglang_mem_fraction: n("model", INFER),
  sglang_tp_size: n("model", INFER),
  sglang_config: n("model", INFER),
  sglang_lora_backend: n("model", INFER),
  use_kt: r("model", "KTransformers' CPU/GPU expert offloading is a different engine", "train with tunelab's own engine (leave it false), or " + EXPORT, F),
  kt_cpu_activation: n("model", "used only with use_kt"),
  kt_weight_path: n("model", "used only with use_kt"),
  kt_non_expert_weight_path: n("model", "used only with use_kt"),
  kt_expert_checkpoint_path: n("model", "used only with use_kt"),
  kt_use_lora_experts: n("model", "used only with use_kt"),
  kt_lora_expert_num: n("model", "used only with use_kt"),
  kt_lora_expert_intermediate_size: n("model", "used only with use_kt"),

  // ---- DataArguments
  media_dir: n("data", MM),
  mask_history: r("data", "tunelab puts the loss on every assistant turn of a conversation", "leave it false, or keep only the last turn in the data", F),
  streaming: n("data", "tunelab reads the whole file; the rows are the same", F),
  buffer_size: n("data", "used only with streaming"),
  mix_strategy: r("data", "tunelab concatenates the datasets of a comma list", "use mix_strategy: concat", ["concat"]),
  interleave_probs: r("data", "interleaving datasets is not supported", "concatenate them (mix_strategy: concat)"),
  overwrite_cache: n("data", "tunelab keeps no preprocessing cache", F),
  preprocessing_batch_size: n("data", LOADER),
  preprocessing_num_workers: n("data", LOADER),
  eval_num_beams: n("data", GEN),
  ignore_pad_token_for_loss: n("data", "tunelab never puts loss on padding", [true]),
  eval_on_each_dataset: n("data", "tunelab evaluates the validation split as one set", F),
  neat_packing: r("data", "packing without cross-attention between packed examples is not supported", "use packing: true", F),
  tool_format: n("data", "tool calls in the data are rendered by the chat template"),
  default_system: r("data", "a default system prompt changes the training text", "put the system prompt in the data's system column"),
  preserve_thinking: n("data", "tunelab renders each conversation through the chat template as the template decides", F),
  tokenized_path: r("data", "tunelab tokenises the data itself each run", "give the data files (dataset, dataset_dir)"),
  data_shared_file_system: n("data", DIST, F),

  // ---- FinetuningArguments (FreezeArguments, LoraArguments, OFTArguments, RLHFArguments, GaloreArguments, ApolloArguments, BAdamArgument, SwanLabArguments)
  freeze_trainable_modules: r("finetuning", "freeze trains whole decoder layers", "use freeze_trainable_layers", ["all"]),
  freeze_extra_modules: r("finetuning", "training modules besides the decoder layers is not supported", "use freeze_trainable_layers"),
  additional_target: r("finetuning", "extra fully trained modules (modules_to_save) are not supported for causal LM training", "train LoRA modules only"),
  loraplus_lr_ratio: r("finetuning", "LoRA+ (a larger learning rate for B) is not supported", "train with one learning_rate"),
  loraplus_lr_embedding: n("finetuning", "used only with loraplus_lr_ratio"),
  pissa_init: r("finetuning", "PiSSA initialisation is not supported", "start from PEFT's default initialisation (leave it false)", F),
  pissa_iter: n("finetuning", "used only with pissa_init"),
  pissa_convert: r("finetuning", "PiSSA conversion is not supported", "leave it false", F),
  create_new_adapter: r(
    "finetuning",
    "stacking a new adapter on a merged old one is not supported",
    "merge the old adapter first (run.merge(DIR), or `tunelab eval` to check it) and train on the merged model",
    F,
  ),
  module_dropout: n("finetuning", "an OFT option; finetuning_type oft is not supported"),
  oft_rank: n("finetuning", "an OFT option; finetuning_type oft is not supported"),
  oft_block_size: n("finetuning", "an OFT option; finetuning_type oft is not supported"),
  oft_target: n("finetuning", "an OFT option; finetuning_type oft is not supported"),
  pref_beta: n("finetuning", RLHF),
  pref_ftx: n("finetuning", RLHF),
  pref_bco_weight: n("finetuning", RLHF),
  pref_loss: n("finetuning", RLHF),
  dpo_label_smoothing: n("finetuning", RLHF),
  kto_chosen_weight: n("finetuning", RLHF),
  kto_rejected_weight: n("finetuning", RLHF),
  simpo_gamma: n("finetuning", RLHF),
  ppo_buffer_size: n("finetuning", RLHF),
  ppo_epochs: n("finetuning", RLHF),
  ppo_score_norm: n("finetuning", RLHF),
  ppo_target: n("finetuning", RLHF),
  ppo_whiten_rewards: n("finetuning", RLHF),
  ref_model: n("finetuning", RLHF),
  ref_model_adapters: n("finetuning", RLHF),
  ref_model_quantization_bit: n("finetuning", RLHF),
  reward_model: n("finetuning", RLHF),
  reward_model_adapters: n("finetuning", RLHF),
  reward_model_quantization_bit: n("finetuning", RLHF),
  reward_model_type: n("finetuning", RLHF),
  ld_alpha: n("finetuning", RLHF),
  use_galore: r("finetuning", "the GaLore optimizer is not supported", "use optim: adamw, sgd or lion", F),
  galore_target: n("finetuning", "used only with use_galore"),
  galore_rank: n("finetuning", "used only with use_galore"),
  galore_update_interval: n("finetuning", "used only with use_galore"),
  galore_scale: n("finetuning", "used only with use_galore"),
  galore_proj_type: n("finetuning", "used only with use_galore"),
  galore_layerwise: n("finetuning", "used only with use_galore"),
  use_apollo: r("finetuning", "the APOLLO optimizer is not supported", "use optim: adamw, sgd or lion", F),
  apollo_target: n("finetuning", "used only with use_apollo"),
  apollo_rank: n("finetuning", "used only with use_apollo"),
  apollo_update_interval: n("finetuning", "used only with use_apollo"),
  apollo_scale: n("finetuning", "used only with use_apollo"),
  apollo_proj: n("finetuning", "used only with use_apollo"),
  apollo_proj_type: n("finetuning", "used only with use_apollo"),
  apollo_scale_type: n("finetuning", "used only with use_apollo"),
  apollo_layerwise: n("finetuning", "used only with use_apollo"),
  apollo_scale_front: n("finetuning", "used only with use_apollo"),
  use_badam: r("finetuning", "the BAdam optimizer is not supported", "use optim: adamw, sgd or lion", F),
  badam_mode: n("finetuning", "used only with use_badam"),
  badam_start_block: n("finetuning", "used only with use_badam"),
  badam_switch_mode: n("finetuning", "used only with use_badam"),
  badam_switch_interval: n("finetuning", "used only with use_badam"),
  badam_update_ratio: n("finetuning", "used only with use_badam"),
  badam_mask_mode: n("finetuning", "used only with use_badam"),
  badam_verbose: n("finetuning", "used only with use_badam"),
  use_swanlab: n("finetuning", TRACK, F),
  swanlab_project: n("finetuning", TRACK),
  swanlab_workspace: n("finetuning", TRACK),
  swanlab_run_name: n("finetuning", TRACK),
  swanlab_mode: n("finetuning", TRACK),
  swanlab_api_key: { args: "finetuning", kind: "notice", why: TRACK, secret: true },
  swanlab_logdir: n("finetuning", TRACK),
  swanlab_lark_webhook_url: { args: "finetuning", kind: "notice", why: TRACK, secret: true },
  swanlab_lark_secret: { args: "finetuning", kind: "notice", why: TRACK, secret: true },
  pure_bf16: n("finetuning", "tunelab keeps float32 master copies of the trained tensors whatever the compute type", F),
  use_llama_pro: r("finetuning", "LLaMA Pro block expansion is not supported", "use finetuning_type: freeze or lora", F),
  use_adam_mini: r("finetuning", "the Adam-mini optimizer is not supported", "use optim: adamw", F),
  use_mca: r("finetuning", `Megatron-Core training: ${DIST}`, EXPORT, F),
  use_megatron_bridge: r("finetuning", `Megatron training: ${DIST}`, EXPORT, F),
  megatron_bridge_args: r("finetuning", `Megatron training: ${DIST}`, EXPORT),
  use_hyper_parallel: r("finetuning", `hyper-parallel training: ${DIST}`, EXPORT, F),
  hyper_parallel_args: r("finetuning", `hyper-parallel training: ${DIST}`, EXPORT),
  hyper_parallel_cp_size: n("finetuning", DIST, [1]),
  use_muon: r("finetuning", "the Muon optimizer is not supported", "use optim: adamw, sgd or lion", F),
  use_dft_loss: r("finetuning", "the DFT loss is not supported", "train with the plain cross-entropy (leave it false)", F),
  use_asft_loss: r("finetuning", "the ASFT loss is not supported", "train with the plain cross-entropy (leave it false)", F),
  asft_alpha: n("finetuning", "used only with use_asft_loss"),
  use_eaft_loss: r("finetuning", "the EAFT loss is not supported", "train with the plain cross-entropy (leave it false)", F),
  eaft_alpha: n("finetuning", "used only with use_eaft_loss"),
  freeze_vision_tower: n("finetuning", MM),
  freeze_multi_modal_projector: n("finetuning", MM),
  freeze_language_model: n("finetuning", MM, F),
  compute_accuracy: n("finetuning", "tunelab's evaluation reports loss and perplexity for text (accuracy and F1 for cls)", F),
  disable_shuffling: r("finetuning", "tunelab always draws batches in a seeded random order", "set seed to fix the order", F),
  plot_loss: n("finetuning", "tunelab draws the loss curve live in the notebook (run.lossCurve()) and in TensorBoard instead of writing training_loss.png"),
  include_effective_tokens_per_second: n("finetuning", "train.log always has tokens/s", F),

  // ---- TrainingArguments: LF's own (Ray, profiler, FP8) and transformers' (Seq2SeqTrainingArguments)
  ray_num_workers: n("training", DIST),
  ray_init_kwargs: n("training", DIST),
  master_addr: n("training", `${DIST}; the launch scripts of tunelab export-recipe set it`),
  master_port: n("training", `${DIST}; the launch scripts of tunelab export-recipe set it`),
  enable_torch_profiler: n("training", "tunelab has no torch profiler; bench/ measures steps", F),
  profiler_output_dir: n("training", "used only with enable_torch_profiler"),
  profiler_wait_steps: n("training", "used only with enable_torch_profiler"),
  profiler_warmup_steps: n("training", "used only with enable_torch_profiler"),
  profiler_active_steps: n("training", "used only with enable_torch_profiler"),
  profiler_repeat: n("training", "used only with enable_torch_profiler"),
  profiler_record_shapes: n("training", "used only with enable_torch_profiler"),
  profiler_profile_memory: n("training", "used only with enable_torch_profiler"),
  profiler_with_stack: n("training", "used only with enable_torch_profiler"),
  profile_modules: n("training", "used only with enable_torch_profiler"),
  fp8: r("training", "FP8 training is not supported", "use fp16 (or bf16) on a GPU device", F),
  fp8_backend: n("training", "used only with fp8"),
  fp8_enable_fsdp_float8_all_gather: n("training", "used only with fp8"),
  lr_scheduler_kwargs: r("training", "scheduler arguments are not supported", "use lr_scheduler_type with warmup_steps or warmup_ratio"),
  optim_args: r(
    "training",
    "optimizer arguments beyond the recipe's are not supported",
    "use the optimizer options (adam_beta1, adam_beta2, adam_epsilon, weight_decay, momentum)",
  ),
  optim_target_modules: n("training", "used only by the GaLore and APOLLO optimizers"),
  average_tokens_across_devices: n("training", "one device: the loss is already the mean over all tokens of the optimizer step", [true]),
  label_smoothing_factor: r("training", "label smoothing is not supported", "leave it 0", [0]),
  bf16_full_eval: n("training", "evaluation runs in the run's compute type", F),
  fp16_full_eval: n("training", "evaluation runs in the run's compute type", F),
  tf32: n("training", KERNEL),
  gradient_checkpointing_kwargs: n("training", "tunelab recomputes whole decoder layers (gradient_checkpointing: true)"),
  torch_compile: n("training", KERNEL, F),
  torch_compile_backend: n("training", KERNEL),
  torch_compile_mode: n("training", KERNEL),
  use_liger_kernel: n("training", KERNEL, F),
  liger_kernel_config: n("training", KERNEL),
  use_cache: n("training", "training never uses a KV cache", F),
  neftune_noise_alpha: r("training", "NEFTune embedding noise is not supported", "leave it unset"),
  torch_empty_cache_steps: n("training", KERNEL),
  auto_find_batch_size: n("training", "tunelab does not shrink the batch on out-of-memory; `tunelab estimate` sizes one beforehand", F),
  logging_strategy: n("training", "tunelab logs every logging_steps steps", ["steps"]),
  logging_first_step: n("training", "train.log always has the first step", F),
  log_on_each_node: n("training", DIST, [true]),
  logging_nan_inf_filter: n("training", "tunelab stops (or with fp16 skips the step) on a non-finite loss instead of hiding it", [true]),
  include_num_input_tokens_seen: n("training", "train.log always has tokens/s", F),
  log_level: n("training", "tunelab's log has one level", ["passive"]),
  log_level_replica: n("training", DIST, ["warning"]),
  disable_tqdm: n("training", "tunelab shows one live progress display", F),
  report_to: n("training", TRACK, ["none", []]),
  run_name: n("training", TRACK),
  project: n("training", TRACK, ["huggingface"]),
  trackio_space_id: n("training", TRACK, ["trackio"]),
  eval_delay: r("training", "tunelab evaluates from the first eval_steps on", "leave it 0", [0]),
  prediction_loss_only: n("training", "tunelab's evaluation is loss-based for text", F),
  eval_on_start: n("training", "tunelab evaluates first after eval_steps steps", F),
  eval_do_concat_batches: n("training", "an evaluation-loop memory setting", [true]),
  eval_use_gather_object: n("training", DIST, F),
  eval_accumulation_steps: n("training", "an evaluation-loop memory setting"),
  include_for_metrics: n("training", "tunelab's metrics are fixed per stage", [[]]),
  batch_eval_metrics: n("training", "an evaluation-loop memory setting", F),
  save_only_model: n("training", "tunelab's checkpoints always keep the optimizer state, so every one can resume exactly", F),
  save_on_each_node: n("training", DIST, F),
  enable_jit_checkpoint: n("training", "tunelab writes a checkpoint when stopped by Ctrl-C/SIGINT", F),
  push_to_hub: r("training", "tunelab never uploads", "upload output_dir yourself (e.g. `hf upload`)", F),
  hub_token: { args: "training", kind: "notice", why: HUB, secret: true },
  hub_private_repo: n("training", HUB),
  hub_model_id: n("training", HUB),
  hub_strategy: n("training", HUB, ["every_save"]),
  hub_always_push: n("training", HUB, F),
  hub_revision: n("training", HUB),
  load_best_model_at_end: r(
    "training",
    "tunelab restores the best adapter only with early stopping",
    "set early_stopping_steps (patience) with eval_steps and val_size",
    F,
  ),
  metric_for_best_model: r("training", "tunelab's best step is the lowest validation loss", "leave it unset (or loss)", ["loss", "eval_loss"]),
  greater_is_better: n("training", "the best step is the lowest validation loss", F),
  ignore_data_skip: n("training", "a resumed run continues with exactly the batches it would have seen", F),
  restore_callback_states_from_checkpoint: n("training", "tunelab's checkpoints always restore early stopping and loss scaling", F),
  full_determinism: n("training", "on the CPU a seed already gives the same run bit for bit", F),
  data_seed: n("training", "seed decides the data order too"),
  use_cpu: n("training", "set device: cpu (the default) instead", F),
  no_cuda: n("training", "set device: cpu (the default) instead", F),
  accelerator_config: n("training", DIST),
  parallelism_config: r("training", DIST, EXPORT),
  dataloader_drop_last: n("training", LOADER, F),
  dataloader_num_workers: n("training", LOADER, [0]),
  dataloader_pin_memory: n("training", LOADER, [true]),
  dataloader_persistent_workers: n("training", LOADER, F),
  dataloader_prefetch_factor: n("training", LOADER),
  remove_unused_columns: n("training", LOADER),
  label_names: n("training", LOADER),
  train_sampling_strategy: n("training", "tunelab draws batches in a seeded random order", ["random"]),
  group_by_length: n("training", "tunelab draws batches in a seeded random order", F),
  length_column_name: n("training", LOADER, ["length"]),
  ddp_find_unused_parameters: n("training", DIST),
  ddp_bucket_cap_mb: n("training", DIST),
  ddp_broadcast_buffers: n("training", DIST),
  ddp_backend: n("training", DIST),
  ddp_timeout: n("training", DIST),
  fsdp: r("training", `FSDP: ${DIST}`, EXPORT, ["", []]),
  fsdp_config: r("training", `FSDP: ${DIST}`, EXPORT),
  deepspeed: r("training", `DeepSpeed: ${DIST}`, "use `tunelab export-recipe RECIPE.yaml --to llamafactory --deepspeed zero2|zero3|zero3-offload`"),
  debug: n("training", "a transformers debugging switch", ["", []]),
  skip_memory_metrics: n("training", "a transformers memory report", [true]),
  do_eval: n("training", "tunelab evaluates whenever there is a validation split (val_size or eval_dataset)"),
  do_predict: r("training", "prediction after training is not part of tunelab train", "evaluate afterwards with `tunelab eval` or run.evaluate()", F),
  logging_dir: n("training", "TensorBoard event files go to output_dir/runs"),
  local_rank: n("training", DIST, [-1]),
  save_safetensors: n("training", "tunelab always writes safetensors", [true]),
  sortish_sampler: n("training", "tunelab draws batches in a seeded random order", F),
  predict_with_generate: n("training", "tunelab's evaluation is loss-based; generate with run.chat() or tunelab eval", F),
  generation_max_length: n("training", GEN),
  generation_num_beams: n("training", GEN),
  generation_config: n("training", GEN),

  // ---- GeneratingArguments
  do_sample: n("generating", GEN),
  temperature: n("generating", GEN),
  top_p: n("generating", GEN),
  top_k: n("generating", GEN),
  num_beams: n("generating", GEN),
  max_length: n("generating", GEN),
  max_new_tokens: n("generating", GEN),
  repetition_penalty: n("generating", GEN),
  length_penalty: n("generating", GEN),
  skip_special_tokens: n("generating", GEN),
};

/** Values of recipe options that are LF's but not trained here, with the reason and what to do. */
export const LF_REFUSED_VALUES: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  stage: {
    rm: "stage rm (reward modelling) is not supported yet; train it with LLaMA-Factory (" + EXPORT + ")",
    ppo: "stage ppo is not supported yet; train it with LLaMA-Factory (" + EXPORT + ")",
    dpo: "stage dpo (preference training) is not supported yet; train it with LLaMA-Factory (" + EXPORT + ")",
    kto: "stage kto is not supported yet; train it with LLaMA-Factory (" + EXPORT + ")",
  },
  finetuning_type: { oft: "finetuning_type oft is not supported; use lora, freeze or full" },
};

/**
 * LLaMA-Factory's chat template names (src/llamafactory/data/template.py). One that tunelab has no template of its
 * own for is read as "the tokenizer's own chat template", with a notice.
 */
export const LF_TEMPLATES: ReadonlySet<string> = new Set(
  (
    "alpaca aeva bailing bailing_v2 base breeze chatglm3 chatml chatml_de cohere cpm4 custom dbrx deepseek deepseek3 deepseekr1 deepseekcoder default " +
    "dots_ocr empty ernie ernie_nothink ernie_vl exaone falcon falcon_h1 fewshot gemma gemma2 gemma3 gemma3n gemma4 gemma4n glm4 glm4_moe glm4v " +
    "glm4_5v glm_ocr glm4_7 glmz1 gpt_oss granite3 granite3_vision granite4 hunyuan hunyuan_small hy3 hy_dense_1_8b hy_dense_7b index intern2 " +
    "intern_vl intern_s1 keye_vl kimi_vl lfm2 lfm2_vl llama2 llama2_zh llama3 llama4 llava llava_next llava_next_llama3 llava_next_mistral " +
    "llava_next_qwen llava_next_yi llava_next_video llava_next_video_mistral llava_next_video_yi mimo mimo_v2 mimo_vl minicpm_v minicpm_v_4_6 " +
    "minicpm_o minimax1 minimax2 ministral ministral3 mistral mistral_small mllama moonlight moss_vl olmo openchat openchat-3.6 opencoder " +
    "paligemma paligemma_chat phi phi_small phi4 phi4_mini pixtral qwen qwen3 qwen3_nothink qwen2_audio qwen2_omni qwen3_omni " +
    "qwen3_omni_nothink qwen2_vl qwen3_vl qwen3_vl_nothink qwen3_5 qwen3_5_nothink qwen3_6 sailor seed_coder seed_oss smollm smollm2 solar " +
    "starchat telechat2 vicuna video_llava xuanyuan yi yi_vl youtu youtu_vl yuan zephyr"
  ).split(" "),
);

/** The notice or error text for an LF key of the table, or null when its value asks for nothing. */
export function lfKeyMessage(key: string, value: unknown): { kind: "notice" | "refuse"; text: string } | null {
  const rule = LF_KEYS[key];
  if (!rule || value === null || value === undefined) return null;
  if (rule.off?.some((v) => sameValue(v, value))) return null;
  const shownValue = rule.secret ? "(value not shown)" : JSON.stringify(value);
  if (rule.kind === "notice") return { kind: "notice", text: `${key}: ${shownValue} has no effect in tunelab: ${rule.why}` };
  return { kind: "refuse", text: `${key}: ${shownValue} is not supported: ${rule.why}; ${rule.instead}` };
}

function sameValue(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => sameValue(x, b[i]));
  if (typeof a === "string" && typeof b === "string") return a.toLowerCase() === b.toLowerCase();
  return a === b;
}

const ARGS_TITLES: Record<LfArgs, string> = {
  model: "Model arguments",
  data: "Data arguments",
  finetuning: "Fine-tuning arguments",
  training: "Training arguments (LLaMA-Factory's and transformers' Seq2SeqTrainingArguments)",
  generating: "Generating arguments",
};

/** docs/llamafactory-keys.md, written from this table. */
export function lfKeysMarkdown(): string {
  const cell = (s: string) => s.replace(/\|/g, "\\|");
  const sections = (Object.keys(ARGS_TITLES) as LfArgs[]).map((args) => {
    const rows = Object.entries(LF_KEYS)
      .filter(([, rule]) => rule.args === args)
      .map(([key, rule]) => {
        const off = rule.off?.length ? ` (silent when ${rule.off.map((v) => `\`${JSON.stringify(v)}\``).join(" or ")})` : "";
        const what = rule.kind === "notice" ? `accepted, one notice${off}` : `**refused**${off}`;
        const why = rule.kind === "notice" ? rule.why : `${rule.why}; ${rule.instead}`;
        return `| \`${key}\` | ${what} | ${cell(why)} |`;
      });
    return [`## ${ARGS_TITLES[args]}`, "", "| Key | tunelab | Why |", "| --- | --- | --- |", ...rows].join("\n");
  });
  const values = Object.entries(LF_REFUSED_VALUES).flatMap(([key, byValue]) =>
    Object.entries(byValue).map(([value, why]) => `| \`${key}: ${value}\` | **refused** | ${cell(why)} |`),
  );
  return [
    "# LLaMA-Factory keys in tunelab recipes",
    "",
    "<!-- generated from sdk/train/recipe-lf-keys.ts (lfKeysMarkdown); test/lf/keys.test.ts compares; edit the table, not this -->",
    "",
    "A LLaMA-Factory recipe runs through `tunelab train` as written. Every key of LLaMA-Factory's argument classes is",
    "either a recipe option that tunelab honours (the tables of [recipes.md](recipes.md)), or listed here: accepted",
    "with one notice line saying why it has no effect here, or refused with the reason and what to do instead. A value",
    "that asks for nothing (`null`, or the off value listed) is accepted silently. A key in neither list is an error.",
    "",
    "LLaMA-Factory readings tunelab follows: `null` means unset; `max_steps: -1` means unset; `num_train_epochs` without",
    "`max_steps` trains by epochs; `warmup_ratio` without `warmup_steps` warms up by ratio; `eval_strategy: steps`",
    "without `eval_steps` evaluates every `logging_steps`; a template name of LLaMA-Factory's that tunelab has no",
    "template for means the tokenizer's own chat template (with a notice).",
    "",
    "| Value | tunelab | Why |",
    "| --- | --- | --- |",
    ...values,
    "",
    ...sections.flatMap((s) => [s, ""]),
  ].join("\n");
}
