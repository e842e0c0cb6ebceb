/** Template filling: `"Hi, {text} {closing}"` with slot values chosen at random under a seed. */
import type { Rng } from "../../util/random";

/** Slot names a template may use besides the user's own: the row's text and (classification) label. */
export const ROW_SLOTS = ["text", "label"] as const;

/** Template slots named in `template` ({name}; {{ and }} are literal braces). */
export function templateSlots(template: string): string[] {
  const names: string[] = [];
  template.replace(/\{\{|\}\}|\{([^{}]*)\}/g, (m, name: string | undefined) => {
    if (name !== undefined) names.push(name);
    return m;
  });
  return names;
}

/**
 * Fills a template: `fixed` values (the row's text/label) first, else a random value of `slots[name]`.
 * An unknown slot is an error naming the template and the slots it could use.
 */
export function fillTemplate(
  template: string,
  slots: Readonly<Record<string, readonly string[]>>,
  rng: Rng,
  fixed: Readonly<Record<string, string>> = {},
): string {
  return template.replace(/\{\{|\}\}|\{([^{}]*)\}/g, (m, name: string | undefined) => {
    if (name === undefined) return m === "{{" ? "{" : "}";
    if (name in fixed) return fixed[name];
    const values = slots[name];
    if (!values || values.length === 0) {
      const known = [...Object.keys(fixed), ...Object.keys(slots)];
      throw new Error(`template ${JSON.stringify(template)}: slot {${name}} has no values (known slots: ${known.join(", ") || "none"})`);
    }
    return values[rng.int(values.length)];
  });
}
