import { afterEach, expect, it, vi } from 'vitest';
import { type RunIo, runUntilSignal, type StartedServer } from './run.js';

// A signal nobody else in the test process listens to; the handlers are installed before
// `onStarted` runs, so sending it there never hits the default action.
const SIGNAL = 'SIGUSR2';

interface Fake extends StartedServer {
  logged: Array<[object, string]>;
  stops: number;
}

function fake(stop: () => Promise<void> = async () => {}): Fake {
  const server: Fake = {
    logged: [],
    stops: 0,
    logger: { info: (obj, msg) => server.logged.push([obj, msg]) },
    stop: () => {
      server.stops++;
      return stop();
    },
  };
  return server;
}

function io(onStarted?: (s: Fake) => void): RunIo<Fake> & { errors: string[] } {
  const errors: string[] = [];
  return { errors, error: (t) => errors.push(t), signals: [SIGNAL], ...(onStarted ? { onStarted } : {}) };
}

const listeners = () => process.listenerCount(SIGNAL);

afterEach(() => {
  vi.restoreAllMocks();
});

it('runs until a real signal, stops once and exits 0', async () => {
  const before = listeners();
  const server = fake();
  let started: Fake | undefined;
  const run = io((s) => {
    started = s;
    expect(listeners()).toBe(before + 1);
    process.kill(process.pid, SIGNAL);
  });
  expect(await runUntilSignal(async () => server, run)).toBe(0);
  expect(started).toBe(server);
  expect(server.stops).toBe(1);
  expect(server.logged).toEqual([[{ signal: SIGNAL }, `received ${SIGNAL}, stopping`]]);
  expect(run.errors).toEqual([]);
  expect(listeners()).toBe(before);
});

it('stops on SIGTERM and SIGINT by default', async () => {
  const before = process.listenerCount('SIGTERM');
  const server = fake();
  const errors: string[] = [];
  const code = await runUntilSignal(async () => server, {
    error: (t) => errors.push(t),
    onStarted: () => process.emit('SIGTERM'),
  });
  expect(code).toBe(0);
  expect(server.logged[0]?.[1]).toBe('received SIGTERM, stopping');
  expect(process.listenerCount('SIGTERM')).toBe(before);
});

it('reports a failed start as `error: <message>` and exit code 1', async () => {
  const before = listeners();
  const run = io(() => {
    throw new Error('onStarted must not run');
  });
  const code = await runUntilSignal<Fake>(async () => {
    throw new Error('cannot listen on 127.0.0.1:1 (gRPC): taken');
  }, run);
  expect(code).toBe(1);
  expect(run.errors).toEqual(['error: cannot listen on 127.0.0.1:1 (gRPC): taken']);
  expect(listeners()).toBe(before);
});

it('reports a failed stop and exits 1', async () => {
  const server = fake(async () => {
    throw new Error('disk gone');
  });
  const run = io(() => process.emit(SIGNAL));
  expect(await runUntilSignal(async () => server, run)).toBe(1);
  expect(run.errors).toEqual(['error: stopping failed: disk gone']);
});

it('a second signal while stopping exits at once with code 1', async () => {
  const before = listeners();
  const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
  let finishStop!: () => void;
  let stopping!: () => void;
  const stopStarted = new Promise<void>((r) => {
    stopping = r;
  });
  const server = fake(() => {
    stopping();
    return new Promise<void>((r) => {
      finishStop = r;
    });
  });
  const run = io(() => process.kill(process.pid, SIGNAL));
  const done = runUntilSignal(async () => server, run);
  await stopStarted;
  process.kill(process.pid, SIGNAL);
  await vi.waitFor(() => expect(exit).toHaveBeenCalledWith(1));
  expect(run.errors).toEqual(['error: second signal while stopping; exiting at once']);
  finishStop();
  expect(await done).toBe(0);
  expect(listeners()).toBe(before);
});
