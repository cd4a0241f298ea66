/**
 * Hands out small buffers as slices of large slabs. Node's own small-buffer pool allocates an
 * 8 KiB ArrayBuffer every few writes, and each allocation (external memory V8 must account for)
 * costs more than the write it serves; a 1 MiB slab amortises that over a thousand writes.
 * Slices keep their slab alive, which suits the memtable: it holds views of its writes until it
 * is flushed and dropped.
 */
export class Arena {
  private slab: Buffer;
  private used = 0;

  constructor(private readonly slabBytes = 1 << 20) {
    this.slab = Buffer.allocUnsafeSlow(slabBytes);
  }

  alloc(bytes: number): Buffer {
    if (bytes > this.slabBytes >>> 2) return Buffer.allocUnsafeSlow(bytes);
    if (this.used + bytes > this.slabBytes) {
      this.slab = Buffer.allocUnsafeSlow(this.slabBytes);
      this.used = 0;
    }
    const out = this.slab.subarray(this.used, this.used + bytes);
    // Keep slices 8-byte aligned, like the allocator they replace.
    this.used += (bytes + 7) & ~7;
    return out;
  }
}
