/**
 * `tunelab serve --model DIR [--adapter [NAME=]DIR ...] [--port P] [--host H] [--api-key K] ...`: the HTTP server
 * (POST /predict, OpenAI-compatible /v1 routes, /health, /metrics) until SIGTERM or Ctrl-C, which let in-flight
 * requests finish before it exits.
 */
import { commandFlags, type CliCommand, type CliFlags } from "../command";
import { serve } from "../../infer/server";
import type { Device } from "../../runtime/device";

const USAGE = [
  "usage: tunelab serve --model DIR [--adapter [NAME=]DIR ...] [--port 8000] [--host 127.0.0.1] [--api-key KEY]",
  "                     [--served-model-name NAME] [--max-batch-size 16] [--max-queue 256] [--max-tokens 2048]",
  "                     [--max-body-bytes 1048576] [--device cpu|webgpu|cuda|auto] [--threads N]",
  "  --adapter may be given several times; each adapter is served as its own model (NAME, default the folder's name).",
  "  --api-key defaults to $TUNELAB_API_KEY when set.",
].join("\n");
const FLAGS = new Set([
  "model",
  "adapter",
  "port",
  "host",
  "api-key",
  "served-model-name",
  "max-batch-size",
  "max-queue",
  "max-tokens",
  "max-body-bytes",
  "device",
  "threads",
  "help",
]);
const DEVICES = new Set(["cpu", "webgpu", "cuda", "auto"]);

function integer(flags: CliFlags, key: string, min: number): number | undefined {
  const v = flags[key];
  if (v === undefined) return undefined;
  const n = typeof v === "string" && /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${key} must be an integer >= ${min}, got ${JSON.stringify(v)}\n${USAGE}`);
  return n;
}

/** Every `--adapter` value (parseFlags keeps only the last of a repeated flag). */
function adapterArgs(argv: string[]): { name?: string; path: string }[] {
  const out: string[] = [];
  argv.forEach((a, i) => {
    if (a.startsWith("--adapter=")) out.push(a.slice("--adapter=".length));
    else if (a === "--adapter" && i + 1 < argv.length && !argv[i + 1].startsWith("--")) out.push(argv[i + 1]);
  });
  return out.map((a) => {
    const eq = a.indexOf("=");
    return eq > 0 ? { name: a.slice(0, eq), path: a.slice(eq + 1) } : { path: a };
  });
}

export const command: CliCommand = {
  name: "serve",
  summary: "HTTP server: POST /predict and OpenAI-compatible /v1/chat/completions, batched",
  async run(argv) {
    const flags = commandFlags(argv, FLAGS, USAGE);
    if (!flags) return 0;
    if (typeof flags.model !== "string") {
      console.error(USAGE);
      return 2;
    }
    const device = flags.device;
    if (device !== undefined && (typeof device !== "string" || !DEVICES.has(device)))
      throw new Error(`--device must be cpu, webgpu, cuda or auto, got ${JSON.stringify(device)}`);
    const apiKey = typeof flags["api-key"] === "string" ? flags["api-key"] : process.env.TUNELAB_API_KEY || undefined;
    const server = await serve(flags.model, {
      adapters: adapterArgs(argv),
      port: integer(flags, "port", 0),
      host: typeof flags.host === "string" ? flags.host : undefined,
      apiKey,
      servedModelName: typeof flags["served-model-name"] === "string" ? flags["served-model-name"] : undefined,
      maxBatchSize: integer(flags, "max-batch-size", 1),
      maxQueue: integer(flags, "max-queue", 0),
      maxTokens: integer(flags, "max-tokens", 1),
      maxBodyBytes: integer(flags, "max-body-bytes", 1),
      device: device as Device | undefined,
      threads: integer(flags, "threads", 1),
    });
    console.log(`tunelab serve: listening on ${server.url} (models: ${server.models.join(", ")}${apiKey ? "; API key required" : ""})`);
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        console.log(`tunelab serve: ${signal}: finishing in-flight requests`);
        server.close().then(resolve, (e: unknown) => {
          console.error(`tunelab serve: ${e instanceof Error ? e.message : String(e)}`);
          resolve();
        });
      };
      process.once("SIGTERM", () => stop("SIGTERM"));
      process.once("SIGINT", () => stop("SIGINT"));
    });
    console.log("tunelab serve: stopped");
    return 0;
  },
};
