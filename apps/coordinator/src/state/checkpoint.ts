import { open as openFile, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import {
  nokv,
  type RegionMeta,
  regionFromWire,
  regionToWire,
  uint64FromWire,
  uint64ToWire,
} from '@nokv/proto';
import { corruption } from '../errors.js';
import { type StoreRecord, storeFromWire, storeToWire } from './events.js';

// The checkpoint file `checkpoint.bin`:
//
//   magic "NKVCCKP1" (8 bytes) ‖ payload length u32 LE ‖ crc32c(payload) u32 LE ‖ payload
//
// payload = nokv.coordinator.v1.CoordinatorCheckpoint. Written atomically (tmp, fsync, rename,
// fsync of the directory), so it is never torn: any damage is corruption.

export const CHECKPOINT_MAGIC = Buffer.from('NKVCCKP1', 'latin1');
export const CHECKPOINT_FILE = 'checkpoint.bin';

export interface CheckpointData {
  stores: StoreRecord[];
  regions: RegionMeta[];
  idFence: bigint;
  tsoFence: bigint;
  /** Replay starts with this log. */
  logSeq: bigint;
  writtenUnixMs: number;
}

const pb = nokv.coordinator.v1;

export function encodeCheckpoint(c: CheckpointData): Buffer {
  const payload = pb.CoordinatorCheckpoint.encode({
    stores: c.stores.map(storeToWire),
    regions: c.regions.map(regionToWire),
    idFence: uint64ToWire(c.idFence, 'id_fence'),
    tsoFence: uint64ToWire(c.tsoFence, 'tso_fence'),
    logSeq: uint64ToWire(c.logSeq, 'log_seq'),
    writtenUnixMs: uint64ToWire(BigInt(c.writtenUnixMs), 'written_unix_ms'),
  }).finish();
  const head = Buffer.alloc(16);
  CHECKPOINT_MAGIC.copy(head, 0);
  head.writeUInt32LE(payload.length, 8);
  head.writeUInt32LE(crc32c(Buffer.from(payload.buffer, payload.byteOffset, payload.length)), 12);
  return Buffer.concat([head, payload]);
}

/** @throws CoordinatorError `Corruption` naming `file`. */
export function decodeCheckpoint(file: string, data: Buffer): CheckpointData {
  if (data.length < 16 || !data.subarray(0, 8).equals(CHECKPOINT_MAGIC)) {
    throw corruption(file, 0, 'bad checkpoint magic');
  }
  const len = data.readUInt32LE(8);
  if (data.length !== 16 + len) {
    throw corruption(file, 8, `checkpoint length ${len} does not match the file size ${data.length}`);
  }
  const payload = data.subarray(16);
  if (crc32c(payload) !== data.readUInt32LE(12)) throw corruption(file, 16, 'checkpoint checksum mismatch');
  try {
    const m = pb.CoordinatorCheckpoint.decode(payload);
    return {
      stores: m.stores.map(storeFromWire),
      regions: m.regions.map(regionFromWire),
      idFence: uint64FromWire(m.idFence),
      tsoFence: uint64FromWire(m.tsoFence),
      logSeq: uint64FromWire(m.logSeq),
      writtenUnixMs: Number(uint64FromWire(m.writtenUnixMs)),
    };
  } catch (err) {
    throw corruption(file, 16, `checkpoint payload does not decode: ${(err as Error).message}`);
  }
}

/** undefined when the file does not exist. */
export async function readCheckpoint(file: string): Promise<CheckpointData | undefined> {
  let data: Buffer;
  try {
    data = await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return decodeCheckpoint(file, data);
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await openFile(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** tmp → fsync → rename → fsync(dir). */
export async function writeFileAtomic(file: string, data: Uint8Array): Promise<void> {
  const tmp = `${file}.tmp`;
  const fh = await openFile(tmp, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fh.close();
  await rename(tmp, file);
  await fsyncDir(dirname(file));
}

export async function writeCheckpoint(file: string, c: CheckpointData): Promise<void> {
  await writeFileAtomic(file, encodeCheckpoint(c));
}
