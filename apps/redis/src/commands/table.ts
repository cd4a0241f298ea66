/** Every command the gateway knows, by lower-case name. */

import { CONNECTION_COMMANDS } from './connection.js';
import { KEY_COMMANDS } from './keys.js';
import { type CommandTable, serverCommands } from './server-commands.js';
import { STRING_COMMANDS } from './strings.js';
import type { CommandSpec } from './types.js';

function build(): CommandTable {
  const byName = new Map<string, CommandSpec>();
  const table: CommandTable = {
    all: [],
    get: (name) => byName.get(name),
  };
  const all = [...CONNECTION_COMMANDS, ...STRING_COMMANDS, ...KEY_COMMANDS, ...serverCommands(() => table)];
  for (const spec of all) byName.set(spec.name, spec);
  (table as { all: readonly CommandSpec[] }).all = all;
  return table;
}

export const COMMANDS: CommandTable = build();
