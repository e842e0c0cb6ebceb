/** Execution providers: which device a graph runs on, and what to tell a user when one is missing. */

/** Where graphs run. "auto" picks CUDA when it works, else the CPU. */
export type Device = "cpu" | "webgpu" | "cuda" | "auto";

/** A concrete provider, after "auto" is resolved. */
export type Provider = Exclude<Device, "auto">;

/** The command or requirement that makes `provider` available, for error messages and `tunelab doctor`. */
export function installHint(provider: Provider): string {
  switch (provider) {
    case "cpu":
      return "reinstall onnxruntime-node: npm ci";
    case "webgpu":
      return process.platform === "linux"
        ? "install a Vulkan driver and loader, e.g. on Debian: apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1 (and set XDG_RUNTIME_DIR)"
        : "update the GPU driver (WebGPU needs Metal on macOS or D3D12 on Windows)";
    case "cuda":
      return "npm run install-cuda (runs onnxruntime-node's installer with ONNXRUNTIME_NODE_INSTALL=cuda12; needs an NVIDIA driver for CUDA 12 and cuDNN 9)";
  }
}

/** Options of onnxruntime's InferenceSession for a provider (the CPU provider is always the fallback). */
export function executionProviders(provider: Provider): string[] {
  return provider === "cpu" ? ["cpu"] : [provider, "cpu"];
}
