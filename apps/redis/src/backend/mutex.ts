/** A FIFO async mutex; taking a free lock costs no promise hop beyond the caller's own await. */
export class Mutex {
  private locked = false;
  private readonly waiters: (() => void)[] = [];
  private head = 0;

  acquire(): Promise<void> {
    if (!this.locked) {
      this.locked = true;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    if (this.head < this.waiters.length) {
      const next = this.waiters[this.head]!;
      this.waiters[this.head++] = noop;
      if (this.head > 1024 && this.head * 2 > this.waiters.length) {
        this.waiters.splice(0, this.head);
        this.head = 0;
      }
      next();
    } else {
      this.locked = false;
      this.waiters.length = 0;
      this.head = 0;
    }
  }

  get waiting(): number {
    return this.waiters.length - this.head;
  }
}

function noop(): void {}
