/**
 * tunelab's split as LLaMA-Factory data: one JSON-lines file per part (train; val and test held out) and the
 * dataset_info.json entries that describe them (sharegpt with OpenAI-style tags for chat rows, {prompt: text} for
 * pre-training text, as LF's own c4_demo entry).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { SplitDatasets } from "../../data/dataset";
import type { Row } from "../../data/types";

/** The dataset names the export writes (train always; val and test when the split has rows there). */
export interface LfDataNames {
  train: string;
  val?: string;
  test?: string;
}

const PREFIX = "tunelab";

/** One row as an LF record. */
function record(row: Row, part: string): Record<string, unknown> {
  switch (row.kind) {
    case "chat":
      return { messages: row.messages.map((m) => ({ role: m.role, content: m.content })) };
    case "pretrain":
      return { text: row.text };
    case "classification":
      throw new Error(`export-recipe: ${part} row ${row.provenance.id} is a classification row; LLaMA-Factory trains pt and sft only`);
  }
}

/** The dataset_info.json entry of a file of `kind` rows. */
function infoEntry(file: string, kind: Row["kind"]): Record<string, unknown> {
  if (kind === "pretrain") return { file_name: file, columns: { prompt: "text" } };
  return {
    file_name: file,
    formatting: "sharegpt",
    columns: { messages: "messages" },
    tags: { role_tag: "role", content_tag: "content", user_tag: "user", assistant_tag: "assistant", system_tag: "system" },
  };
}

/** Writes `dir`/{train,val,test}.jsonl and `dir`/dataset_info.json; returns the entry names. */
export function writeLfData(dir: string, splits: SplitDatasets<Row>): LfDataNames {
  fs.mkdirSync(dir, { recursive: true });
  const kind = splits.train.rows[0]?.kind;
  if (!kind) throw new Error("export-recipe: the training split is empty");
  const info: Record<string, unknown> = {};
  const names: LfDataNames = { train: `${PREFIX}_train` };
  for (const part of ["train", "val", "test"] as const) {
    const rows = splits[part].rows;
    if (rows.length === 0) continue;
    const file = `${part}.jsonl`;
    fs.writeFileSync(path.join(dir, file), rows.map((r) => JSON.stringify(record(r, part))).join("\n") + "\n");
    info[`${PREFIX}_${part}`] = infoEntry(file, kind);
    names[part] = `${PREFIX}_${part}`;
  }
  fs.writeFileSync(path.join(dir, "dataset_info.json"), JSON.stringify(info, null, 2) + "\n");
  return names;
}
