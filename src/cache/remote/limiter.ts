/** Runs at most `n` async jobs at once; the rest wait their turn in order. */
export class Limiter {
  private active = 0;
  private readonly queue: (() => void)[] = [];

  constructor(private readonly n: number) {}

  async run<T>(job: () => Promise<T>): Promise<T> {
    // a finishing job hands its slot straight to the next waiter, so a
    // newcomer can never slip in between and exceed the bound
    if (this.active < this.n) this.active++;
    else await new Promise<void>((r) => this.queue.push(r));
    try {
      return await job();
    } finally {
      const next = this.queue.shift();
      if (next) next();
      else this.active--;
    }
  }
}
