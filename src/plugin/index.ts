/**
 * `rocmflow/plugin`: everything a task or target plugin needs, from any
 * project that depends on rocmflow: the task and target contracts, the
 * schema helpers, the error type, and the AMD target factory with its rule
 * builders. Built-in targets use this entry too.
 */
export * from './core.js';
export {
  amdTarget, amdTargetOptions, amdKeepRules, amdDropRules, otherArches, findHipCompiler, hipToolchainEnv,
  type AmdTargetSpec, type AmdTargetOptions,
} from '../gpu/amd-target.js';
export { KNOWN_AMD_ARCHES, GENERIC_ISAS } from '../gpu/amd-arches.js';
export { encodeGfxArch } from '../gpu/kfd.js';
export { applyTargetRules, activeKeepGlobs, type RulePlan } from '../gpu/target-rules.js';
