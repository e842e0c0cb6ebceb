/**
 * Notebook files (nbformat 4) and papermill's parameters convention: read, write the way Jupyter does (sorted keys,
 * one-space indent, multiline strings as lists of lines), and inject a cell tagged `injected-parameters` after the
 * cell tagged `parameters`.
 */
import * as fs from "node:fs";

/** A notebook output (nbformat 4). */
export interface NotebookOutput {
  output_type: "stream" | "display_data" | "execute_result" | "error";
  name?: string;
  text?: string | string[];
  data?: { [mime: string]: unknown };
  metadata?: { [key: string]: unknown };
  execution_count?: number | null;
  ename?: string;
  evalue?: string;
  traceback?: string[];
}

/** A notebook cell (nbformat 4). */
export interface NotebookCell {
  cell_type: "code" | "markdown" | "raw";
  id?: string;
  source: string | string[];
  metadata: { tags?: string[]; [key: string]: unknown };
  outputs?: NotebookOutput[];
  execution_count?: number | null;
  attachments?: unknown;
}

/** A notebook (nbformat 4). */
export interface Notebook {
  cells: NotebookCell[];
  metadata: { kernelspec?: { name?: string; display_name?: string; language?: string }; [key: string]: unknown };
  nbformat: number;
  nbformat_minor: number;
}

/** The tag of the cell holding a notebook's default parameters (papermill's). */
export const PARAMETERS_TAG = "parameters";
/** The tag of the cell `tunelab run` adds after it (papermill's). */
export const INJECTED_TAG = "injected-parameters";

/** Reads and checks a .ipynb file (nbformat 4), naming the file in every error. */
export function readNotebook(file: string): Notebook {
  let nb: Notebook;
  try {
    nb = JSON.parse(fs.readFileSync(file, "utf8")) as Notebook;
  } catch (e) {
    throw new Error(`${file}: not a readable notebook (${e instanceof Error ? e.message : String(e)})`, { cause: e });
  }
  if (typeof nb !== "object" || nb === null || !Array.isArray(nb.cells)) throw new Error(`${file}: not a notebook (no "cells" list)`);
  if (nb.nbformat !== 4) throw new Error(`${file}: nbformat ${nb.nbformat} is not supported (expected 4; convert with \`jupyter nbconvert --to notebook\`)`);
  for (const [i, c] of nb.cells.entries()) {
    if (c.cell_type !== "code" && c.cell_type !== "markdown" && c.cell_type !== "raw")
      throw new Error(`${file}: cell ${i} has cell_type ${JSON.stringify(c.cell_type)}`);
    c.metadata ??= {};
  }
  nb.metadata ??= {};
  return nb;
}

/** Joins nbformat's multiline strings (a string or a list of lines). */
export function sourceText(value: unknown): string {
  if (Array.isArray(value)) return value.join("");
  return typeof value === "string" ? value : "";
}

/** Splits text into nbformat's list of lines, each keeping its "\n". */
function lines(text: string): string[] {
  return text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}

/** The notebook as Jupyter writes it: sorted keys, one-space indent, text as lists of lines, a final newline. */
export function serializeNotebook(nb: Notebook): string {
  const splitText = (value: unknown, key: string): unknown => {
    if (typeof value !== "string") return value;
    return key === "source" || key === "text" || key.startsWith("text/") || key === "image/svg+xml" ? lines(value) : value;
  };
  const cells = nb.cells.map((c) => ({
    ...c,
    source: splitText(sourceText(c.source), "source"),
    ...(c.outputs
      ? {
          outputs: c.outputs.map((o) => ({
            ...o,
            ...(o.text !== undefined ? { text: splitText(sourceText(o.text), "text") } : {}),
            ...(o.data ? { data: Object.fromEntries(Object.entries(o.data).map(([k, v]) => [k, splitText(v, k)])) } : {}),
          })),
        }
      : {}),
  }));
  return JSON.stringify(sortKeys({ ...nb, cells }), null, 1) + "\n";
}

/** Writes the notebook (write then rename, so a reader never sees half a file). */
export function writeNotebook(file: string, nb: Notebook): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, serializeNotebook(nb));
  fs.renameSync(tmp, file);
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
  );
}

/** A `-p key=value` value: JSON where it parses (numbers, booleans, null, quoted strings, arrays, objects), else the string itself. */
export function parseParameterValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Parses `key=value` words (the CLI's `-p`) into parameters; a key must be a JavaScript identifier. */
export function parseParameterArgs(words: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const word of words) {
    const eq = word.indexOf("=");
    if (eq <= 0) throw new Error(`parameter "${word}" must be key=value (e.g. -p steps=100 or -p 'dataFile=../data/x.jsonl')`);
    const key = word.slice(0, eq);
    if (!IDENTIFIER.test(key)) throw new Error(`parameter name "${key}" is not a TypeScript identifier`);
    out[key] = parseParameterValue(word.slice(eq + 1));
  }
  return out;
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/** The top-level `const`/`let`/`var NAME = VALUE` declarations of a parameters cell: a JSON value where the literal is one, else its source text. */
export function declaredParameters(source: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const decl = /^\s*(?:export\s+)?(?:const|let|var)\s+([A-Za-z_$][\w$]*)\s*(?::[^=]+)?=(.*)$/gm;
  for (const m of source.matchAll(decl)) {
    const raw = withoutComment(m[2]).trim().replace(/;$/, "").trim();
    out[m[1]] = parseParameterValue(raw);
  }
  return out;
}

/** The line up to a `//` comment that is not inside a string or template literal. */
function withoutComment(line: string): string {
  let quote = "";
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quote) {
      if (ch === "\\") i++;
      else if (ch === quote) quote = "";
    } else if (ch === '"' || ch === "'" || ch === "`") quote = ch;
    else if (ch === "/" && line[i + 1] === "/") return line.slice(0, i);
  }
  return line;
}

/** Where the parameters cell is, or -1 when the notebook has none; two tagged cells are an error. */
export function parametersCellIndex(nb: Notebook): number {
  const tagged = nb.cells.flatMap((c, i) => (c.cell_type === "code" && (c.metadata.tags ?? []).includes(PARAMETERS_TAG) ? [i] : []));
  if (tagged.length > 1) throw new Error(`cells ${tagged.join(" and ")} are both tagged "${PARAMETERS_TAG}": tag one`);
  return tagged.length ? tagged[0] : -1;
}

/**
 * The TypeScript source of the injected cell: one `const key = <JSON>;` per parameter. The tunelab kernel (tslab)
 * compiles every cell as a module whose top-level names later cells see, and a later cell may declare a name again:
 * this is papermill's way (a later assignment wins) in TypeScript, and the new value's type is the one later cells see.
 */
export function injectedSource(params: Readonly<Record<string, unknown>>): string {
  const body = Object.entries(params).map(([key, value]) => {
    const json = JSON.stringify(value);
    if (json === undefined) throw new Error(`parameter "${key}" has no JSON form`);
    return `const ${key} = ${json};`;
  });
  return ["// Parameters (injected by tunelab run)", ...body].join("\n");
}

/**
 * A copy of `nb` with the cell tagged `injected-parameters` right after the `parameters` cell (an earlier injected
 * cell is replaced, as papermill does). Every key must be declared in the parameters cell, so a renamed parameter
 * fails loudly instead of being ignored. Without parameters the notebook is returned unchanged (no cell is added).
 */
export function injectParameters(nb: Notebook, params: Readonly<Record<string, unknown>>, file = "notebook"): Notebook {
  const cells = nb.cells.filter((c) => !(c.metadata.tags ?? []).includes(INJECTED_TAG));
  const base = { ...nb, cells };
  if (Object.keys(params).length === 0) return base;
  const index = parametersCellIndex(base);
  if (index < 0) throw new Error(`${file} has no code cell tagged "${PARAMETERS_TAG}" to inject ${Object.keys(params).join(", ")} after`);
  const declared = declaredParameters(sourceText(cells[index].source));
  for (const key of Object.keys(params)) {
    if (!IDENTIFIER.test(key)) throw new Error(`parameter name "${key}" is not a TypeScript identifier`);
    if (!(key in declared))
      throw new Error(`${file}: the parameters cell (cell ${index}) does not declare "${key}"; it declares ${Object.keys(declared).join(", ") || "nothing"}`);
  }
  const injected: NotebookCell = {
    cell_type: "code",
    id: INJECTED_TAG,
    source: injectedSource(params),
    metadata: { tags: [INJECTED_TAG] },
    outputs: [],
    execution_count: null,
  };
  return { ...base, cells: [...cells.slice(0, index + 1), injected, ...cells.slice(index + 1)] };
}
