/**
 * `tunelab demo`: the README's main job. Creates a tiny Qwen2-style model (random weights, Qwen3's real
 * tokenizer), fine-tunes it with LoRA to classify the bundled support tickets, and prints the evaluation.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parseFlags, type CliCommand } from "../command";
import { createTinyModel } from "../../io/tiny";
import { ds } from "../../plan/data";
import { Model } from "../../plan/model";
import { ctrlCStopsTraining } from "../interrupt";

const USAGE = "usage: tunelab demo [--out DIR (default runs/demo)] [--steps N (default 150)]";

/** The bundled classification data (800 tickets, four labels). */
export const DEMO_DATA = path.join(__dirname, "../../../../data/support_tickets.jsonl");

export const command: CliCommand = {
  name: "demo",
  summary: "fine-tune a tiny built-in model on bundled data (CPU, about a minute) and show the evaluation",
  async run(argv) {
    const flags = parseFlags(argv);
    if (flags.help) {
      console.log(USAGE);
      return 0;
    }
    for (const key of Object.keys(flags)) if (key !== "_" && key !== "out" && key !== "steps") throw new Error(`unknown option --${key}\n${USAGE}`);
    const out = path.resolve(typeof flags.out === "string" ? flags.out : "runs/demo");
    const steps = typeof flags.steps === "string" ? Number(flags.steps) : 150;
    if (!Number.isInteger(steps) || steps < 1) throw new Error(`--steps needs a positive whole number, got ${JSON.stringify(flags.steps)}`);
    const modelDir = path.join(out, "model");
    if (!fs.existsSync(path.join(modelDir, "config.json"))) {
      console.log(`creating a tiny model in ${modelDir}`);
      createTinyModel({ arch: "qwen2", out: modelDir, seed: 0, hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, tokenizer: "qwen3" });
    }
    const base = await Model.open(modelDir);
    console.log(`fine-tuning on ${path.relative(process.cwd(), DEMO_DATA)} (classification, ${steps} steps, LoRA rank 16)`);
    const interrupt = ctrlCStopsTraining();
    const run = await ds
      .load(DEMO_DATA)
      .split({ val: 0.1, test: 0.1, seed: 42 })
      .lora({ rank: 16, alpha: 32 })
      .fit(base, {
        stage: "cls",
        lr: 2e-3,
        batchSize: 16,
        warmupSteps: 15,
        maxSteps: steps,
        evalSteps: 25,
        loggingSteps: 10,
        saveSteps: 50,
        cutoffLen: 256,
        outputDir: path.join(out, "run"),
        callbacks: [
          interrupt.callbacks,
          {
            onStep: (e) =>
              e.step % 25 === 0 || e.step === 1
                ? console.log(`step ${String(e.step).padStart(4)}  loss ${e.loss.toFixed(4)}  lr ${e.learningRate.toExponential(1)}`)
                : undefined,
          },
        ],
        live: process.stderr.isTTY,
        signal: interrupt.signal,
        handleSigint: false,
      })
      .finally(() => interrupt.dispose());
    const report = await run.evaluate({ split: "test" });
    console.log("\n" + report.toString());
    console.log(`\nadapter (PEFT format), logs and TensorBoard events: ${run.outputDir}`);
    return 0;
  },
};
