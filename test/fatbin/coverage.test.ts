import { describe, expect, it } from 'vitest';
import { coverageOf, covers, keepFor } from '../../src/fatbin/coverage.js';

describe('coverage', () => {
  it('AMD: the exact processor, any feature variant that does not conflict, or the generic ISA of its line', () => {
    expect(covers(['gfx1100', 'gfx1030'], 'gfx1100')).toEqual({ target: 'gfx1100', covered: true, by: ['gfx1100'], how: 'exact' });
    expect(covers(['gfx11-generic', 'gfx1030'], 'gfx1151')).toMatchObject({ covered: true, by: ['gfx11-generic'], how: 'generic' });
    expect(covers(['gfx1151', 'gfx11-generic'], 'gfx1151').by).toEqual(['gfx1151', 'gfx11-generic']);
    expect(covers(['gfx803', 'gfx900', 'gfx906', 'gfx908', 'gfx90a', 'gfx1010', 'gfx1030', 'gfx1100', 'gfx1101', 'gfx1102'], 'gfx1151')).toMatchObject({ covered: false, by: [], how: null });
    expect(coverageOf('gfx90a:xnack+', 'gfx90a')).toBe('exact');
    expect(coverageOf('gfx90a:xnack+', 'gfx90a:xnack-')).toBeNull();
    expect(coverageOf('gfx9-generic', 'gfx906')).toBe('generic');
    expect(coverageOf('gfx9-generic', 'gfx908')).toBeNull();
    expect(coverageOf('gfx12-generic', 'gfx1151')).toBeNull();
    expect(coverageOf('host', 'gfx1100')).toBeNull();
  });

  it('CUDA: the same capability, a lower minor of the same major, or PTX of a capability at or below', () => {
    expect(covers(['sm_80', 'sm_90', 'compute_90'], 'sm_90')).toMatchObject({ by: ['sm_90', 'compute_90'], how: 'exact' });
    expect(covers(['sm_80', 'compute_80'], 'sm_86')).toMatchObject({ by: ['sm_80', 'compute_80'], how: 'compatible' });
    expect(covers(['sm_80', 'compute_75', 'compute_80'], 'sm_90')).toMatchObject({ by: ['compute_80', 'compute_75'], how: 'ptx' });
    expect(covers(['sm_100', 'sm_120', 'compute_100'], 'sm_90')).toMatchObject({ covered: false });
    expect(coverageOf('sm_90a', 'sm_90')).toBe('exact');
    expect(coverageOf('sm_90a', '9.0')).toBe('exact');
    expect(coverageOf('sm_100a', 'sm_103')).toBeNull();
    expect(coverageOf('sm_100f', 'sm_103')).toBe('compatible');
    expect(coverageOf('compute_90a', 'sm_100')).toBeNull();
    expect(coverageOf('compute_100f', 'sm_103')).toBe('ptx');
    expect(coverageOf('gfx1100', 'sm_90')).toBeNull();
  });

  it('keepFor: exact and compatible code, the generic ISA and the newest PTX as configured', () => {
    expect(keepFor(['gfx1151', 'gfx11-generic', 'gfx1100'], 'gfx1151')).toEqual(['gfx1151', 'gfx11-generic']);
    expect(keepFor(['gfx1151', 'gfx11-generic'], 'gfx1151', { generic: false })).toEqual(['gfx1151']);
    expect(keepFor(['sm_80', 'sm_90', 'sm_90a', 'sm_100', 'compute_75', 'compute_90', 'compute_100'], 'sm_90')).toEqual(['sm_90', 'sm_90a', 'compute_90']);
    expect(keepFor(['sm_90', 'compute_90'], 'sm_90', { ptx: false })).toEqual(['sm_90']);
    expect(keepFor(['gfx1030'], 'gfx1151')).toEqual([]);
  });
});
