/** `tunelab train RECIPE.yaml [--key value ...]`: runs a recipe (LLaMA-Factory option names), as fit() does. */
import { parseFlags, type CliCommand } from "../command";
import type { TrainerCallbacks } from "../../train/callbacks";
import { readRecipe, resolveRecipe, type RecipeInput } from "../../train/recipe";
import { valueFromText } from "../../train/recipe-check";
import { train } from "../../train/trainer";
import { liveProgress } from "../../plan/lora";

const USAGE = "usage: tunelab train RECIPE.yaml [--option value ...]   (options override the recipe, e.g. --max_steps 100)";

/** Turns "--max_steps 100" overrides into typed recipe values (as the recipe schema types each option). */
function overrides(flags: ReturnType<typeof parseFlags>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, raw] of Object.entries(flags)) if (key !== "_") out[key] = valueFromText(key, raw);
  return out;
}

/**
 * Ctrl-C while training. The trainer's own SIGINT listener stops the run at the next step boundary with a checkpoint;
 * this one, listening from the start of training to the end, says so and makes a second Ctrl-C quit at once (killed
 * by SIGINT, or status 130). Because a listener stays installed, a SIGINT never hits Node's default action in the
 * middle of a synchronous checkpoint write: a second Ctrl-C takes effect only after the write, so it never leaves a
 * temporary folder or loses that checkpoint. Before training starts, Ctrl-C quits at once as usual.
 */
function interruptNotice(): { callbacks: TrainerCallbacks; dispose(): void } {
  let interrupts = 0;
  const onSigint = () => {
    if (++interrupts === 1) {
      process.stderr.write("\ninterrupted: stopping at the next step boundary and writing a checkpoint (Ctrl-C again quits now)\n");
      return;
    }
    process.stderr.write("\ninterrupted again: quitting; the last checkpoint written is kept\n");
    process.removeListener("SIGINT", onSigint);
    // Die of SIGINT as the shell expects (so a script loop stops too) when nothing else listens; else exit 130.
    if (process.listenerCount("SIGINT") === 0) process.kill(process.pid, "SIGINT");
    process.exit(130);
  };
  return {
    // The trainer emits onStart after it has started listening for SIGINT itself.
    callbacks: { onStart: () => void process.on("SIGINT", onSigint) },
    dispose: () => void process.removeListener("SIGINT", onSigint),
  };
}

export const command: CliCommand = {
  name: "train",
  summary: "fine-tune with LoRA from a YAML recipe (LLaMA-Factory option names)",
  async run(argv) {
    const flags = parseFlags(argv);
    if (flags.help || flags._.length !== 1) {
      console.error(USAGE);
      return flags.help ? 0 : 2;
    }
    const file = flags._[0];
    const recipe = resolveRecipe({ ...readRecipe(file), ...overrides(flags) } as RecipeInput, file);
    const interrupt = interruptNotice();
    const callbacks = [interrupt.callbacks, ...(process.stderr.isTTY ? [liveProgress()] : [])];
    let result: Awaited<ReturnType<typeof train>>;
    try {
      result = await train(recipe, { echo: (line) => process.stderr.write(line + "\n"), callbacks });
    } finally {
      interrupt.dispose();
    }
    console.log(`adapter written to ${result.outputDir} after ${result.steps} steps (${result.stoppedBy})`);
    if (result.val) console.log(`val: ${Object.entries(result.val.metrics).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(", ")}`);
    if (result.test) console.log(`test: ${Object.entries(result.test.metrics).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(", ")}`);
    return result.stoppedBy === "non_finite_loss" ? 1 : 0;
  },
};
