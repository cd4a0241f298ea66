/**
 * Entry point of the background worker thread (see `background-executor.ts`): runs flush and
 * compaction jobs on the real filesystem and posts back table metadata or a serialized error.
 */

import { parentPort } from 'node:worker_threads';
import { runCompactionTask } from '../compaction/compaction-job.js';
import { flushWalSegment } from '../compaction/flush-job.js';
import { nodeVfs } from '../vfs/node-vfs.js';
import { reviveCompactionTask, serializeError, type WorkerMessage } from './background-executor.js';

const port = parentPort;
if (port === null) throw new Error('background-worker.ts must run in a worker thread');

let stopping = false;

port.on('message', (msg: WorkerMessage) => {
  if (!('type' in msg)) return;
  if (msg.type === 'stop') {
    stopping = true;
    return;
  }
  const job =
    msg.type === 'flush'
      ? flushWalSegment(nodeVfs, msg.task)
      : runCompactionTask(nodeVfs, reviveCompactionTask(msg.task), () => stopping);
  job.then(
    (result) => port.postMessage({ id: msg.id, ok: true, result } satisfies WorkerMessage),
    (err: unknown) =>
      port.postMessage({ id: msg.id, ok: false, error: serializeError(err) } satisfies WorkerMessage),
  );
});
