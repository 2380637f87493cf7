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

/**
 * Run `fn` over `items` with at most `n` at once. After the first failure no
 * new item starts; the ones in flight finish (or fail) before that first
 * failure is thrown, so nothing is left running behind the caller.
 */
export async function eachLimited<T>(items: readonly T[], n: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  const limit = new Limiter(Math.max(1, n));
  let failed = false;
  const settled = await Promise.allSettled(
    items.map((item, i) =>
      limit.run(async () => {
        if (failed) return;
        try {
          await fn(item, i);
        } catch (e) {
          failed = true;
          throw e;
        }
      }),
    ),
  );
  const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failure) throw failure.reason;
}
