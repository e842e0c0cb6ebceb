/** A recipe's `augment` option: its shape, its check, and its translation to and from the data layer's options. */
import type { AugmentOptions } from "../data/augment";

/** Data augmentation that a recipe can describe (pluggable translators/lexicons are notebook-only). */
export interface RecipeAugment {
  synonyms?: number;
  swap?: number;
  delete?: number;
  insert?: number;
  per_row?: number;
  fraction?: number;
  templates?: { templates: string[] | Record<string, string[]>; slots?: Record<string, string[]> };
}

/** The rates, which EDA defines as shares of a text's words (or a per-word probability). */
const RATES = ["synonyms", "swap", "delete", "insert"] as const;
const KEYS: readonly string[] = [...RATES, "per_row", "fraction", "templates"];

/** What a recipe's augment value must be, naming the sub-key at fault, or null when it is fine. */
export function augmentProblem(value: unknown): string | null {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return `a mapping of ${KEYS.join(", ")}`;
  const a = value as Record<string, unknown>;
  const unknown = Object.keys(a).filter((k) => !KEYS.includes(k));
  if (unknown.length) return `a mapping of ${KEYS.join(", ")} (unknown: ${unknown.join(", ")})`;
  const finite = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
  for (const rate of RATES) {
    const v = a[rate];
    if (v !== undefined && !(finite(v) && v >= 0 && v <= 1)) return `a mapping whose ${rate} is a rate in [0, 1]`;
  }
  if (a.per_row !== undefined && !(Number.isInteger(a.per_row) && (a.per_row as number) >= 1)) return "a mapping whose per_row is a positive whole number";
  if (a.fraction !== undefined && !(finite(a.fraction) && a.fraction > 0 && a.fraction <= 1)) return "a mapping whose fraction is in (0, 1]";
  const t = a.templates as Record<string, unknown> | undefined;
  if (t !== undefined && (typeof t !== "object" || t === null || typeof t.templates !== "object" || t.templates === null)) {
    return "a mapping whose templates has templates (a list, or lists by label) and optional slots";
  }
  return null;
}

/** Recipe augment options in the data layer's terms. */
export function augmentOptions(a: RecipeAugment, seed: number): AugmentOptions {
  return {
    seed,
    perRow: a.per_row,
    fraction: a.fraction,
    synonyms: a.synonyms,
    swap: a.swap,
    delete: a.delete,
    insert: a.insert,
    templates: a.templates,
  };
}

/** A notebook's augment options as a recipe value; `fail` is called when they hold code (a lexicon or translator). */
export function recipeAugmentOf(a: AugmentOptions, fail: (why: string) => never): RecipeAugment {
  if (a.lexicon || a.backTranslation) fail("a custom lexicon or translator is code, not a recipe value");
  return {
    synonyms: a.synonyms,
    swap: a.swap,
    delete: a.delete,
    insert: a.insert,
    per_row: a.perRow,
    fraction: a.fraction,
    templates: a.templates ? { templates: a.templates.templates as string[], slots: a.templates.slots as Record<string, string[]> } : undefined,
  };
}
