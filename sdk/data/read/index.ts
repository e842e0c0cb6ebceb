/** Reads a data file of any supported type into raw records with line numbers. */
import { readFileSync, statSync } from "node:fs";
import { extname } from "node:path";
import { decodeUtf8 } from "./utf8";
import { readJsonArray, readJsonl, type ReadResult } from "./json";
import { readCsv } from "./csv";
import { readParquet } from "./parquet";

export type { RawRecord, ReadResult } from "./json";

/** File types the reader understands; `txt` is one pre-training text per non-blank line. */
export type FileType = "json" | "jsonl" | "csv" | "tsv" | "parquet" | "txt";

const BY_EXTENSION: Record<string, FileType> = {
  ".json": "json",
  ".jsonl": "jsonl",
  ".ndjson": "jsonl",
  ".csv": "csv",
  ".tsv": "tsv",
  ".parquet": "parquet",
  ".txt": "txt",
};

/** The file type implied by a path's extension, or an error listing the known ones. */
export function fileTypeOf(path: string): FileType {
  const t = BY_EXTENSION[extname(path).toLowerCase()];
  if (!t) {
    throw new Error(
      `${path}: unknown data file extension "${extname(path)}"; expected one of ${Object.keys(BY_EXTENSION).join(", ")} (or pass fileType)`,
    );
  }
  return t;
}

/** Reads `path` (type from its extension unless given) into records; `source` is the name used in messages. */
export async function readRecords(path: string, options: { fileType?: FileType; source?: string } = {}): Promise<ReadResult> {
  const source = options.source ?? path;
  let isFile: boolean;
  try {
    isFile = statSync(path).isFile();
  } catch {
    throw new Error(`${source}: data file not found`);
  }
  if (!isFile) throw new Error(`${source}: not a file (a folder needs a dataset_info.json and the dataset option)`);
  const type = options.fileType ?? fileTypeOf(path);
  if (type === "parquet") return readParquet(path, source);
  const text = decodeUtf8(readFileSync(path), source);
  switch (type) {
    case "json": {
      // A .json file holding JSON Lines is common enough to accept: more than one top-level value per line.
      const t = text.replace(/^\uFEFF/, "").trimStart();
      if (t.startsWith("{") && looksLikeJsonl(t)) return readJsonl(text.replace(/^\uFEFF/, ""), source);
      return readJsonArray(text, source);
    }
    case "jsonl":
      return readJsonl(text.replace(/^\uFEFF/, ""), source);
    case "csv":
      return readCsv(text, source);
    case "tsv":
      return readCsv(text, source, { delimiter: "\t" });
    case "txt":
      return readTxt(text);
  }
}

function looksLikeJsonl(text: string): boolean {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  if (lines.length < 2) return false;
  try {
    JSON.parse(lines[0]);
    return true;
  } catch {
    return false;
  }
}

function readTxt(text: string): ReadResult {
  const records = text
    .replace(/^\uFEFF/, "")
    .split("\n")
    .map((l, k) => ({ value: { text: l.replace(/\r$/, "") }, line: k + 1 }))
    .filter((r) => r.value.text.trim() !== "");
  return { records, issues: [] };
}
