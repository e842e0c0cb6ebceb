/** LLaMA-Factory's dataset_info.json: named datasets with a file, a formatting and column/tag mappings. */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { DataFormat } from "../types";
import { decodeUtf8 } from "../read/utf8";
import { jsonSyntaxError, lineAt, describe } from "../read/json";
import type { ColumnMap, RoleTags } from "./columns";
import { isObject } from "./detect";

/** One resolved dataset_info.json entry. */
export interface DatasetInfoEntry {
  name: string;
  /** Absolute path of the data file (file_name resolved against the dataset_info.json folder). */
  path: string;
  format: DataFormat;
  columns: ColumnMap;
  tags?: Partial<RoleTags>;
}

/** Entry fields that make LF fetch the data instead of reading file_name. */
const REMOTE_KEYS = ["hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name"] as const;

const COLUMN_KEYS = ["prompt", "query", "response", "history", "messages", "system", "text", "label"] as const;
const TAG_KEYS: Record<string, keyof RoleTags> = {
  role_tag: "roleTag",
  content_tag: "contentTag",
  user_tag: "userTag",
  assistant_tag: "assistantTag",
  system_tag: "systemTag",
  observation_tag: "observationTag",
  function_tag: "functionTag",
};

/** The raw object of a dataset_info.json (dataset name -> description). */
function readInfo(infoPath: string): Record<string, unknown> {
  const text = decodeUtf8(readFileSync(infoPath), infoPath).replace(/^\uFEFF/, "");
  const err = jsonSyntaxError(text);
  if (err) throw new Error(`${infoPath}:${lineAt(text, err.offset)}: malformed JSON: ${err.message}`);
  const info: unknown = JSON.parse(text);
  if (!isObject(info)) throw new Error(`${infoPath}: expected an object of named datasets, got ${describe(info)}`);
  return info;
}

/** Names of all datasets in a dataset_info.json. */
export function datasetInfoNames(infoPath: string): string[] {
  return Object.keys(readInfo(infoPath));
}

/**
 * Every local (file_name) entry of a dataset_info.json; hub-only entries are skipped, since LLaMA-Factory's own
 * file lists many. tunelab also accepts `"formatting": "classification"` with text/label columns.
 */
export function readDatasetInfo(infoPath: string): DatasetInfoEntry[] {
  return Object.entries(readInfo(infoPath))
    .filter(([, e]) => !isObject(e) || (e.file_name !== undefined && !REMOTE_KEYS.some((k) => e[k] !== undefined)))
    .map(([name, e]) => entry(infoPath, name, e));
}

/** The named entry of a dataset_info.json, or an error listing the names it has. */
export function datasetInfoEntry(infoPath: string, name: string): DatasetInfoEntry {
  const info = readInfo(infoPath);
  if (!(name in info)) {
    throw new Error(`${infoPath}: no dataset named "${name}"; it has ${Object.keys(info).map((n) => `"${n}"`).join(", ")}`);
  }
  return entry(infoPath, name, info[name]);
}

function entry(infoPath: string, name: string, e: unknown): DatasetInfoEntry {
  const at = `${infoPath}: dataset "${name}"`;
  if (!isObject(e)) throw new Error(`${at}: expected an object, got ${describe(e)}`);
  for (const remote of REMOTE_KEYS) {
    // LF loads from these first, even when the entry also has a file_name.
    if (e[remote] !== undefined) {
      throw new Error(
        `${at}: "${remote}" (${JSON.stringify(e[remote])}) is fetched from the network, and tunelab works offline; download the data, ` +
          `put it beside dataset_info.json and give the entry a "file_name" instead`,
      );
    }
  }
  if (typeof e.file_name !== "string" || e.file_name === "") throw new Error(`${at}: field "file_name": expected the data file's name`);
  if (e.ranking === true) {
    throw new Error(`${at}: field "ranking": true marks a preference (chosen/rejected) dataset, for LF's stages rm/dpo/kto, which tunelab does not train yet; give a dataset without ranking for pt/sft`);
  }
  const formatting = e.formatting ?? "alpaca";
  if (formatting !== "alpaca" && formatting !== "sharegpt" && formatting !== "openai" && formatting !== "classification") {
    throw new Error(`${at}: field "formatting": expected "alpaca", "sharegpt", "openai" or "classification", got ${describe(formatting)}`);
  }
  const columns: ColumnMap = {};
  if (e.columns !== undefined) {
    if (!isObject(e.columns)) throw new Error(`${at}: field "columns": expected an object, got ${describe(e.columns)}`);
    for (const [k, v] of Object.entries(e.columns)) {
      if (!(COLUMN_KEYS as readonly string[]).includes(k)) continue; // tools, images, chosen, ...: not used here
      if (typeof v !== "string") throw new Error(`${at}: field "columns.${k}": expected a column name, got ${describe(v)}`);
      columns[k as (typeof COLUMN_KEYS)[number]] = v;
    }
  }
  let tags: Partial<RoleTags> | undefined;
  if (e.tags !== undefined) {
    if (!isObject(e.tags)) throw new Error(`${at}: field "tags": expected an object, got ${describe(e.tags)}`);
    tags = {};
    for (const [k, v] of Object.entries(e.tags)) {
      const key = TAG_KEYS[k];
      if (!key) throw new Error(`${at}: field "tags.${k}": unknown tag; expected one of ${Object.keys(TAG_KEYS).join(", ")}`);
      if (typeof v !== "string") throw new Error(`${at}: field "tags.${k}": expected a string, got ${describe(v)}`);
      tags[key] = v;
    }
  }
  let format: DataFormat;
  if (formatting === "classification") format = "classification";
  else if (formatting === "sharegpt" || formatting === "openai") {
    // LLaMA-Factory's defaults for both: messages under "conversations", the tags the entry gives (else the data's own).
    format = formatting;
    columns.messages ??= "conversations";
  }
  else {
    // LLaMA-Factory's pre-training entries are alpaca entries whose only column is the prompt (e.g. {"prompt": "text"}).
    const onlyPrompt = columns.prompt !== undefined && columns.prompt !== "instruction" &&
      columns.response === undefined && columns.query === undefined && columns.history === undefined;
    if (onlyPrompt) {
      format = "pretrain";
      columns.text = columns.prompt;
    } else format = "alpaca";
  }
  return { name, path: resolve(dirname(infoPath), e.file_name), format, columns, tags };
}
