/**
 * The trainer: runs a recipe from data to a saved adapter, read top to bottom as setup, the loop, and the finish.
 * The numbers come from the compiled step (StepEngine). Batching, checkpoints and the final save are helpers beside
 * this file; logging, diagnostics, early stopping and fp16 loss scaling subscribe to the trainer callbacks, in one
 * list with the caller's. Signals belong to the entry points: they abort `signal`, and the run stops at a step boundary.
 */
import { quantConfigOf } from "./quantization";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Dataset, SplitDatasets } from "../data/dataset";
import { dataFilesOf } from "../data/load";
import type { TokenizedExample } from "../data/tokenize";
import type { Row } from "../data/types";
import { Evaluation, evaluateExamples } from "../eval/evaluate";
import { predictWithGenerate } from "../eval/predict-with-generate";
import { ForwardPass } from "../infer/forward-pass";
import { Adapter, adapterFrom, loadAdapter, loraConfigOf, loraModules, LoraModule, loraTrainables } from "../models/lora";
import type { TrainableSpec } from "../models/forward";
import { BaseModel, openModel } from "../models/model";
import { causalLMForward, classificationForward } from "../models/tasks";
import { epochsDone, planSteps, StepBatches } from "./batching";
import { Diagnostic, EvalEvent, StopReason, TrainerCallbacks, TrainerEvents } from "./callbacks";
import { DiagnosticsReporter } from "./diagnostics";
import { EarlyStopping } from "./early-stopping";
import { StepEngine, type StepResult } from "./engine";
import { RunLogger } from "./log/runlogger";
import { RunLogging } from "./logging";
import { LossScaling } from "./loss-scaling";
import { hashDataFiles, versions, writeManifest } from "./manifest";
import { loadSplits, PreparedData, tokenizeSplits } from "./prepare";
import { Recipe, recipeToYaml } from "./recipe";
import { RunCheckpoints, startingState } from "./run-checkpoints";
import { saveTrainedResult } from "./save-result";
import { learningRateAt } from "./schedule";
import { optimizerOf, scoreTrainable, weightTrainables } from "./tuning";

/** Said once when fp16 runs on the CPU provider, which widens each 16-bit product to float32 as it runs. */
const FP16_ON_CPU =
  "fp16 on the cpu device: onnxruntime's CPU provider has no float16 matrix kernels, so it widens each product to float32 as it runs; " +
  "the frozen weights stay 16-bit, but steps are not faster and the peak memory is higher than in float32; fp16 is meant for webgpu and cuda";

/** Said once for a bf16 recipe: no provider tunelab runs on has bfloat16 matrix kernels, so it trains in float32. */
const BF16_FALLBACK =
  "bf16: onnxruntime has no bfloat16 matrix kernels on cpu or webgpu, so this run trains in float32 (weights and activations twice the size of " +
  "bfloat16, results as close to a bf16 run as float32 is); for 16-bit compute on webgpu or cuda use fp16: true";

/** Options of `train` beyond the recipe. */
export interface TrainOptions {
  callbacks?: readonly TrainerCallbacks[];
  /** Aborting stops at the next step boundary and writes a checkpoint (the CLI and fit() wire Ctrl-C to this). */
  signal?: AbortSignal;
  /** An opened base model (else recipe.model_name_or_path is opened). */
  model?: BaseModel;
  /** Rows already loaded (e.g. by a notebook plan), instead of reading recipe.dataset_path. */
  data?: Dataset<Row> | SplitDatasets<Row>;
  /** Also print train.log lines here (the CLI passes stderr). */
  echo?: (line: string) => void;
}

/** What a finished run hands back. */
export interface TrainResult {
  recipe: Recipe;
  outputDir: string;
  /** Optimizer steps done (including those before a resume). */
  steps: number;
  stoppedBy: StopReason;
  bestStep: number | null;
  /** Training loss per step. */
  history: { step: number; loss: number; learningRate: number }[];
  evals: EvalEvent[];
  /** Evaluation of the returned adapter on val (and test, when there is one). */
  val: Evaluation | null;
  test: Evaluation | null;
  /** The trained adapter (also saved in outputDir); for full/freeze runs only the classifier head, if any. */
  adapter: Adapter;
  /** full/freeze runs: the trained model folder (output_dir/model); null for LoRA. */
  modelDir: string | null;
  /** The LoRA modules, for generation with the adapter. */
  modules: readonly LoraModule[];
  /** Class labels in index order (stage cls). */
  labels: readonly string[] | null;
  data: PreparedData;
  model: BaseModel;
  seconds: number;
}

/** Runs a recipe to the end (or to early stopping / interruption) and saves the adapter in output_dir. */
export async function train(recipe: Recipe, options: TrainOptions = {}): Promise<TrainResult> {
  // Setup: model and data, what is trained, how steps map onto the data, where the run starts, who listens.
  const started = Date.now();
  const model = options.model ?? openModel(recipe.model_name_or_path);
  const splits = isSplit(options.data) ? options.data : await loadSplits(recipe, options.data);
  const data = tokenizeSplits(recipe, splits, model.tokenizer);
  const tuned = setupTuning(recipe, model, data);
  const engine = tuned.engine;
  const plan = planSteps(recipe, data.train.length);
  const batches = new StepBatches(recipe, plan, data.train, model.tokenizer.padTokenId);
  const outputDir = prepareOutputDir(recipe);
  const { state, best, resumedFrom } = startingState(recipe, outputDir, engine);
  const logging = new RunLogging(new RunLogger(outputDir, { echo: options.echo }), state, plan, recipe.logging_steps);
  const earlyStopping = new EarlyStopping(state, engine, recipe.early_stopping_steps, best);
  // The logs first and the trainer's own units after the caller's callbacks: the order in which train.log and
  // the callbacks have always seen a step, an evaluation and what the diagnostics make of it.
  const events = new TrainerEvents([
    logging,
    ...(options.callbacks ?? []),
    new DiagnosticsReporter(),
    earlyStopping,
    ...(recipe.fp16 ? [new LossScaling(state)] : []),
  ]);
  const saved = { engine, adapter: () => (tuned.lora ? tuned.adapter() : null), best: () => earlyStopping.best };
  const checkpoints = new RunCheckpoints(outputDir, recipe.save_total_limit, state, saved, events);
  const evaluate = (examples: readonly TokenizedExample[]) =>
    evaluateExamples(tuned.evalPass, engine.values(), examples, recipe.per_device_eval_batch_size, model.tokenizer.padTokenId);
  const history: TrainResult["history"] = [];
  const evals: EvalEvent[] = [];
  let val: Evaluation | null = null;
  const validate = async () => {
    val = await evaluate(data.val);
    if (recipe.predict_with_generate && recipe.stage === "sft" && tuned.lora) {
      const opts = {
        samples: recipe.eval_generate_samples,
        maxNewTokens: recipe.max_new_tokens,
        batchSize: recipe.per_device_eval_batch_size,
        device: recipe.device,
      };
      Object.assign(val.metrics, (await predictWithGenerate(model, tuned.lora ? tuned.adapter() : null, data.val, opts)).metrics);
    }
    evals.push({ step: state.globalStep, epoch: state.epoch, loss: val.loss, metrics: val.metrics });
    await events.emit("onEval", evals[evals.length - 1]);
  };
  let stoppedBy: StopReason = "max_steps";

  try {
    if (resumedFrom) await events.note(`resumed from ${resumedFrom} at step ${state.globalStep}`);
    if (recipe.fp16 && recipe.device === "cpu") await events.note(FP16_ON_CPU);
    if (recipe.bf16) await events.note(BF16_FALLBACK);
    await events.emit("onStart", {
      maxSteps: plan.maxSteps,
      numEpochs: plan.numEpochs,
      trainExamples: data.train.length,
      valExamples: data.val.length,
      outputDir,
    });
    const loopStart = Date.now();
    while (state.globalStep < plan.maxSteps) {
      if (options.signal?.aborted) {
        stoppedBy = "interrupted";
        break;
      }
      const stepStart = Date.now();
      const { feeds, tokens } = batches.feeds(state.globalStep);
      const lr = learningRateAt(plan.schedule, state.globalStep);
      const result = await engine.train(feeds, lr, state.lossScale);
      if (result.nonFinite) {
        if (await events.retrySkipped({ step: state.globalStep + 1, loss: result.loss, nonFinite: result.nonFinite })) continue;
        stoppedBy = "non_finite_loss";
        await events.diagnose(nonFiniteStep(state.globalStep + 1, result, outputDir));
        break;
      }
      state.globalStep = engine.step;
      state.epoch = epochsDone(plan, state.globalStep);
      const seconds = (Date.now() - stepStart) / 1000;
      history.push({ step: state.globalStep, loss: result.loss, learningRate: lr });
      await events.emit("onStep", {
        step: state.globalStep,
        maxSteps: plan.maxSteps,
        epoch: state.epoch,
        numEpochs: plan.numEpochs,
        loss: result.loss,
        learningRate: lr,
        gradNorm: result.gradNorm,
        updateNorm: result.updateNorm,
        tokensPerSecond: tokens / seconds,
        elapsedSeconds: (Date.now() - loopStart) / 1000,
      });
      if (recipe.eval_steps > 0 && data.val.length > 0 && state.globalStep % recipe.eval_steps === 0) await validate();
      const stop = events.takeStop();
      if (stop) {
        stoppedBy = stop.reason;
        if (stop.diagnostic) await events.diagnose(stop.diagnostic);
        break;
      }
      if (recipe.save_steps > 0 && state.globalStep % recipe.save_steps === 0) await checkpoints.save();
    }

    // Finish: a checkpoint and an evaluation of the last step, the best adapter back, the result saved. A step that
    // was not finite was never applied, so the engine holds the last good state: that is what is saved.
    const diverged = stoppedBy === "non_finite_loss";
    if ((!diverged || state.globalStep > 0) && checkpoints.savedStep !== state.globalStep) await checkpoints.save();
    if (stoppedBy === "interrupted")
      await events.note(`interrupted at step ${state.globalStep}; checkpoint written to ${path.join(outputDir, `checkpoint-${state.globalStep}`)}`);
    if (!diverged && data.val.length > 0 && evals.at(-1)?.step !== state.globalStep) await validate();
    if (earlyStopping.restoreBest()) {
      val = await evaluate(data.val);
      await events.note(`restored the best adapter from step ${state.bestStep} (val loss ${val.loss.toFixed(4)})`);
    }
    const adapter = tuned.adapter();
    const modelDir = saveTrainedResult(recipe, outputDir, { model, engine, trainable: tuned.trainable, adapter }, data.labels);
    const test = data.test.length > 0 ? await evaluate(data.test) : null;
    if (test) await events.emit("onTest", { step: state.globalStep, epoch: state.epoch, loss: test.loss, metrics: test.metrics });
    const seconds = (Date.now() - started) / 1000;
    writeManifest(outputDir, {
      recipe,
      versions: versions(),
      seed: recipe.seed,
      data: hashDataFiles(dataFilesOf(recipe.dataset_path, recipe.eval_dataset ? `${recipe.dataset},${recipe.eval_dataset}` : recipe.dataset)),
      device: recipe.device,
      startedAt: new Date(started).toISOString(),
      durations: { total_s: seconds, training_s: (Date.now() - loopStart) / 1000 },
      result: { steps: state.globalStep, stopped_by: stoppedBy, best_step: state.bestStep, val: val?.metrics ?? null, test: test?.metrics ?? null },
    });
    await events.emit("onEnd", { step: state.globalStep, stoppedBy, bestStep: state.bestStep });
    const { modules } = tuned;
    return {
      recipe,
      outputDir,
      steps: state.globalStep,
      stoppedBy,
      bestStep: state.bestStep,
      history,
      evals,
      val,
      test,
      adapter,
      modelDir,
      modules,
      labels: data.labels,
      data,
      model,
      seconds,
    };
  } finally {
    logging.close();
    await engine.release();
    await tuned.evalPass.release();
  }
}

/** What a recipe trains and the engine that trains it. */
interface Tuning {
  lora: boolean;
  modules: readonly LoraModule[];
  trainable: readonly TrainableSpec[];
  engine: StepEngine;
  /** The eval graph (no dropout) over the same trainable tensors. */
  evalPass: ForwardPass;
  /** The adapter as trained so far (for full/freeze runs only the classifier head, if any). */
  adapter(): Adapter;
}

/** The trainable tensors a recipe asks for (LoRA pairs, whole weights, a classifier head) and the engine over them. */
function setupTuning(recipe: Recipe, model: BaseModel, data: PreparedData): Tuning {
  const cls = recipe.stage === "cls";
  const numLabels = cls ? data.labels!.length : 0;
  const lora = recipe.finetuning_type === "lora";
  const from = recipe.adapter_name_or_path ? loadAdapter(recipe.adapter_name_or_path) : undefined;
  // Continuing an adapter, its own config decides the LoRA layers (rank/alpha patterns and regex targets included),
  // as in LLaMA-Factory; resolveRecipe has already put its r, alpha, dropout and targets in the recipe.
  const loraConfig =
    from && lora ? { ...from.config, baseModelNameOrPath: recipe.model_name_or_path, inferenceMode: true } : loraConfigOf(recipe, cls ? numLabels : null);
  const modules = lora ? loraModules(model.config, loraConfig) : [];
  const weights = model.weights.as(recipe.fp16 ? "float16" : "float32").quantized(quantConfigOf(recipe));
  // A new DoRA magnitude starts at the row norms of the weights the graphs compute with (dequantised, on a quantised base).
  const trainable = lora ? loraTrainables(modules, recipe.seed, from, weights) : weightTrainables(model, recipe);
  if (cls) trainable.push(scoreTrainable(model, numLabels, recipe.seed, from));
  const ctx = { config: model.config, weights, lora: modules, loraDropout: recipe.lora_dropout, gradientCheckpointing: recipe.gradient_checkpointing };
  const forwardOf = cls ? classificationForward : causalLMForward;
  const engine = StepEngine.create({
    forward: forwardOf(ctx),
    trainable,
    optimizer: optimizerOf(recipe),
    maxGradNorm: recipe.max_grad_norm,
    lossScaling: recipe.fp16,
    device: recipe.device,
  });
  const evalPass = new ForwardPass(forwardOf({ ...ctx, loraDropout: 0 }), trainable, { device: recipe.device });
  return {
    lora,
    modules,
    trainable,
    engine,
    evalPass,
    adapter: () => adapterFrom(engine, modules, loraConfig, numLabels, model.config.hiddenSize),
  };
}

/** Files by which a folder is recognised as a tunelab run's output_dir. */
const RUN_FILES = /^(recipe\.yaml|run\.json|train\.log|metrics\.jsonl|adapter_config\.json|checkpoint-\d+)$/;

/** Creates output_dir and writes the recipe the run follows there. */
function prepareOutputDir(recipe: Recipe): string {
  const outputDir = path.resolve(recipe.output_dir);
  const present = fs.existsSync(outputDir) ? fs.readdirSync(outputDir).filter((f) => !f.startsWith(".")) : [];
  // A folder with files but none a tunelab run writes is someone else's: refuse it rather than write over it.
  if (present.length > 0 && !present.some((f) => RUN_FILES.test(f)) && !recipe.overwrite_output_dir) {
    const shown = present.slice(0, 5).join(", ") + (present.length > 5 ? ", ..." : "");
    throw new Error(`output_dir ${outputDir} is not empty and holds no tunelab run (it has ${shown}); choose another folder or set overwrite_output_dir: true`);
  }
  fs.mkdirSync(outputDir, { recursive: true });
  fs.writeFileSync(path.join(outputDir, "recipe.yaml"), recipeToYaml(recipe));
  return outputDir;
}

/**
 * The diagnostic of a step that was not applied because something in it was not finite, with no retry asked for. It
 * says what the finish keeps: the state before the step, as a checkpoint and the final result, or the untrained
 * tensors when no step was applied.
 */
function nonFiniteStep(step: number, result: StepResult, outputDir: string): Diagnostic {
  const figure = { loss: result.loss, gradients: result.gradNorm, update: result.updateNorm, optimizer_state: NaN }[result.nonFinite!];
  const what =
    result.nonFinite === "optimizer_state"
      ? "the new optimizer state was not finite"
      : `the ${result.nonFinite} became ${Number.isNaN(figure) ? "NaN" : "infinite"}`;
  const kept =
    step > 1
      ? `the run stops with the last good state, step ${step - 1}, saved as ${path.join(outputDir, `checkpoint-${step - 1}`)}`
      : `no checkpoint was written before step ${step} and nothing was trained, so the result saved in ${outputDir} holds the tensors the run started from`;
  return {
    kind: "non_finite_loss",
    step,
    message: `${what} at step ${step}, so its update was not applied; ${kept}`,
    suggestion:
      result.nonFinite === "update" || result.nonFinite === "optimizer_state"
        ? "lower learning_rate or weight_decay, keep adam_epsilon above 0"
        : "lower learning_rate, keep max_grad_norm: 1.0, check the data for empty or extreme rows",
  };
}

function isSplit(d: TrainOptions["data"]): d is SplitDatasets<Row> {
  return !!d && "train" in d && "val" in d;
}
