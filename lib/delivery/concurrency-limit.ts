/** At most `max` tasks at once; the rest wait in order. Shared by every dispatcher and the ledger's deliverer. */
export class ConcurrencyLimit {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly max: number) {}

  /** Runs `fn` once a slot is free. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    // a finishing task hands its slot straight to the next waiter, so `active` never exceeds `max`
    if (this.active < this.max) this.active++;
    else await new Promise<void>((r) => this.waiting.push(r));
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}
