/**
 * PEFT's LoraConfig, typed (camelCase here, snake_case in adapter_config.json), with its semantics: which modules
 * it targets, each module's rank and alpha (rank_pattern / alpha_pattern), and the scaling (rsLoRA or not).
 */
import { ADAPTER_CONFIG_NAME } from "../../io/peft";
import { LinearRegex, MAX_REGEX_LENGTH } from "../../util/linear-regex";

/** PEFT task types tunelab produces. */
export type PeftTaskType = "CAUSAL_LM" | "SEQ_CLS";

/** PEFT's LoraConfig as stored in adapter_config.json. */
export interface LoraConfig {
  peftType: "LORA";
  /** Rank (`r`). */
  r: number;
  loraAlpha: number;
  loraDropout: number;
  /** Module names (e.g. ["q_proj", "v_proj"]), "all-linear", or a regular expression string matched against full module paths. */
  targetModules: string[] | string;
  /** rsLoRA: scale by alpha / sqrt(r) instead of alpha / r. */
  useRslora: boolean;
  /** DoRA: a trainable magnitude per output row rescales the LoRA-updated weight (PEFT `use_dora`). */
  useDora: boolean;
  /** Only "none" is supported (no bias training). */
  bias: "none";
  taskType: PeftTaskType | null;
  baseModelNameOrPath: string | null;
  /** Modules trained fully and saved whole, e.g. ["score"] for sequence classification. */
  modulesToSave: string[] | null;
  /** Must be false for Llama/Qwen2 (their linears store [out, in]). */
  fanInFanOut: false;
  inferenceMode: boolean;
  /** true (A random, B zero, as PEFT's default), false, or a PEFT init name such as "gaussian". */
  initLoraWeights: boolean | string;
  /** Per-module rank overrides (PEFT `rank_pattern`). */
  rankPattern: Record<string, number>;
  /** Per-module alpha overrides (PEFT `alpha_pattern`). */
  alphaPattern: Record<string, number>;
  layersToTransform: number[] | null;
  revision: string | null;
  /** adapter_config.json keys not modelled here, written back unchanged. */
  extra: Record<string, unknown>;
}

/**
 * PEFT LoraConfig's own defaults for the fields tunelab does not ask for. The rank has none here: whoever makes
 * a config chooses it (the recipe's lora_rank).
 */
const PEFT_CONFIG_DEFAULTS = {
  loraAlpha: 8,
  loraDropout: 0,
  useRslora: false,
  useDora: false,
  bias: "none",
  taskType: "CAUSAL_LM",
  baseModelNameOrPath: null,
  modulesToSave: null,
  fanInFanOut: false,
  inferenceMode: true,
  initLoraWeights: true,
  layersToTransform: null,
  revision: null,
} as const satisfies Partial<LoraConfig>;

/** What PEFT assumes for `r` and `lora_alpha` when an adapter_config.json leaves them out (a file-format fact). */
const PEFT_FILE_DEFAULT_R = 8;
const PEFT_FILE_DEFAULT_ALPHA = 8;

/** A LoraConfig of rank `r` with PEFT's defaults for whatever else is not given. */
export function makeLoraConfig(options: Partial<LoraConfig> & Pick<LoraConfig, "r" | "targetModules">): LoraConfig {
  const config: LoraConfig = { peftType: "LORA", ...PEFT_CONFIG_DEFAULTS, rankPattern: {}, alphaPattern: {}, extra: {}, ...options };
  validateLoraConfig(config, "LoRA config");
  return config;
}

/** LLaMA-Factory's LoRA options (the recipe's names), enough to make a LoraConfig. */
export interface LoraRecipeOptions {
  lora_rank: number;
  lora_alpha: number;
  lora_dropout: number;
  /** "all" or comma-separated module names. */
  lora_target: string;
  use_rslora: boolean;
  /** DoRA (weight-decomposed LoRA); optional so recipes written before it stay valid. */
  use_dora?: boolean;
  model_name_or_path: string;
}

/** The PEFT LoRA config a recipe describes; `numLabels` null means causal LM, else sequence classification. */
export function loraConfigOf(r: LoraRecipeOptions, numLabels: number | null): LoraConfig {
  return makeLoraConfig({
    r: r.lora_rank,
    loraAlpha: r.lora_alpha,
    loraDropout: r.lora_dropout,
    targetModules: r.lora_target === "all" ? "all-linear" : r.lora_target.split(",").map((s) => s.trim()).filter(Boolean),
    useRslora: r.use_rslora,
    useDora: r.use_dora ?? false,
    taskType: numLabels === null ? "CAUSAL_LM" : "SEQ_CLS",
    modulesToSave: numLabels === null ? null : ["score"],
    baseModelNameOrPath: r.model_name_or_path,
  });
}

/** Throws, naming the snake_case key, when a config is not one PEFT and tunelab both accept. */
export function validateLoraConfig(c: LoraConfig, source: string): void {
  const bad = (key: string, expected: string, got: unknown): never => {
    throw new Error(`${source}: "${key}" must be ${expected}, got ${JSON.stringify(got)}`);
  };
  if (c.peftType !== "LORA") bad("peft_type", '"LORA"', c.peftType);
  if (!Number.isSafeInteger(c.r) || c.r < 1) bad("r", "a positive integer", c.r);
  if (typeof c.loraAlpha !== "number" || !(c.loraAlpha > 0)) bad("lora_alpha", "a positive number", c.loraAlpha);
  if (typeof c.loraDropout !== "number" || !(c.loraDropout >= 0 && c.loraDropout < 1)) bad("lora_dropout", "a number in [0, 1)", c.loraDropout);
  const t = c.targetModules;
  if (!(typeof t === "string" ? t.length > 0 : Array.isArray(t) && t.length > 0 && t.every((x) => typeof x === "string" && x))) {
    bad("target_modules", 'a non-empty list of module names, "all-linear", or a regex string', t);
  }
  if (typeof t === "string" && t !== "all-linear") checkPattern(source, "target_modules", t, fullMatch);
  for (const k of Object.keys(c.rankPattern)) checkPattern(source, "rank_pattern", k, suffixMatch);
  for (const k of Object.keys(c.alphaPattern)) checkPattern(source, "alpha_pattern", k, suffixMatch);
  if (c.bias !== "none") bad("bias", '"none" (bias training is not supported)', c.bias);
  if (c.fanInFanOut !== false) bad("fan_in_fan_out", "false (Llama/Qwen2 linears are [out, in])", c.fanInFanOut);
  if (c.taskType !== null && c.taskType !== "CAUSAL_LM" && c.taskType !== "SEQ_CLS") bad("task_type", '"CAUSAL_LM", "SEQ_CLS" or null', c.taskType);
  if (c.modulesToSave !== null && !(Array.isArray(c.modulesToSave) && c.modulesToSave.every((x) => typeof x === "string" && x))) {
    bad("modules_to_save", "a list of module names or null", c.modulesToSave);
  }
  if (typeof c.useRslora !== "boolean") bad("use_rslora", "true or false", c.useRslora);
  if (typeof c.useDora !== "boolean") bad("use_dora", "true or false", c.useDora);
  for (const [k, v] of Object.entries(c.rankPattern)) if (!Number.isSafeInteger(v) || v < 1) bad(`rank_pattern.${k}`, "a positive integer", v);
  for (const [k, v] of Object.entries(c.alphaPattern)) if (typeof v !== "number" || !(v > 0)) bad(`alpha_pattern.${k}`, "a positive number", v);
}

/** What patterns from adapter files may use (see util/linear-regex), for error messages. */
const PATTERN_SYNTAX = `patterns may use literals, ".", [classes], \\d \\w \\s, groups, "|", * + ? {m,n} and ^ $, up to ${MAX_REGEX_LENGTH} characters`;
/** Longest module path matched against a pattern (real ones are under 200 characters). */
const MAX_MODULE_PATH_LENGTH = 500;

/** target_modules as a string: a regex that must match the whole module path (PEFT's re.fullmatch). */
const fullMatch = (pattern: string): string => `^(?:${pattern})$`;
/** rank_pattern / alpha_pattern keys: the whole path or a dotted suffix of it (PEFT's `(.*\.)?key$`). */
const suffixMatch = (key: string): string => `^(?:.*\\.)?(?:${key})$`;

const compiled = new Map<string, LinearRegex>();

/** `source` compiled for linear-time matching, cached; throws the reason when the syntax is refused. */
function compile(source: string): LinearRegex {
  let re = compiled.get(source);
  if (!re) {
    if (compiled.size >= 1000) compiled.clear();
    re = new LinearRegex(source);
    compiled.set(source, re);
  }
  return re;
}

/** Throws, naming the file, the key and the pattern, when `pattern` cannot be matched in bounded time. */
function checkPattern(source: string, key: string, pattern: string, wrap: (p: string) => string): void {
  try {
    new LinearRegex(pattern); // alone first, so that e.g. "a)|(b" cannot pair with the wrapper's parentheses
    compile(wrap(pattern));
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`${source}: "${key}" pattern ${JSON.stringify(pattern)} is refused: ${reason}; ${PATTERN_SYNTAX}`, { cause: err });
  }
}

/** Whether `pattern` (already wrapped) matches `modulePath`, in time linear in the path's length. */
function matches(pattern: string, modulePath: string): boolean {
  if (modulePath.length > MAX_MODULE_PATH_LENGTH) {
    throw new Error(`module path "${modulePath.slice(0, 80)}…" is longer than ${MAX_MODULE_PATH_LENGTH} characters`);
  }
  return compile(pattern).test(modulePath);
}

/** The first pattern key matching `modulePath` the way PEFT matches rank_pattern/alpha_pattern keys. */
function patternValue(pattern: Record<string, number>, modulePath: string): number | undefined {
  for (const [key, value] of Object.entries(pattern)) {
    if (matches(suffixMatch(key), modulePath)) return value;
  }
  return undefined;
}

/** The LoRA rank used for one module (rank_pattern, else r). */
export function loraRank(config: LoraConfig, modulePath: string): number {
  return patternValue(config.rankPattern, modulePath) ?? config.r;
}

/** The factor the LoRA product B·A is scaled by for one module: alpha / r, or alpha / sqrt(r) with rsLoRA. */
export function loraScaling(config: LoraConfig, modulePath: string): number {
  const r = loraRank(config, modulePath);
  const alpha = patternValue(config.alphaPattern, modulePath) ?? config.loraAlpha;
  return config.useRslora ? alpha / Math.sqrt(r) : alpha / r;
}

/** Whether PEFT would put a LoRA layer on `modulePath` given `target_modules` (name suffix match, regex fullmatch, or all-linear). */
export function isTargeted(config: LoraConfig, modulePath: string): boolean {
  const t = config.targetModules;
  if (t === "all-linear") return true;
  if (typeof t === "string") return matches(fullMatch(t), modulePath);
  return t.some((name) => modulePath === name || modulePath.endsWith("." + name));
}

/** Whether a module path is one of config.modulesToSave (PEFT matches by suffix). */
export function isSavedModule(config: LoraConfig, modulePath: string): boolean {
  return (config.modulesToSave ?? []).some((name) => modulePath === name || modulePath.endsWith("." + name));
}

/** adapter_config.json's JSON object for a config (snake_case; unknown keys from `extra` kept). */
export function loraConfigToJson(c: LoraConfig): Record<string, unknown> {
  return {
    ...c.extra,
    alpha_pattern: c.alphaPattern,
    base_model_name_or_path: c.baseModelNameOrPath,
    bias: c.bias,
    fan_in_fan_out: c.fanInFanOut,
    inference_mode: c.inferenceMode,
    init_lora_weights: c.initLoraWeights,
    layers_to_transform: c.layersToTransform,
    lora_alpha: c.loraAlpha,
    lora_dropout: c.loraDropout,
    modules_to_save: c.modulesToSave,
    peft_type: c.peftType,
    r: c.r,
    rank_pattern: c.rankPattern,
    revision: c.revision,
    target_modules: c.targetModules,
    task_type: c.taskType,
    use_dora: c.useDora,
    use_rslora: c.useRslora,
  };
}

const MODELLED_KEYS = new Set(Object.keys(loraConfigToJson(makeLoraConfig({ r: PEFT_FILE_DEFAULT_R, targetModules: ["q_proj"] }))));

/** Parses an adapter_config.json object (PEFT's defaults for missing keys); `source` names it in errors. */
export function parseLoraConfig(obj: Record<string, unknown>, source = ADAPTER_CONFIG_NAME): LoraConfig {
  const peftType = obj.peft_type;
  if (peftType !== "LORA") {
    throw new Error(`${source}: "peft_type" must be "LORA" (tunelab reads LoRA adapters only), got ${JSON.stringify(peftType)}`);
  }
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) if (!MODELLED_KEYS.has(k)) extra[k] = v;
  const orNull = <T>(v: unknown): T | null => (v === undefined ? null : (v as T | null));
  const d = PEFT_CONFIG_DEFAULTS;
  const config: LoraConfig = {
    peftType: "LORA",
    r: (obj.r ?? PEFT_FILE_DEFAULT_R) as number,
    loraAlpha: (obj.lora_alpha ?? PEFT_FILE_DEFAULT_ALPHA) as number,
    loraDropout: (obj.lora_dropout ?? d.loraDropout) as number,
    targetModules: obj.target_modules as string[] | string,
    useRslora: (obj.use_rslora ?? d.useRslora) as boolean,
    useDora: (obj.use_dora ?? d.useDora) as boolean,
    bias: (obj.bias ?? d.bias) as "none",
    taskType: orNull<PeftTaskType>(obj.task_type),
    baseModelNameOrPath: orNull<string>(obj.base_model_name_or_path),
    modulesToSave: orNull<string[]>(obj.modules_to_save),
    fanInFanOut: (obj.fan_in_fan_out ?? d.fanInFanOut) as false,
    inferenceMode: (obj.inference_mode ?? d.inferenceMode) as boolean,
    initLoraWeights: (obj.init_lora_weights ?? d.initLoraWeights) as boolean | string,
    rankPattern: (obj.rank_pattern ?? {}) as Record<string, number>,
    alphaPattern: (obj.alpha_pattern ?? {}) as Record<string, number>,
    layersToTransform: orNull<number[]>(obj.layers_to_transform),
    revision: orNull<string>(obj.revision),
    extra,
  };
  if (typeof config.rankPattern !== "object" || config.rankPattern === null) {
    throw new Error(`${source}: "rank_pattern" must be an object`);
  }
  if (typeof config.alphaPattern !== "object" || config.alphaPattern === null) {
    throw new Error(`${source}: "alpha_pattern" must be an object`);
  }
  validateLoraConfig(config, source);
  return config;
}
