import type { TargetDefinition, TargetOptions, TaskDefinition } from './types.js';

/** Identity helper that gives a task its types. */
export function defineTask<Options = unknown>(task: TaskDefinition<Options>): TaskDefinition<Options> {
  return task;
}

/**
 * Identity helper that gives a target its types; with an `options` schema,
 * the hooks see the parsed options' type.
 */
export function defineTarget<Options = TargetOptions>(target: TargetDefinition<Options>): TargetDefinition<Options> {
  return target;
}
