// Starts a fuzz worker thread: registers tsx's loader in this thread (execArgv does not
// reach a worker's loader in Node 20), then loads the TypeScript worker.
import { register } from "tsx/esm/api";

register();
await import("./worker.ts");
