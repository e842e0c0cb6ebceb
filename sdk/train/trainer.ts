/**
 * The trainer: runs a recipe from data to a saved adapter. Batching, schedule, evaluation, early stopping,
 * checkpoints, logs and diagnostics live here; the numbers come from the compiled step (StepEngine).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { makeBatches, type Batch } from "../data/batch";
import type { Dataset, SplitDatasets } from "../data/dataset";
import type { TokenizedExample } from "../data/tokenize";
import type { Row } from "../data/types";
import { writeJsonAtomic } from "../io/atomic";
import { Adapter, loadAdapter, saveAdapter } from "../io/peft";
import { loraModules, LoraModule, loraTrainables } from "../models/lora";
import { BaseModel, openModel } from "../models/model";
import { causalLMForward, classificationForward } from "../models/tasks";
import { Diagnostic, emit, EvalEvent, StopReason, TrainerCallbacks } from "./callbacks";
import { listCheckpoints, loadCheckpoint, pruneCheckpoints, removeStaleCheckpointTemps, saveCheckpoint, TrainerState } from "./checkpoint";
import { DiagnosticsWatcher } from "./diagnostics";
import { EngineState, Feeds, StepEngine } from "./engine";
import { batchFeeds, Evaluation, evaluateExamples } from "./evaluate";
import { hashDataFiles, versions, writeManifest } from "./manifest";
import { loadSplits, PreparedData, tokenizeSplits } from "./prepare";
import { Recipe, recipeToYaml } from "./recipe";
import { adapterFrom, loraConfigOf, optimizerOf, saveTrainedModel, scoreTrainable, weightTrainables } from "./tuning";
import { learningRateAt, resolveWarmup } from "./schedule";
import { RunLogger } from "./log/runlogger";

/** Dynamic loss scaling for fp16, with torch.cuda.amp.GradScaler's defaults. */
const INITIAL_LOSS_SCALE = 65536;
const LOSS_SCALE_GROWTH_INTERVAL = 2000;

/** Options of `train` beyond the recipe. */
export interface TrainOptions {
  callbacks?: readonly TrainerCallbacks[];
  /** Aborting stops at the next step boundary and writes a checkpoint. */
  signal?: AbortSignal;
  /** Stop on SIGINT the same way (default true). */
  handleSigint?: boolean;
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
  const started = Date.now();
  const subscribers = options.callbacks ?? [];
  const model = options.model ?? openModel(recipe.model_name_or_path);
  const splits = isSplit(options.data) ? options.data : await loadSplits(recipe, options.data);
  const data = tokenizeSplits(recipe, splits, model.tokenizer);
  const cls = recipe.stage === "cls";
  const loraConfig = loraConfigOf(recipe, cls ? data.labels!.length : null);
  const lora = recipe.finetuning_type === "lora";
  const modules = lora ? loraModules(model.config, loraConfig) : [];
  const from = recipe.adapter_name_or_path ? loadAdapter(recipe.adapter_name_or_path) : undefined;
  const trainable = lora ? loraTrainables(modules, recipe.seed, from) : weightTrainables(model, recipe);
  if (cls) trainable.push(scoreTrainable(model, data.labels!.length, recipe.seed, from));
  const ctx = { config: model.config, weights: model.weights.as(recipe.fp16 ? "float16" : "float32"), lora: modules, loraDropout: recipe.lora_dropout };
  const forwardOf = cls ? classificationForward : causalLMForward;
  const engine = StepEngine.create({
    forward: forwardOf(ctx),
    evalForward: forwardOf({ ...ctx, loraDropout: 0 }),
    trainable,
    optimizer: optimizerOf(recipe),
    maxGradNorm: recipe.max_grad_norm,
    lossScaling: recipe.fp16,
    device: recipe.device,
  });
  const adapterNow = () => adapterFrom(engine, modules, loraConfig, cls ? data.labels!.length : 0, model.config.hiddenSize);
  const checkpointAdapter = () => (lora ? adapterNow() : null);

  const batchSize = recipe.per_device_train_batch_size;
  const accumulation = recipe.gradient_accumulation_steps;
  const batchesPerEpoch = Math.ceil(data.train.length / batchSize);
  const stepsPerEpoch = Math.max(1, Math.floor(batchesPerEpoch / accumulation));
  const maxSteps = recipe.max_steps > 0 ? recipe.max_steps : Math.ceil(recipe.num_train_epochs * stepsPerEpoch);
  const numEpochs = Math.ceil((maxSteps * accumulation) / batchesPerEpoch);
  const schedule = {
    type: recipe.lr_scheduler_type,
    learningRate: recipe.learning_rate,
    warmupSteps: resolveWarmup(recipe.warmup_steps, recipe.warmup_ratio, maxSteps),
    totalSteps: maxSteps,
  };
  const outputDir = path.resolve(recipe.output_dir);
  fs.mkdirSync(outputDir, { recursive: true });
  fs.writeFileSync(path.join(outputDir, "recipe.yaml"), recipeToYaml(recipe));

  let state: TrainerState = { globalStep: 0, epoch: 0, bestMetric: null, bestStep: null, patienceUsed: 0, lossScale: recipe.fp16 ? INITIAL_LOSS_SCALE : 1, logHistory: [] };
  const resumeDir = resumeCheckpoint(recipe, outputDir);
  if (resumeDir) {
    const loaded = loadCheckpoint(resumeDir);
    engine.restore(loaded.engine);
    state = loaded.state;
  }
  removeStaleCheckpointTemps(outputDir);
  const logger = new RunLogger(outputDir, { echo: options.echo });
  if (resumeDir) logger.message(`resumed from ${resumeDir} at step ${state.globalStep}`);

  const epochBatches = new Map<number, Batch[]>();
  const microBatch = (k: number): Batch => {
    const epoch = Math.floor(k / batchesPerEpoch);
    let list = epochBatches.get(epoch);
    if (!list) {
      epochBatches.clear();
      list = makeBatches(data.train, { batchSize, padTokenId: model.tokenizer.padTokenId, seed: recipe.seed + epoch, padToMultipleOf: 8 });
      epochBatches.set(epoch, list);
    }
    return list[k % batchesPerEpoch];
  };
  const stepFeeds = (step: number): { feeds: Feeds[]; tokens: number } => {
    const feeds: Feeds[] = [];
    let tokens = 0;
    for (let j = 0; j < accumulation; j++) {
      const batch = microBatch(step * accumulation + j);
      tokens += batch.numTokens;
      const f = batchFeeds(batch);
      if (recipe.lora_dropout > 0) f.dropout_seed = { dtype: "int64", shape: [], data: BigInt64Array.of(BigInt(dropoutSeed(recipe.seed, step, j))) };
      feeds.push(f);
    }
    return { feeds, tokens };
  };
  const evaluate = (examples: readonly TokenizedExample[]) =>
    evaluateExamples((f) => engine.evaluate(f), examples, recipe.per_device_eval_batch_size, model.tokenizer.padTokenId);

  const interrupt = new AbortController();
  const onSigint = () => interrupt.abort();
  if (options.handleSigint ?? true) process.once("SIGINT", onSigint);
  const stopRequested = () => interrupt.signal.aborted || !!options.signal?.aborted;

  const history: TrainResult["history"] = [];
  const evals: EvalEvent[] = [];
  const watcher = new DiagnosticsWatcher();
  let best: EngineState | null = null;
  let stoppedBy: StopReason = "max_steps";
  let trainLossSinceEval: number[] = [];
  let lastEvalStep = -1;
  let goodSteps = 0;
  let val: Evaluation | null = null;
  const diagnose = async (d: Diagnostic | null) => {
    if (!d) return;
    logger.diagnostic({ ...d, step: d.step, epoch: Math.max(1, Math.ceil(state.epoch)), numEpochs });
    await emit(subscribers, "onDiagnostic", d);
  };
  let savedStep = -1;
  const checkpoint = async () => {
    const dir = saveCheckpoint(outputDir, checkpointAdapter(), engine.snapshot(), state);
    savedStep = state.globalStep;
    pruneCheckpoints(outputDir, Math.max(1, recipe.save_total_limit), state.bestStep !== null ? path.join(outputDir, `checkpoint-${state.bestStep}`) : undefined);
    await emit(subscribers, "onCheckpoint", { step: state.globalStep, dir });
  };
  const runEval = async (): Promise<boolean> => {
    val = await evaluate(data.val);
    lastEvalStep = state.globalStep;
    const event: EvalEvent = { step: state.globalStep, epoch: state.epoch, loss: val.loss, metrics: val.metrics };
    evals.push(event);
    logger.eval({ step: state.globalStep, epoch: Math.max(1, Math.ceil(state.epoch)), numEpochs, metrics: val.metrics });
    await emit(subscribers, "onEval", event);
    const meanTrain = trainLossSinceEval.reduce((a, b) => a + b, 0) / Math.max(1, trainLossSinceEval.length);
    trainLossSinceEval = [];
    await diagnose(watcher.onEval(state.globalStep, val.loss, meanTrain));
    if (state.bestMetric === null || val.loss < state.bestMetric) {
      state.bestMetric = val.loss;
      state.bestStep = state.globalStep;
      state.patienceUsed = 0;
      best = engine.snapshot();
      return false;
    }
    state.patienceUsed++;
    return recipe.early_stopping_steps > 0 && state.patienceUsed >= recipe.early_stopping_steps;
  };

  await emit(subscribers, "onStart", { maxSteps, numEpochs, trainExamples: data.train.length, valExamples: data.val.length, outputDir });
  const loopStart = Date.now();
  try {
    while (state.globalStep < maxSteps) {
      if (stopRequested()) {
        stoppedBy = "interrupted";
        break;
      }
      const stepStart = Date.now();
      const { feeds, tokens } = stepFeeds(state.globalStep);
      const lr = learningRateAt(schedule, state.globalStep);
      const result = await engine.train(feeds, lr, state.lossScale);
      if (!result.applied && recipe.fp16 && Number.isFinite(result.loss) && state.lossScale > 1) {
        // float16 gradients overflowed: halve the loss scale and retry the step (torch's GradScaler does the same).
        state.lossScale /= 2;
        goodSteps = 0;
        logger.message(`float16 gradients overflowed at step ${state.globalStep + 1}; loss scale lowered to ${state.lossScale}`);
        continue;
      }
      if (!result.applied) {
        stoppedBy = "non_finite_loss";
        await diagnose({
          kind: "non_finite_loss",
          step: state.globalStep + 1,
          message: `loss or gradients became ${Number.isNaN(result.loss) ? "NaN" : "infinite"} at step ${state.globalStep + 1}; the update was not applied and the last good checkpoint is kept`,
          suggestion: "lower learning_rate, keep max_grad_norm: 1.0, check the data for empty or extreme rows",
        });
        break;
      }
      state.globalStep = engine.step;
      if (recipe.fp16 && ++goodSteps % LOSS_SCALE_GROWTH_INTERVAL === 0) state.lossScale *= 2;
      state.epoch = (state.globalStep * accumulation) / batchesPerEpoch;
      const seconds = (Date.now() - stepStart) / 1000;
      history.push({ step: state.globalStep, loss: result.loss, learningRate: lr });
      trainLossSinceEval.push(result.loss);
      const epochNo = Math.min(numEpochs, Math.floor(((state.globalStep - 1) * accumulation) / batchesPerEpoch) + 1);
      if (state.globalStep % recipe.logging_steps === 0 || state.globalStep === 1 || state.globalStep === maxSteps) {
        logger.step({ step: state.globalStep, epoch: epochNo, numEpochs, loss: result.loss, lr, gradNorm: result.gradNorm, updateNorm: result.updateNorm, tokensPerSec: tokens / seconds });
        state.logHistory.push({ step: state.globalStep, loss: result.loss, learning_rate: lr });
      }
      await emit(subscribers, "onStep", {
        step: state.globalStep,
        maxSteps,
        epoch: state.epoch,
        numEpochs,
        loss: result.loss,
        learningRate: lr,
        gradNorm: result.gradNorm,
        updateNorm: result.updateNorm,
        tokensPerSecond: tokens / seconds,
        elapsedSeconds: (Date.now() - loopStart) / 1000,
      });
      await diagnose(watcher.onStep(state.globalStep, result.updateNorm));
      if (recipe.eval_steps > 0 && data.val.length > 0 && state.globalStep % recipe.eval_steps === 0 && (await runEval())) {
        stoppedBy = "early_stopping";
        await diagnose({
          kind: "early_stopping",
          step: state.globalStep,
          message: `validation loss did not improve for ${recipe.early_stopping_steps} evaluations; keeping the best adapter (step ${state.bestStep})`,
          suggestion: "this is early stopping working as asked; raise early_stopping_steps to train longer",
        });
        break;
      }
      if (recipe.save_steps > 0 && state.globalStep % recipe.save_steps === 0) await checkpoint();
    }
    if (stoppedBy !== "non_finite_loss" && savedStep !== state.globalStep) await checkpoint();
    if (stoppedBy === "interrupted") logger.message(`interrupted at step ${state.globalStep}; checkpoint written to ${path.join(outputDir, `checkpoint-${state.globalStep}`)}`);
    if (data.val.length > 0 && lastEvalStep !== state.globalStep && stoppedBy !== "non_finite_loss") await runEval();
    if (best && recipe.early_stopping_steps > 0 && state.bestStep !== state.globalStep) {
      engine.restore(best);
      val = await evaluate(data.val);
      logger.message(`restored the best adapter from step ${state.bestStep} (val loss ${(val as Evaluation).loss.toFixed(4)})`);
    }
    const adapter = adapterNow();
    let modelDir: string | null = null;
    if (lora) saveAdapter(outputDir, adapter);
    else modelDir = saveTrainedModel(model, engine, trainable, adapter, path.join(outputDir, "model"));
    if (data.labels) writeJsonAtomic(path.join(outputDir, "labels.json"), { id2label: Object.fromEntries(data.labels.map((l, i) => [i, l])) });
    const test = data.test.length > 0 ? await evaluate(data.test) : null;
    if (test) logger.eval({ step: state.globalStep, epoch: Math.max(1, Math.ceil(state.epoch)), numEpochs, split: "test", metrics: test.metrics });
    const seconds = (Date.now() - started) / 1000;
    writeManifest(outputDir, {
      recipe,
      versions: versions(),
      seed: recipe.seed,
      data: hashDataFiles(recipe.dataset_path),
      device: recipe.device,
      startedAt: new Date(started).toISOString(),
      durations: { total_s: seconds, training_s: (Date.now() - loopStart) / 1000 },
      result: { steps: state.globalStep, stopped_by: stoppedBy, best_step: state.bestStep, val: val ? (val as Evaluation).metrics : null, test: test?.metrics ?? null },
    });
    await emit(subscribers, "onEnd", { step: state.globalStep, stoppedBy, bestStep: state.bestStep });
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
    process.removeListener("SIGINT", onSigint);
    logger.close();
    await engine.release();
  }
}

function isSplit(d: TrainOptions["data"]): d is SplitDatasets<Row> {
  return !!d && "train" in d && "val" in d;
}

/** The checkpoint to resume from, if the recipe asks for one. */
function resumeCheckpoint(recipe: Recipe, outputDir: string): string | null {
  const r = recipe.resume_from_checkpoint;
  if (!r) return null;
  if (r === true) {
    const all = listCheckpoints(outputDir);
    if (all.length === 0) throw new Error(`resume_from_checkpoint: true, but ${outputDir} has no checkpoint-* folder`);
    return all[all.length - 1].dir;
  }
  return path.resolve(r);
}

/** A seed for one micro-batch's dropout masks that depends only on the run seed and the position in the run. */
function dropoutSeed(seed: number, step: number, micro: number): number {
  return (Math.imul(seed + 1, 1000003) + Math.imul(step, 131) + micro) >>> 1;
}

