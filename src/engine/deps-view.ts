/**
 * `ctx.deps` as a task sees it: the results of the tasks it declared in
 * `deps`. Reading any other task's result is a mistake in the task (its key
 * would not cover what it read), so it is an error naming both tasks rather
 * than `undefined` and a TypeError further on.
 */
import { RocmflowError } from '../errors.js';
import type { DepResult } from '../plugin/types.js';

/** Keys that code probing an object reads (await, JSON, inspection): left alone. */
const PROBES = new Set(['then', 'toJSON', 'constructor', 'inspect', 'asymmetricMatch', '$$typeof', 'nodeType']);

export function declaredDeps(task: string, results: Record<string, DepResult>): Readonly<Record<string, DepResult>> {
  return new Proxy(Object.freeze({ ...results }), {
    get(target, key, receiver) {
      if (typeof key !== 'string' || key in target || PROBES.has(key)) return Reflect.get(target, key, receiver);
      const declared = Object.keys(target);
      throw new RocmflowError(
        'E_UNDECLARED_DEP',
        `task ${task} reads the result of task ${key} (ctx.deps[${JSON.stringify(key)}]), but does not depend on it: add ${JSON.stringify(key)} to its deps (declared: ${declared.length ? declared.join(', ') : 'none'})`,
      );
    },
  });
}
