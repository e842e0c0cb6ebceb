/**
 * The batching scheduler: requests wait in a bounded queue; whenever the model is idle, the waiting requests (up to
 * the batch size) start one batch, which runs as shared forward passes. While it runs, the runner may `take` more
 * waiting requests into it (continuous batching: a generating batch admits new rows between steps as others
 * finish), and each request is answered as soon as its own result is ready.
 */
import { QueueFullError, ShuttingDownError } from "./errors";

/** Limits of a BatchQueue. */
export interface BatchQueueOptions {
  /** Most requests in one batch at a time. */
  maxBatchSize: number;
  /** Most requests waiting for a batch; one more is refused with 429. */
  maxQueue: number;
  /** Model name, for error messages. */
  name: string;
}

/** A queued request: its item and how to answer it. */
export interface QueueEntry<I, O> {
  item: I;
  resolve: (out: O) => void;
  reject: (err: unknown) => void;
}

/**
 * Runs one batch: answers each entry of `batch` (and of what it takes later) through its resolve. `take(running)`
 * hands over waiting entries that fit beside `running` requests still in the batch.
 */
export type BatchRunner<I, O> = (batch: QueueEntry<I, O>[], take: (running: number) => QueueEntry<I, O>[]) => Promise<void>;

/** A queue that runs its items in batches through a runner, one batch at a time. */
export class BatchQueue<I, O> {
  private readonly waiting: QueueEntry<I, O>[] = [];
  private active = false;
  private runningCount = 0;
  private closed = false;
  private idle: (() => void)[] = [];

  constructor(
    private readonly runner: BatchRunner<I, O>,
    private readonly options: BatchQueueOptions,
  ) {
    if (!(options.maxBatchSize >= 1) || !(options.maxQueue >= 0)) throw new Error(`BatchQueue: maxBatchSize must be >= 1 and maxQueue >= 0`);
  }

  /** A queue whose batches run through `run` (items in, results out in the same order), with no joining. */
  static simple<I, O>(run: (items: I[]) => Promise<O[]>, options: BatchQueueOptions): BatchQueue<I, O> {
    return new BatchQueue<I, O>(async (batch) => {
      const outs = await run(batch.map((e) => e.item));
      batch.forEach((e, i) => e.resolve(outs[i]));
    }, options);
  }

  /** Requests waiting for a batch. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Requests in the running batch. */
  get running(): number {
    return this.runningCount;
  }

  /** Adds one item; throws QueueFullError (429) at once when the queue is full, ShuttingDownError when closed. */
  submit(item: I): Promise<O> {
    return this.submitAll([item])[0];
  }

  /** Adds several items at once, all or none: the queue must have room for every one. */
  submitAll(items: readonly I[]): Promise<O>[] {
    if (this.closed) throw new ShuttingDownError();
    if (this.waiting.length + items.length > this.options.maxQueue) throw new QueueFullError(this.options.name, this.options.maxQueue);
    const done = items.map((item) => new Promise<O>((resolve, reject) => this.waiting.push({ item, resolve, reject })));
    setImmediate(() => this.pump()); // requests arriving in the same tick start one batch together
    return done;
  }

  /** Refuses new items and resolves once everything submitted has been answered. */
  drain(): Promise<void> {
    this.closed = true;
    if (!this.active && this.waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private pump(): void {
    if (this.active) return;
    if (this.waiting.length === 0) {
      for (const f of this.idle.splice(0)) f();
      return;
    }
    this.active = true;
    const taken: QueueEntry<I, O>[] = [];
    const take = (running: number): QueueEntry<I, O>[] => {
      const entries = this.waiting.splice(0, Math.max(0, this.options.maxBatchSize - running)).map((e) => ({
        item: e.item,
        resolve: (out: O) => {
          this.runningCount--;
          e.resolve(out);
        },
        reject: e.reject,
      }));
      this.runningCount = running + entries.length;
      taken.push(...entries);
      return entries;
    };
    this.runner(take(0), take)
      .catch((err: unknown) => taken.forEach((e) => e.reject(err))) // answered entries ignore it
      .finally(() => {
        this.active = false;
        this.runningCount = 0;
        this.pump();
      });
  }
}
