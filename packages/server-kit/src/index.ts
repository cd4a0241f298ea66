/** @nokv/server-kit: process plumbing shared by NoKV's servers (store, coordinator, Redis gateway). */

export { createHttpServer, type HttpEndpoints, toJson } from './http.js';
export {
  bindGrpc,
  closeHttp,
  freeLoopbackPort,
  type ListenErrorFactory,
  listenHttp,
  shutdownGrpc,
} from './listen.js';
export { isEntryModule, runIfEntry } from './main.js';
export { type RunIo, runUntilSignal, type StartedServer, stderrIo } from './run.js';
