/** The recipe's QLoRA keys (LLaMA-Factory's quantization_*) as the quantisation a base is loaded with. */
import type { QuantConfig } from "../io/quantize";
import type { Recipe } from "./recipe-schema";

/** What tunelab can do, for the errors below. */
const CAN = "tunelab quantises the base itself with quantization_method: bnb, quantization_bit 4 (nf4, fp4 or int4) or 8 (block-wise int8)";

/** The quantisation a recipe asks for, or null for a 16/32-bit base; throws naming the option for what tunelab cannot honour. */
export function quantConfigOf(
  recipe: Pick<Recipe, "quantization_method" | "quantization_type" | "double_quantization" | "quantization_block_size"> & { quantization_bit?: number },
): QuantConfig | null {
  const bits = recipe.quantization_bit;
  if (bits === undefined || bits === null) return null;
  if (recipe.quantization_method !== "bnb") {
    throw new Error(
      `quantization_method: "${recipe.quantization_method}" is not supported (it needs its own pre-quantised checkpoint or CUDA kernels); ${CAN}`,
    );
  }
  if (bits !== 4 && bits !== 8) throw new Error(`quantization_bit: ${bits} is not supported; ${CAN}`);
  const blockSize = recipe.quantization_block_size;
  if ((blockSize & (blockSize - 1)) !== 0) throw new Error(`quantization_block_size: ${blockSize} must be a power of two (bitsandbytes uses 64)`);
  const type = bits === 8 ? "int8" : recipe.quantization_type;
  // bitsandbytes double-quantises only its 4-bit formats' absmax; int4/int8 steps stay float32.
  return { type, blockSize, doubleQuant: recipe.double_quantization && (type === "nf4" || type === "fp4") };
}
