/**
 * AMD GPU arch names: the processors ROCm libraries ship code for, and the
 * generic ISAs whose code objects run on every processor of a line. Shared by
 * the target rules (which kernel files to drop) and the fat-binary reader
 * (which code objects cover a target).
 */

/**
 * Arches ROCm libraries ship kernel files for. Drop rules are generated from
 * this list minus the target (and minus the generic ISA that covers it);
 * add new arches here.
 */
export const KNOWN_AMD_ARCHES = [
  'gfx803', 'gfx900', 'gfx902', 'gfx906', 'gfx908', 'gfx909', 'gfx90a', 'gfx90c', 'gfx940', 'gfx941', 'gfx942', 'gfx950',
  'gfx1010', 'gfx1011', 'gfx1012', 'gfx1013', 'gfx1030', 'gfx1031', 'gfx1032', 'gfx1033', 'gfx1034', 'gfx1035', 'gfx1036',
  'gfx1100', 'gfx1101', 'gfx1102', 'gfx1103', 'gfx1150', 'gfx1151', 'gfx1152', 'gfx1153', 'gfx1200', 'gfx1201',
] as const;

/**
 * Generic ISAs (code that runs on every arch of a line), e.g. gfx11-generic
 * covers gfx1100..gfx1153. The lines are LLVM's: gfx908 and gfx90a are not
 * in gfx9-generic.
 */
export const GENERIC_ISAS: Record<string, RegExp> = {
  'gfx9-generic': /^gfx90[02469c]$/,
  'gfx9-4-generic': /^gfx94[0-9]$|^gfx950$/,
  'gfx10-1-generic': /^gfx101[0-9]$/,
  'gfx10-3-generic': /^gfx103[0-9]$/,
  'gfx11-generic': /^gfx11[0-9]{2}$/,
  'gfx12-generic': /^gfx12[0-9]{2}$/,
};
