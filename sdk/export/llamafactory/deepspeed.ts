/**
 * DeepSpeed ZeRO configs as LLaMA-Factory ships them (examples/deepspeed/ds_z2_config.json, ds_z3_config.json,
 * ds_z3_offload_config.json): "auto" values that the transformers integration fills from the training arguments.
 */

/** The ZeRO set-ups export-recipe offers. */
export const DEEPSPEED_STAGES = ["zero2", "zero3", "zero3-offload"] as const;
export type DeepSpeedStage = (typeof DEEPSPEED_STAGES)[number];

/** The file name LF's examples give each config. */
export const DEEPSPEED_FILE: Record<DeepSpeedStage, string> = {
  zero2: "ds_z2_config.json",
  zero3: "ds_z3_config.json",
  "zero3-offload": "ds_z3_offload_config.json",
};

const COMMON = {
  train_batch_size: "auto",
  train_micro_batch_size_per_gpu: "auto",
  gradient_accumulation_steps: "auto",
  gradient_clipping: "auto",
  zero_allow_untested_optimizer: true,
  fp16: { enabled: "auto", loss_scale: 0, loss_scale_window: 1000, initial_scale_power: 16, hysteresis: 2, min_loss_scale: 1 },
  bf16: { enabled: "auto" },
};

const ZERO3 = {
  stage: 3,
  overlap_comm: false,
  contiguous_gradients: true,
  sub_group_size: 1e9,
  reduce_bucket_size: "auto",
  stage3_prefetch_bucket_size: "auto",
  stage3_param_persistence_threshold: "auto",
  stage3_max_live_parameters: 1e9,
  stage3_max_reuse_distance: 1e9,
  stage3_gather_16bit_weights_on_model_save: true,
};

/** The DeepSpeed config of a ZeRO stage. */
export function deepSpeedConfig(stage: DeepSpeedStage): Record<string, unknown> {
  switch (stage) {
    case "zero2":
      return {
        ...COMMON,
        zero_optimization: {
          stage: 2,
          allgather_partitions: true,
          allgather_bucket_size: 5e8,
          overlap_comm: false,
          reduce_scatter: true,
          reduce_bucket_size: 5e8,
          contiguous_gradients: true,
          round_robin_gradients: true,
        },
      };
    case "zero3":
      return { ...COMMON, zero_optimization: ZERO3 };
    case "zero3-offload": {
      const { stage: s, ...rest } = ZERO3;
      return {
        ...COMMON,
        zero_optimization: { stage: s, offload_optimizer: { device: "cpu", pin_memory: true }, offload_param: { device: "cpu", pin_memory: true }, ...rest },
      };
    }
  }
}
