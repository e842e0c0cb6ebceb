/** Checking one recipe value against its schema entry, and reading one from command-line text. */
import { LINEAR_MODULES } from "../io/config";
import { CHAT_TEMPLATES } from "../io/templates";
import { augmentProblem } from "./recipe-augment";
import { RECIPE_SCHEMA, type OptionSpec, type Recipe, type RecipeKey } from "./recipe-schema";

/** "a, b or c". */
export function orList(items: readonly string[]): string {
  return items.length < 2 ? items.join("") : `${items.slice(0, -1).join(", ")} or ${items[items.length - 1]}`;
}

/** A value as error messages show it (numbers as JavaScript prints them, so Infinity and NaN read as such). */
export function shown(value: unknown): string {
  return typeof value === "number" || value === undefined ? String(value) : JSON.stringify(value);
}

const ALL_TARGETS = ["all", "all-linear"];

/** The names in a lora_target value that are not linear modules ("all" and "all-linear" count only alone). */
function unknownTargets(names: readonly string[]): string[] {
  if (names.length === 1 && ALL_TARGETS.includes(names[0])) return [];
  return names.filter((n) => !(LINEAR_MODULES as readonly string[]).includes(n));
}

/** What a spec allows, in words. */
export function allowedText(spec: OptionSpec): string {
  switch (spec.type) {
    case "path":
      return "a path";
    case "paths":
      return "a data file path or a list of them";
    case "name":
      return "a non-empty name";
    case "template":
      return `unset (the tokenizer's own) or one of ${Object.keys(CHAT_TEMPLATES).join(", ")}`;
    case "modules":
      return `"all" (or "all-linear") or a comma-separated list of ${LINEAR_MODULES.join(", ")}`;
    case "checkpoint":
      return "a checkpoint folder path, true (the newest in output_dir) or false";
    case "augment":
      return "a mapping of augment options";
    case "boolean":
      return "true or false";
    case "enum":
      return spec.spellings ? `one of ${orList(spec.values)} (also spelled ${Object.keys(spec.spellings).join(", ")})` : orList(spec.values);
    case "integer":
      return spec.min === 1 ? "a positive whole number" : `a whole number >= ${spec.min}`;
    case "number":
      if (spec.max !== undefined) return `a number in ${spec.minExclusive ? "(" : "["}${spec.min}, ${spec.max}${spec.maxExclusive ? ")" : "]"}`;
      return spec.min === 0 && spec.minExclusive ? "a positive number" : `a number ${spec.minExclusive ? ">" : ">="} ${spec.min}`;
  }
}

/** Why `value` is not allowed for `spec` (what is allowed), or null when it is. */
export function valueProblem(spec: OptionSpec, value: unknown): string | null {
  const allowed = allowedText(spec);
  const nonEmpty = (v: unknown) => typeof v === "string" && v !== "";
  switch (spec.type) {
    case "path":
    case "name":
      return nonEmpty(value) ? null : allowed;
    case "paths":
      return nonEmpty(value) || (Array.isArray(value) && value.length > 0 && value.every(nonEmpty)) ? null : allowed;
    case "template":
      return typeof value === "string" && value in CHAT_TEMPLATES ? null : allowed;
    case "modules": {
      const names =
        typeof value === "string"
          ? value
              .split(",")
              .map((n) => n.trim())
              .filter(Boolean)
          : [];
      if (names.length === 0) return allowed;
      const unknown = unknownTargets(names);
      return unknown.length === 0 ? null : `${allowed} (unknown: ${unknown.join(", ")})`;
    }
    case "checkpoint":
      return typeof value === "boolean" || nonEmpty(value) ? null : allowed;
    case "augment":
      return augmentProblem(value);
    case "boolean":
      return typeof value === "boolean" ? null : allowed;
    case "enum":
      return typeof value === "string" && (spec.values.includes(value) || (spec.spellings !== undefined && Object.hasOwn(spec.spellings, value)))
        ? null
        : allowed;
    case "integer":
    case "number": {
      const ok =
        typeof value === "number" &&
        Number.isFinite(value) &&
        (spec.type === "number" || Number.isInteger(value)) &&
        (spec.minExclusive ? value > spec.min : value >= spec.min) &&
        (spec.max === undefined || (spec.maxExclusive ? value < spec.max : value <= spec.max));
      return ok ? null : allowed;
    }
  }
}

/** An allowed value as a recipe keeps it: enum spellings and "all-linear" become the canonical names. */
export function canonicalValue(spec: OptionSpec, value: unknown): unknown {
  if (spec.type === "enum" && spec.spellings && typeof value === "string" && Object.hasOwn(spec.spellings, value)) return spec.spellings[value];
  if (spec.type === "modules" && typeof value === "string" && value.trim() === "all-linear") return "all";
  return value;
}

/**
 * A command-line text as the value of option `key`: numbers and booleans parsed where the option takes them, a
 * checkpoint's "true"/"false" as booleans, a bare flag as true; anything else stays text for the check to reject.
 */
export function valueFromText(key: string, text: unknown): unknown {
  if (typeof text !== "string") return text;
  const spec = (RECIPE_SCHEMA as Record<string, OptionSpec>)[key] as OptionSpec | undefined;
  const type = spec?.type;
  const takesBoolean = type === undefined || type === "boolean" || type === "checkpoint";
  if (takesBoolean && (text === "true" || text === "false")) return text === "true";
  const takesNumber = type === undefined || type === "number" || type === "integer";
  if (takesNumber && text.trim() !== "" && !Number.isNaN(Number(text))) return Number(text);
  return text;
}

/** Reads and checks one option from a command-line flag, e.g. parseOption("device", "tpu", "--device") throws naming the allowed devices. */
export function parseOption<K extends RecipeKey>(key: K, text: unknown, flag = `--${key}`): Recipe[K] {
  const spec: OptionSpec = RECIPE_SCHEMA[key];
  const value = valueFromText(key, text);
  const problem = valueProblem(spec, value);
  if (problem) throw new Error(`${flag} must be ${problem}, got ${shown(value)}`);
  return canonicalValue(spec, value) as Recipe[K];
}
