/**
 * PyTorch export: the merged weights as a state_dict in torch.save's zip format (pytorch_model.bin), which
 * `torch.load(path, weights_only=True)` and transformers' from_pretrained read, with the model's config and
 * tokenizer files beside it.
 *
 * Layout (torch/serialization.py `_save`): archive/data.pkl is a protocol-2 pickle of an OrderedDict whose values
 * are `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks)`, each storage
 * a persistent id ("storage", torch.FloatStorage, key, "cpu", numel) naming the raw little-endian bytes in
 * archive/data/<key>; archive/byteorder says "little" and archive/version "3".
 */
import * as path from "node:path";
import { float32ToBf16Bits, float32ToF16Bits } from "../util/float16";
import { copyModelFiles } from "./files";
import type { MergedWeights } from "./merged-weights";
import { PickleWriter } from "./pickle";
import { ZipWriter } from "./zip";

/** Element types of the exported state_dict. */
export type TorchDtype = "float32" | "float16" | "bfloat16";

const STORAGE: Record<TorchDtype, string> = { float32: "FloatStorage", float16: "HalfStorage", bfloat16: "BFloat16Storage" };

/** The name transformers looks for in a model folder. */
export const PYTORCH_WEIGHTS_NAME = "pytorch_model.bin";

/** Options of exportPytorch. */
export interface PytorchExportOptions {
  /** Element type of the stored tensors (default float32). */
  dtype?: TorchDtype;
  /** Zip64 records even for a small file (tests; large files get them anyway). */
  forceZip64?: boolean;
}

/** What exportPytorch wrote. */
export interface PytorchExportResult {
  file: string;
  dtype: TorchDtype;
  tensors: number;
  copied: string[];
}

/** Writes `file` as a torch.save'd state_dict of the tensors `names` (each read once as float32), stored as `dtype`. */
export function writeTorchStateDict(
  file: string,
  names: readonly string[],
  read: (name: string) => { shape: number[]; data: Float32Array },
  dtype: TorchDtype = "float32",
  forceZip64 = false,
): void {
  if (!STORAGE[dtype]) throw new Error(`pytorch export: dtype must be float32, float16 or bfloat16, got ${JSON.stringify(dtype)}`);
  const archive = "archive";
  // Each tensor is read once: its bytes go to the archive first, and data.pkl (which needs every shape) last;
  // readers find records by name, so their order does not matter.
  const zip = new ZipWriter(file, 64, forceZip64);
  const meta: number[][] = [];
  try {
    zip.add(`${archive}/byteorder`, [Buffer.from("little")]);
    names.forEach((name, i) => {
      const t = read(name);
      const data = dtype === "float32" ? t.data : dtype === "float16" ? float32ToF16Bits(t.data) : float32ToBf16Bits(t.data);
      zip.add(`${archive}/data/${i}`, [new Uint8Array(data.buffer, data.byteOffset, data.byteLength)]);
      meta.push(t.shape);
    });
    zip.add(`${archive}/data.pkl`, [statePickle(names, meta, dtype)]);
    zip.add(`${archive}/version`, [Buffer.from("3\n")]);
  } finally {
    zip.close();
  }
}

/** The data.pkl of a state_dict: an OrderedDict of contiguous tensors over storages "0", "1", ... */
function statePickle(names: readonly string[], shapes: readonly number[][], dtype: TorchDtype): Buffer {
  const p = new PickleWriter();
  p.global("collections", "OrderedDict").emptyTuple().reduce();
  p.mark();
  names.forEach((name, i) => {
    const shape = shapes[i];
    const numel = shape.reduce((a, d) => a * d, 1);
    const stride = shape.map((_, d) => shape.slice(d + 1).reduce((a, x) => a * x, 1));
    p.str(name);
    p.global("torch._utils", "_rebuild_tensor_v2");
    p.mark(); // the argument tuple
    p.mark().str("storage").global("torch", STORAGE[dtype]).str(String(i)).str("cpu").int(numel).tuple().persistentId();
    p.int(0); // storage offset
    p.intTuple(shape);
    p.intTuple(stride);
    p.bool(false); // requires_grad
    p.global("collections", "OrderedDict").emptyTuple().reduce(); // backward hooks
    p.tuple().reduce();
  });
  p.setItems();
  return p.finish();
}

/** Writes `out`/pytorch_model.bin (merged weights, HF names) and the model's config and tokenizer files. */
export function exportPytorch(weights: MergedWeights, out: string, options: PytorchExportOptions = {}): PytorchExportResult {
  const dtype = options.dtype ?? "float32";
  const file = path.join(out, PYTORCH_WEIGHTS_NAME);
  const names = weights.names();
  writeTorchStateDict(file, names, (n) => weights.get(n), dtype, options.forceZip64);
  return { file, dtype, tensors: names.length, copied: copyModelFiles(weights.model.dir, out) };
}
