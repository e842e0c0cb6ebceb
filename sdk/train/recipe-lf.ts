/**
 * Reading a recipe the way LLaMA-Factory reads it, before tunelab's own checks: unset values, LF's keys that are not
 * options here (notice or refusal, from recipe-lf-keys.ts), LF's value conventions, and continuing an adapter, whose
 * adapter_config.json decides the LoRA shape.
 */
import * as path from "node:path";
import { LINEAR_MODULES } from "../io/config";
import { adapterPaths, readAdapterConfigJson } from "../io/peft";
import { CHAT_TEMPLATES } from "../io/templates";
import { shown } from "./recipe-check";
import { LF_KEYS, LF_REFUSED_VALUES, LF_TEMPLATES, lfKeyMessage } from "./recipe-lf-keys";

/** LF templates that are prompt formats of their own rather than a model family's chat format. */
const GENERIC_LF_TEMPLATES: ReadonlySet<string> = new Set(["alpaca", "default", "empty", "vicuna"]);
import { IGNORED_KEYS, optionSpec } from "./recipe-schema";

/** Where notice lines go (the CLI prints them to stderr). */
export type NoticeSink = (line: string) => void;

/**
 * The recipe input as tunelab's options, read as LF reads it; LF-only keys are gone, each having said its one notice
 * line or thrown its refusal. Throws on a key neither tunelab nor LF knows.
 */
export function readLfConventions(input: Record<string, unknown>, source: string, notice: NoticeSink): Record<string, unknown> {
  // HfArgumentParser: null is the field's default, i.e. unset.
  const r: Record<string, unknown> = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== null && v !== undefined));
  const say = (line: string) => notice(`${source}: ${line}`);
  const refuse = (line: string): never => {
    throw new Error(`${source}: ${line}`);
  };

  for (const [key, byValue] of Object.entries(LF_REFUSED_VALUES)) {
    const why = typeof r[key] === "string" ? byValue[r[key] as string] : undefined;
    if (why) refuse(why);
  }
  // transformers' -1 means "not set" for max_steps; epochs or a warmup ratio written alone decide, as in LF.
  if (r.max_steps === -1) delete r.max_steps;
  if (r.num_train_epochs !== undefined && r.max_steps === undefined) r.max_steps = 0;
  if (typeof r.warmup_ratio === "number" && r.warmup_ratio > 0 && r.warmup_steps === undefined) r.warmup_steps = 0;
  strategies(r, say, refuse);
  // A model family's LF template renders what that family's tokenizer template does; LF's generic formats (alpaca,
  // vicuna, default, empty) would change the prompts, so they stay errors that list the templates tunelab has.
  if (typeof r.template === "string" && !(r.template in CHAT_TEMPLATES) && LF_TEMPLATES.has(r.template) && !GENERIC_LF_TEMPLATES.has(r.template)) {
    say(
      `template: "${r.template}" is a LLaMA-Factory template tunelab has no copy of; the tokenizer's own chat template ` +
        `(tokenizer_config.json) is used, which for the model's own family renders the same conversations`,
    );
    delete r.template;
  }
  if (r.stage === "pt" && r.packing === undefined && r.dataset !== undefined && r.dataset_path === undefined) {
    say("packing: unset; LLaMA-Factory packs stage pt data by default, tunelab packs only with packing: true (write it to match LF)");
  }

  // With early stopping tunelab restores the best adapter at the end: what load_best_model_at_end asks for.
  if (r.load_best_model_at_end === true && typeof r.early_stopping_steps === "number" && r.early_stopping_steps > 0) delete r.load_best_model_at_end;

  for (const key of Object.keys(r)) {
    if (optionSpec(key)) continue;
    if (IGNORED_KEYS.includes(key)) {
      delete r[key]; // accepted, no effect, nothing to say (do_train)
      continue;
    }
    if (!LF_KEYS[key]) throw new Error(`${source}: unknown option "${key}" (neither a tunelab option nor a LLaMA-Factory key; see docs/recipes.md)`);
    const m = lfKeyMessage(key, r[key]);
    if (m?.kind === "refuse") refuse(m.text);
    if (m) say(m.text);
    delete r[key];
  }
  dataLocation(r, source);
  return r;
}

/** eval_strategy / evaluation_strategy / save_strategy as tunelab's eval_steps and save_steps. */
function strategies(r: Record<string, unknown>, say: (s: string) => void, refuse: (s: string) => never): void {
  for (const key of ["eval_strategy", "evaluation_strategy"]) {
    const v = r[key];
    if (v === undefined) continue;
    delete r[key];
    if (v === "no") {
      if (typeof r.eval_steps === "number" && r.eval_steps > 0)
        say(`${key}: "no" turns eval_steps off; tunelab still evaluates the validation split once at the end`);
      r.eval_steps = 0;
    } else if (v === "steps") {
      // transformers: eval_steps defaults to logging_steps.
      r.eval_steps ??= r.logging_steps ?? optionDefault("logging_steps");
    } else if (v === "epoch") {
      refuse(`${key}: "epoch" is not supported: tunelab evaluates every eval_steps steps; use ${key}: steps with eval_steps`);
    } else refuse(`${key} must be "no", "steps" or "epoch" (LF), got ${shown(v)}`);
  }
  const save = r.save_strategy;
  if (save !== undefined) {
    delete r.save_strategy;
    if (save === "no") {
      say('save_strategy: "no" turns save_steps off; tunelab still writes one checkpoint at the end');
      r.save_steps = 0;
    } else if (save === "epoch" || save === "best") {
      refuse(`save_strategy: "${save}" is not supported: tunelab saves every save_steps steps (and keeps the best); use save_strategy: steps with save_steps`);
    } else if (save !== "steps") refuse(`save_strategy must be "no", "steps", "epoch" or "best" (LF), got ${shown(save)}`);
  }
}

function optionDefault(key: string): unknown {
  const spec = optionSpec(key);
  return spec && "default" in spec ? spec.default : undefined;
}

/** dataset_path from dataset + dataset_dir, as LF finds dataset_info.json. */
function dataLocation(r: Record<string, unknown>, source: string): void {
  if (r.dataset_dir !== undefined && r.dataset === undefined) {
    throw new Error(`${source}: dataset_dir is given without dataset; name the dataset_info.json entries with dataset`);
  }
  if (r.eval_dataset !== undefined && typeof r.val_size === "number" && r.val_size > 0) {
    throw new Error(`${source}: eval_dataset and val_size are both given; use one (LF refuses both together too)`);
  }
  if (r.dataset === undefined) return;
  const dir = typeof r.dataset_dir === "string" ? r.dataset_dir : "data";
  const derived = path.join(dir, "dataset_info.json");
  if (r.dataset_path === undefined) r.dataset_path = derived;
  else if (r.dataset_dir !== undefined && r.dataset_path !== derived) {
    throw new Error(`${source}: dataset_path ${shown(r.dataset_path)} and dataset_dir ${shown(r.dataset_dir)} are both given; give one`);
  }
}

/** The recipe's LoRA keys as a PEFT adapter_config.json states them. */
interface AdapterShape {
  lora_rank: number;
  lora_alpha: number;
  lora_dropout: number;
  /** undefined when target_modules is not expressible as lora_target (a regex, or full module paths). */
  lora_target?: string;
  use_rslora: boolean;
  use_dora: boolean;
}

function adapterShape(dir: string): AdapterShape {
  const c = readAdapterConfigJson(dir);
  const t = c.target_modules;
  let target: string | undefined;
  if (t === "all-linear") target = "all";
  else if (Array.isArray(t) && t.length > 0 && t.every((x) => (LINEAR_MODULES as readonly unknown[]).includes(x))) target = [...(t as string[])].join(",");
  return {
    lora_rank: typeof c.r === "number" ? c.r : 8, // PEFT's defaults for keys the file leaves out
    lora_alpha: typeof c.lora_alpha === "number" ? c.lora_alpha : 8,
    lora_dropout: typeof c.lora_dropout === "number" ? c.lora_dropout : 0,
    lora_target: target,
    use_rslora: c.use_rslora === true,
    use_dora: c.use_dora === true,
  };
}

const sameTargets = (a: string, b: string) => {
  const set = (s: string) =>
    s.trim() === "all-linear"
      ? "all"
      : s
          .split(",")
          .map((x) => x.trim())
          .filter(Boolean)
          .sort()
          .join(",");
  return set(a) === set(b);
};

/**
 * Continuing an adapter (adapter_name_or_path with LoRA): its adapter_config.json decides r, alpha, dropout, targets,
 * rsLoRA and DoRA, as in LLaMA-Factory; a lora_* key the recipe writes that disagrees is an error naming both values.
 */
export function continueAdapter(r: Record<string, unknown>, source: string): void {
  if (typeof r.adapter_name_or_path !== "string" || (r.finetuning_type ?? "lora") !== "lora") return;
  const dir = r.adapter_name_or_path;
  if (dir.includes(",")) {
    throw new Error(`${source}: adapter_name_or_path names several adapters (${dir}); tunelab continues one: merge the others into the base first`);
  }
  const shape = adapterShape(dir);
  const file = adapterPaths(dir).config;
  const peftName: Record<keyof AdapterShape, string> = {
    lora_rank: "r",
    lora_alpha: "lora_alpha",
    lora_dropout: "lora_dropout",
    lora_target: "target_modules",
    use_rslora: "use_rslora",
    use_dora: "use_dora",
  };
  for (const key of Object.keys(peftName) as (keyof AdapterShape)[]) {
    const fromAdapter = shape[key];
    if (fromAdapter === undefined) continue;
    if (key === "use_dora" && !optionSpec("use_dora")) continue; // DoRA adapters are refused when loaded
    const written = r[key];
    const agrees =
      written === undefined || (key === "lora_target" ? typeof written === "string" && sameTargets(written, fromAdapter as string) : written === fromAdapter);
    if (!agrees) {
      throw new Error(
        `${source}: ${key} is ${shown(written)} but the adapter being continued has ${peftName[key]} = ${shown(fromAdapter)} (${file}); ` +
          `when training continues an adapter its own config decides: remove ${key} or make it ${shown(fromAdapter)}`,
      );
    }
    r[key] = fromAdapter;
  }
}
