/**
 * AMD Strix Halo (Ryzen AI Max, Radeon 8060S/8050S): gfx1151, integrated,
 * the default target. ROCm comes from TheRock's gfx1151 tarballs.
 * Options (`targets.gfx1151`): see AmdTargetOptions in src/gpu/amd-target.ts.
 */
import { amdTarget } from '../src/plugin/index.js';

export default amdTarget({
  name: 'gfx1151',
  arch: 'gfx1151',
  family: 'gfx1151',
  description: 'AMD Strix Halo / Ryzen AI Max (gfx1151, integrated) with TheRock ROCm',
});
