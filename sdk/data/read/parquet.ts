/** Parquet reading through hyparquet (pure JS): one record per row, numbered from 1 like lines. */
import { readFileSync } from "node:fs";
import { parquetMetadata, parquetReadObjects, parquetSchema } from "hyparquet";
import { clip, type ReadResult } from "./json";

/** Reads every row of a Parquet file as a plain object (int64 values become numbers when they fit exactly). */
export async function readParquet(path: string, source: string): Promise<ReadResult> {
  const buf = readFileSync(path);
  const file = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
  let rows: Record<string, unknown>[];
  try {
    checkColumnChunks(file);
    rows = await parquetReadObjects({ file });
  } catch (e) {
    // hyparquet's TypeErrors and RangeErrors come from damaged metadata and say nothing a user can act on.
    const internal = e instanceof TypeError || e instanceof RangeError;
    const why = internal ? "its metadata is damaged (or it is not Parquet)" : (e as Error).message;
    throw new Error(`${source}: not a readable Parquet file: ${why}`, { cause: e });
  }
  return { records: rows.map((r, k) => ({ value: plain(r), line: k + 1 })), issues: [] };
}

/**
 * Every row group's column chunks must be the schema's leaf columns, in order. hyparquet reads a chunk that
 * matches no schema column but never awaits it, so its failure would surface as an unhandled rejection.
 */
function checkColumnChunks(file: ArrayBuffer): void {
  const metadata = parquetMetadata(file);
  const leaves: string[] = [];
  const walk = (node: ReturnType<typeof parquetSchema>): void => {
    if (node.children.length === 0) leaves.push(node.path.join("."));
    else for (const c of node.children) walk(c);
  };
  walk(parquetSchema(metadata));
  metadata.row_groups.forEach((group, g) => {
    group.columns.forEach((chunk, i) => {
      const name = chunk.meta_data?.path_in_schema.join(".");
      if (name !== leaves[i]) {
        throw new Error(
          `row group ${g + 1} holds column ${JSON.stringify(clip(String(name)))} ` +
            `where the schema has ${leaves[i] === undefined ? "no column" : JSON.stringify(clip(leaves[i]))} (damaged metadata)`,
        );
      }
    });
  });
}

/** Converts bigint to number where exact (labels stored as int64 are common) and recurses into lists/structs. */
function plain(v: unknown): unknown {
  if (typeof v === "bigint") {
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  }
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = plain(x);
    return out;
  }
  return v;
}
