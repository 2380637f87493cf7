/**
 * AMD RDNA3 discrete cards (RX 7900 XTX/XT/GRE, Radeon PRO W7900): gfx1100.
 * ROCm comes from TheRock's gfx110X-all tarballs, which also carry
 * gfx1101/gfx1102 kernels; the drop rules remove them.
 */
import { amdTarget } from '../src/plugin/index.js';

export default amdTarget({
  name: 'gfx1100',
  arch: 'gfx1100',
  family: 'gfx110X-all',
  description: 'AMD RDNA3 discrete (gfx1100: RX 7900 series) with TheRock ROCm',
});
