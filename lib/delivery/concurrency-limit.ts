/** At most `max` tasks at once; the rest wait in order. Shared by every dispatcher and the ledger's deliverer. */
export class ConcurrencyLimit {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  /** Hands the slot of a finished task to the next waiter (one function for every task: no closure per run). */
  private readonly release = () => {
    // a finishing task hands its slot straight to the next waiter, so `active` never exceeds `max`
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  };

  constructor(private readonly max: number) {}

  /**
   * Runs `fn` once a slot is free. With a free slot `fn` starts synchronously and its own promise chain is all there
   * is (this is on every delivery's path); `fn` must return a promise, and a synchronous throw is returned as a rejection.
   */
  run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.max) {
      return new Promise<void>((r) => this.waiting.push(r)).then(() => this.start(fn));
    }
    this.active++;
    return this.start(fn);
  }

  /** Runs `fn` in a slot already taken, and gives the slot back when it settles. */
  private start<T>(fn: () => Promise<T>): Promise<T> {
    let p: Promise<T>;
    try {
      p = fn();
    } catch (err) {
      this.release();
      return Promise.reject(err);
    }
    p.then(this.release, this.release);
    return p;
  }
}
