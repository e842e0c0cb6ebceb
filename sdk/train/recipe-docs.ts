/** docs/recipes.md's option tables, written from the recipe schema (scripts/recipe-docs.ts writes them; a test compares). */
import { RECIPE_SCHEMA, type OptionSection, type OptionSpec } from "./recipe-schema";

/** The markers around the generated part of docs/recipes.md. */
export const DOCS_BEGIN = "<!-- recipe options: generated from sdk/train/recipe-schema.ts by scripts/recipe-docs.ts; edit the schema, not this -->";
export const DOCS_END = "<!-- end of recipe options -->";

const SECTIONS: Record<OptionSection, string> = {
  model: "Model and method",
  lora: "LoRA",
  data: "Data",
  optim: "Optimizer and schedule",
  length: "Length of training, evaluation, checkpoints",
};

const code = (s: string) => `\`${s}\``;

/** A number as people write it in a recipe (3e-5 rather than 0.00003). */
function numberText(n: number): string {
  return n !== 0 && Math.abs(n) < 1e-3 ? n.toExponential() : String(n);
}

function defaultCell(spec: OptionSpec): string {
  if (spec.required) return "required";
  if (spec.derived) return spec.derived;
  if (spec.defaultDoc) return spec.defaultDoc;
  const d = "default" in spec ? spec.default : undefined;
  if (d === undefined) return "unset";
  return typeof d === "string" ? code(d) : typeof d === "number" ? numberText(d) : String(d);
}

/** Where the SDK sets the option. */
function sdkCell(spec: OptionSpec): string {
  switch (spec.set) {
    case "fit":
      return [spec.sdk, spec.sdkAlias]
        .filter((n): n is string => !!n)
        .map(code)
        .join(", ");
    case "lora":
      return code(`lora({ ${spec.sdk} })`);
    case "split":
      return code(`split({ ${spec.sdk} })`);
    case "load":
      return code(spec.sdk === "path" ? "ds.load(path)" : `ds.load(path, { ${spec.sdk} })`);
    case "val":
      return code(`val(path, { ${spec.sdk} })`);
    case "augment":
      return code(`augment(${spec.sdk})`);
    case "model":
      return code(`fit(${spec.sdk})`);
  }
}

/** The option tables, one per section, as Markdown. */
export function recipeOptionsMarkdown(): string {
  const entries = Object.entries(RECIPE_SCHEMA as Record<string, OptionSpec>);
  return (Object.keys(SECTIONS) as OptionSection[])
    .map((section) => {
      const rows = entries
        .filter(([, spec]) => spec.section === section)
        .map(([key, spec]) => `| ${code(key)} | ${defaultCell(spec)} | ${sdkCell(spec)} | ${spec.from} | ${spec.doc} |`);
      return [`### ${SECTIONS[section]}`, "", "| Key | Default | SDK | Name from | Meaning |", "| --- | --- | --- | --- | --- |", ...rows].join("\n");
    })
    .join("\n\n");
}

/** `doc` with the text between the markers replaced by the current tables. */
export function withRecipeOptions(doc: string): string {
  const begin = doc.indexOf(DOCS_BEGIN);
  const end = doc.indexOf(DOCS_END);
  if (begin < 0 || end < begin) throw new Error(`the recipe docs need the markers ${DOCS_BEGIN} ... ${DOCS_END}`);
  return `${doc.slice(0, begin + DOCS_BEGIN.length)}\n\n${recipeOptionsMarkdown()}\n\n${doc.slice(end)}`;
}
