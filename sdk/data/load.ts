/** Loading a data file (or a dataset_info.json entry) into a validated, normalised Dataset. */
import { readdirSync, statSync } from "node:fs";
import { basename, dirname, extname, join } from "node:path";
import { readRecords, type FileType } from "./read";
import { detectFormat } from "./formats/detect";
import { makeNormalizer } from "./formats/normalize";
import { datasetInfoEntry, datasetInfoNames } from "./formats/dataset-info";
import type { ColumnMap, RoleTags } from "./formats/columns";
import { Dataset } from "./dataset";
import { DataError, DataReport, type DataIssue, type OnInvalid } from "./report";
import type { DataFormat, Row } from "./types";

/** Options of `loadDataset`. */
export interface LoadOptions {
  /** The data format; detected from the fields when omitted. */
  format?: DataFormat;
  /** The file type; taken from the extension when omitted. */
  fileType?: FileType;
  /** Which fields hold what (LLaMA-Factory column names plus text/label). */
  columns?: ColumnMap;
  /** Message role/content tags for sharegpt-style data. */
  tags?: Partial<RoleTags>;
  /** Invalid rows: "error" (default) stops with every problem listed; "drop" drops and counts them. */
  onInvalid?: OnInvalid;
  /** For a dataset_info.json (or a folder holding one): the dataset's name, or several comma-separated (concatenated in order, as LLaMA-Factory does). */
  dataset?: string;
  /** Keep only the first N rows of each dataset (each file of a list, each dataset_info.json entry), as LLaMA-Factory's max_samples. */
  maxSamples?: number;
}

/**
 * Loads a JSON, JSONL, CSV/TSV, Parquet or TXT file, or a named entry of a LLaMA-Factory dataset_info.json (pass
 * the json or its folder, plus `dataset`). Several paths are loaded and concatenated. Malformed and invalid rows
 * are an error naming file, line and field, or with `onInvalid: "drop"` are dropped and counted in `report`.
 */
export async function loadDataset(path: string | readonly string[], options: LoadOptions = {}): Promise<Dataset> {
  if (typeof path !== "string") {
    if (path.length === 0) throw new Error("loadDataset: no paths given");
    let out: Dataset | undefined;
    for (const p of path) {
      const d = await loadDataset(p, options);
      out = out ? out.concat(d) : d;
    }
    return out!;
  }
  const info = datasetInfoPath(path);
  if (info) {
    const names = (options.dataset ?? soleEntry(info))
      .split(",")
      .map((n) => n.trim())
      .filter(Boolean);
    if (names.length === 0) throw new Error(`loadDataset option dataset: no dataset name in ${JSON.stringify(options.dataset)}`);
    let out: Dataset | undefined;
    for (const name of names) {
      const d = await loadInfoEntry(info, path, name, options);
      out = out ? out.concat(d) : d;
    }
    return out!;
  }
  if (options.dataset !== undefined) throw new Error(`loadDataset option dataset: ${path} is not a dataset_info.json or a folder holding one`);
  return firstSamples(await loadFile(path, path, options), options.maxSamples);
}

/**
 * The data files a load reads: the paths themselves, or for a dataset_info.json (or its folder) the json and the
 * files of the named entries (for run manifests).
 */
export function dataFilesOf(path: string | readonly string[], dataset?: string): string[] {
  if (typeof path !== "string") return path.flatMap((p) => dataFilesOf(p, dataset));
  const info = datasetInfoPath(path);
  if (!info) return [path];
  const names = (dataset ?? soleEntry(info)).split(",").map((n) => n.trim()).filter(Boolean);
  const files = names.flatMap((name) => {
    const e = datasetInfoEntry(info, name);
    if (!statSync(e.path, { throwIfNoEntry: false })?.isDirectory()) return [e.path];
    return readdirSync(e.path).filter((f) => !f.startsWith(".")).sort().map((f) => join(e.path, f));
  });
  return [info, ...new Set(files)];
}

/** One named entry of a dataset_info.json: its file, or every file of its folder (sorted by name), as LF reads file_name. */
async function loadInfoEntry(info: string, path: string, name: string, options: LoadOptions): Promise<Dataset> {
  const e = datasetInfoEntry(info, name);
  const shown = join(dirname(path.endsWith(".json") ? path : join(path, "dataset_info.json")), basename(e.path));
  const entryOptions: LoadOptions = {
    ...options,
    format: options.format ?? e.format,
    columns: { ...e.columns, ...options.columns },
    tags: options.tags ?? e.tags,
  };
  let files: { file: string; source: string }[] = [{ file: e.path, source: shown }];
  if (statSync(e.path, { throwIfNoEntry: false })?.isDirectory()) {
    const inside = readdirSync(e.path)
      .filter((f) => !f.startsWith("."))
      .sort();
    if (inside.length === 0) throw new Error(`${info}: dataset "${name}": file_name ${e.path} is an empty folder`);
    const exts = new Set(inside.map((f) => extname(f).toLowerCase()));
    if (exts.size > 1) throw new Error(`${info}: dataset "${name}": the files of folder ${e.path} must all be of one type (LF's rule), found ${[...exts].join(", ")}`);
    files = inside.map((f) => ({ file: join(e.path, f), source: join(shown, f) }));
  }
  let out: Dataset | undefined;
  for (const f of files) {
    const d = await loadFile(f.file, f.source, entryOptions);
    out = out ? out.concat(d) : d;
  }
  return firstSamples(out!, options.maxSamples);
}

function firstSamples(ds: Dataset, n: number | undefined): Dataset {
  if (n === undefined) return ds;
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`loadDataset option maxSamples must be a positive whole number, got ${n}`);
  return ds.length > n ? ds.take(n) : ds;
}

async function loadFile(path: string, source: string, options: LoadOptions): Promise<Dataset> {
  const { records, issues: readIssues } = await readRecords(path, { fileType: options.fileType, source });
  const detected = options.format === undefined || (options.tags === undefined && isChat(options.format))
    ? safeDetect(records, source, options.format)
    : undefined;
  const format = options.format ?? detected!.format;
  // Tags the caller gave are exact; detected ones are defaults, so the common role aliases stay accepted.
  const normalize = makeNormalizer(source, {
    format,
    columns: options.columns,
    tags: options.tags ?? detected?.tags,
    exactTags: options.tags !== undefined,
  });
  const rows: Row[] = [];
  const issues: DataIssue[] = [...readIssues];
  for (const rec of records) {
    const n = normalize(rec);
    if (n.row) rows.push(n.row);
    else issues.push(n.issue);
  }
  issues.sort((a, b) => a.line - b.line);
  if (issues.length > 0 && (options.onInvalid ?? "error") === "error") {
    throw new DataError(issues, issues.length === 1 ? undefined : `${source}: ${issues.length} invalid rows (pass onInvalid: "drop" to drop and count them):`);
  }
  return new Dataset(rows, new DataReport(records.length + readIssues.length, issues));
}

const isChat = (f: DataFormat) => f === "sharegpt" || f === "openai";

/** Detection; when the format was given, only the chat tags are wanted and a failed guess is no error. */
function safeDetect(records: Parameters<typeof detectFormat>[0], source: string, given: DataFormat | undefined) {
  if (given === undefined) return detectFormat(records, source);
  try {
    const d = detectFormat(records, source);
    return isChat(d.format) ? { format: given, tags: d.tags } : undefined;
  } catch {
    return undefined;
  }
}

function datasetInfoPath(path: string): string | undefined {
  if (basename(path) === "dataset_info.json") return path;
  try {
    if (statSync(path).isDirectory()) {
      const p = join(path, "dataset_info.json");
      statSync(p);
      return p;
    }
  } catch {
    if (!path.endsWith(".json")) return undefined;
  }
  return undefined;
}

function soleEntry(info: string): string {
  const names = datasetInfoNames(info);
  if (names.length === 1) return names[0];
  throw new Error(`loadDataset: ${info} holds ${names.length} datasets (${names.map((n) => `"${n}"`).join(", ")}); pass the dataset option to choose one`);
}
