/** Rotary position embeddings as Hugging Face transformers computes them (default, linear and llama3 scaling). */
import { Value } from "../graph/ir";
import { Builder } from "../graph/ops";
import type { ModelConfig } from "../io/config";

/** inv_freq of the rotary embedding, after rope_scaling, as transformers' ROPE_INIT_FUNCTIONS give it. */
export function inverseFrequencies(config: ModelConfig): Float32Array {
  const dim = config.headDim;
  const inv = Array.from({ length: dim / 2 }, (_, i) => 1 / config.ropeTheta ** ((2 * i) / dim));
  const scaling = config.ropeScaling;
  if (!scaling || scaling.rope_type === "dynamic") {
    // Dynamic NTK scaling only changes frequencies beyond original_max_position_embeddings, longer than tunelab trains.
    return Float32Array.from(inv);
  }
  if (scaling.rope_type === "linear") return Float32Array.from(inv, (f) => f / scaling.factor);
  if (scaling.rope_type === "llama3") {
    const { factor, low_freq_factor: low, high_freq_factor: high, original_max_position_embeddings: oldLen } = scaling;
    const lowWavelen = oldLen / low;
    const highWavelen = oldLen / high;
    return Float32Array.from(inv, (f) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < highWavelen) return f;
      if (wavelen > lowWavelen) return f / factor;
      const smooth = (oldLen / wavelen - low) / (high - low);
      return (1 - smooth) * (f / factor) + smooth * f;
    });
  }
  throw new Error(`config.json: rope_scaling type "${scaling.rope_type}" is not supported yet (supported: default, linear, llama3, dynamic)`);
}

/** cos and sin tables [batch|1, 1, 1, seq, headDim] for int64 `positions` [batch|1, seq]. */
export function rotaryTables(b: Builder, config: ModelConfig, positions: Value): { cos: Value; sin: Value } {
  const inv = inverseFrequencies(config);
  const invFreq = b.constant(inv, [1, 1, inv.length], "float32", "rope_inv_freq");
  const freqs = b.mul(b.unsqueeze(b.cast(positions, "float32"), [2]), invFreq); // [B, S, D/2]
  const emb = b.concat([freqs, freqs], 2);
  const expand = (x: Value) => b.unsqueeze(x, [1, 2]);
  return { cos: expand(b.cos(emb)), sin: expand(b.sin(emb)) };
}

/** x * cos + rotate_half(x) * sin, with rotate_half(x) = concat(-x2, x1) over the last axis. */
export function applyRotary(b: Builder, x: Value, cos: Value, sin: Value, headDim: number): Value {
  const half = headDim / 2;
  const x1 = b.slice(x, [0], [half], [-1]);
  const x2 = b.slice(x, [half], [headDim], [-1]);
  const rotated = b.concat([b.neg(x2), x1], -1);
  return b.add(b.mul(x, cos), b.mul(rotated, sin));
}
