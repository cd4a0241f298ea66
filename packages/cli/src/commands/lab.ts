import { ExitCode } from '../errors.js';
import type { Output } from '../output.js';

export interface LabFlags {
  config: string;
  artifacts: string;
  logLevel: string;
}

/** `nokv lab up`: runs the coordinator and the stores of the topology until Ctrl+C. */
export async function labUpCommand(flags: LabFlags, out: Output): Promise<void> {
  const { labUp } = await import('../lab/supervisor.js');
  const lab = await labUp({
    configPath: flags.config,
    artifactsDir: flags.artifacts,
    logLevel: flags.logLevel,
    print: (line) => out.write(line),
  });
  let signals = 0;
  const onSignal = () => {
    signals++;
    if (signals > 1) process.exit(1);
    out.write('stopping the lab (Ctrl+C again to force)...');
    void lab.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const clean = await lab.done;
  await lab.stop();
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  if (signals === 0 && clean) out.write('the lab was stopped');
  else if (signals === 0) {
    out.error('error: a lab process exited on its own; see the logs');
    throw new ExitCode(1);
  }
}

export async function labDownCommand(flags: { artifacts: string }, out: Output): Promise<void> {
  const { labDown } = await import('../lab/supervisor.js');
  const n = await labDown({ artifactsDir: flags.artifacts });
  out.write(`stopped ${n} lab processes`);
}

export async function labCleanCommand(
  flags: { config: string; artifacts: string },
  out: Output,
): Promise<void> {
  const { labClean } = await import('../lab/supervisor.js');
  for (const dir of await labClean({ configPath: flags.config, artifactsDir: flags.artifacts })) {
    out.write(`removed ${dir}`);
  }
}
