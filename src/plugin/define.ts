import type { TargetDefinition, TaskDefinition } from './types.js';

/** Identity helper that gives a task its types. */
export function defineTask<Options = unknown>(task: TaskDefinition<Options>): TaskDefinition<Options> {
  return task;
}

/** Identity helper that gives a target its types. */
export function defineTarget(target: TargetDefinition): TargetDefinition {
  return target;
}
