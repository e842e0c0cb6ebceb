/** The HTTP server: `serve()` and what it is made of. */
export { serve, type ServeOptions, type ServerHandle } from "./server";
export type { AdapterSpec, ServedModel } from "./models";
export { ApiError, type ErrorBody } from "./errors";
export { BatchQueue, type BatchQueueOptions, type BatchRunner, type QueueEntry } from "./queue";
export type { Classification } from "./classifier";
