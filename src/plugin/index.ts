/**
 * `rocmflow/plugin`: everything a task or target plugin needs, from any
 * project that depends on rocmflow. Built-in tasks and targets use this
 * entry too.
 */
export * from './types.js';
export { defineTask, defineTarget } from './define.js';
export { RocmflowError, usageError, missingTool } from '../errors.js';
export * as s from '../util/schema.js';
export {
  amdTarget, amdTargetOptions, amdKeepRules, amdDropRules, otherArches, findHipCompiler, hipToolchainEnv,
  type AmdTargetSpec, type AmdTargetOptions,
} from '../gpu/amd-target.js';
export { KNOWN_AMD_ARCHES, GENERIC_ISAS } from '../gpu/amd-arches.js';
export { encodeGfxArch } from '../gpu/kfd.js';
export { applyTargetRules, activeKeepGlobs, type RulePlan } from '../gpu/target-rules.js';
