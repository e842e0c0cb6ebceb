/**
 * LoRA, in one place: the adapter config and its meaning (config.ts), the modules and trainable tensors with
 * PEFT's initialisation (modules.ts), the in-graph delta (delta.ts), the merge into base weights (merge.ts),
 * and the forms LoRA weights take: engine tensors (state.ts) and PEFT adapters (adapter.ts).
 */
export * from "./config";
export * from "./modules";
export * from "./delta";
export * from "./merge";
export * from "./state";
export * from "./adapter";
