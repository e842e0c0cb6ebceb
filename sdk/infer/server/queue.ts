/**
 * The batching scheduler: requests wait in a bounded queue; whenever the model is idle, every waiting request (up
 * to the batch size) goes into one batch that runs as shared forward passes. Requests that arrive while a batch
 * runs form the next one, so under load batches fill up by themselves and a lone request never waits for company.
 */
import { QueueFullError, ShuttingDownError } from "./errors";

/** Limits of a BatchQueue. */
export interface BatchQueueOptions {
  /** Most requests in one batch. */
  maxBatchSize: number;
  /** Most requests waiting for a batch; one more is refused with 429. */
  maxQueue: number;
  /** Model name, for error messages. */
  name: string;
  /** Called with each batch's size as it starts (metrics). */
  onBatch?: (size: number) => void;
}

interface Waiting<I, O> {
  item: I;
  resolve: (out: O) => void;
  reject: (err: unknown) => void;
}

/** A queue that runs its items in batches through `runBatch`, one batch at a time. */
export class BatchQueue<I, O> {
  private readonly waiting: Waiting<I, O>[] = [];
  private runningCount = 0;
  private closed = false;
  private idle: (() => void)[] = [];

  constructor(
    private readonly runBatch: (items: I[]) => Promise<O[]>,
    private readonly options: BatchQueueOptions,
  ) {
    if (!(options.maxBatchSize >= 1) || !(options.maxQueue >= 0)) throw new Error(`BatchQueue: maxBatchSize must be >= 1 and maxQueue >= 0`);
  }

  /** Requests waiting for a batch. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Requests in the batch now running. */
  get running(): number {
    return this.runningCount;
  }

  /** Adds one item; throws QueueFullError (429) at once when the queue is full, ShuttingDownError when closed. */
  submit(item: I): Promise<O> {
    if (this.closed) throw new ShuttingDownError();
    if (this.waiting.length >= this.options.maxQueue) throw new QueueFullError(this.options.name, this.options.maxQueue);
    const done = new Promise<O>((resolve, reject) => this.waiting.push({ item, resolve, reject }));
    setImmediate(() => this.pump()); // requests arriving in the same tick join one batch
    return done;
  }

  /** Adds several items at once, all or none: the queue must have room for every one. */
  submitAll(items: readonly I[]): Promise<O>[] {
    if (this.closed) throw new ShuttingDownError();
    if (this.waiting.length + items.length > this.options.maxQueue) throw new QueueFullError(this.options.name, this.options.maxQueue);
    return items.map((item) => this.submit(item));
  }

  /** Refuses new items and resolves once everything submitted has finished. */
  drain(): Promise<void> {
    this.closed = true;
    if (this.runningCount === 0 && this.waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private pump(): void {
    if (this.runningCount > 0) return;
    if (this.waiting.length === 0) {
      for (const f of this.idle.splice(0)) f();
      return;
    }
    const batch = this.waiting.splice(0, this.options.maxBatchSize);
    this.runningCount = batch.length;
    this.options.onBatch?.(batch.length);
    this.runBatch(batch.map((w) => w.item))
      .then(
        (outs) => batch.forEach((w, i) => w.resolve(outs[i])),
        (err: unknown) => batch.forEach((w) => w.reject(err)),
      )
      .finally(() => {
        this.runningCount = 0;
        this.pump();
      });
  }
}
