/** A client operation as the linearizability checker's kvModel describes it. */
export interface KvInput {
  op: 'get' | 'put' | 'append' | 'cas';
  key: string;
  value?: string;
  expected?: string;
}

export interface KvOutput {
  value?: string;
  ok?: boolean;
}

/** A command as it travels through the Raft log: the operation and who asked for it. */
export interface KvCommand {
  clientId: number;
  opId: number;
  input: KvInput;
}

export function encodeCommand(cmd: KvCommand): Uint8Array {
  return Buffer.from(JSON.stringify(cmd));
}

export function decodeCommand(data: Uint8Array): KvCommand {
  return JSON.parse(Buffer.from(data).toString()) as KvCommand;
}

/**
 * The replicated state machine: a string map. Deterministic, so every replica that applies the
 * same entries reaches the same state (which the simulator checks by hash at every index).
 */
export class KvStateMachine {
  private data = new Map<string, string>();

  apply(input: KvInput): KvOutput {
    const current = this.data.get(input.key);
    switch (input.op) {
      case 'get':
        return current === undefined ? {} : { value: current };
      case 'put':
        this.data.set(input.key, input.value ?? '');
        return {};
      case 'append':
        this.data.set(input.key, (current ?? '') + (input.value ?? ''));
        return {};
      case 'cas':
        // `expected` undefined means "the key is absent".
        if (current === input.expected) {
          this.data.set(input.key, input.value ?? '');
          return { ok: true };
        }
        return { ok: false };
    }
  }

  get(key: string): KvOutput {
    const v = this.data.get(key);
    return v === undefined ? {} : { value: v };
  }

  snapshot(): Uint8Array {
    return Buffer.from(JSON.stringify([...this.data.entries()].sort((x, y) => (x[0] < y[0] ? -1 : 1))));
  }

  static fromSnapshot(data: Uint8Array): KvStateMachine {
    const sm = new KvStateMachine();
    if (data.length > 0) sm.data = new Map(JSON.parse(Buffer.from(data).toString()) as [string, string][]);
    return sm;
  }

  /** A digest of the whole state, compared across replicas at equal applied indexes. */
  digest(): string {
    let h = 0x811c9dc5;
    for (const [k, v] of [...this.data.entries()].sort((x, y) => (x[0] < y[0] ? -1 : 1))) {
      for (const s of [k, '=', v, ';']) {
        for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
      }
    }
    return `${this.data.size}:${h.toString(16)}`;
  }
}
