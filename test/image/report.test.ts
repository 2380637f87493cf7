import { describe, expect, it } from 'vitest';
import { humanBytes, sizeReport } from '../../src/image/report.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

describe('sizeReport', () => {
  it('compares full and minimal, uncompressed and both compressions, against the full image', () => {
    const md = sizeReport({
      images: [
        { name: 'minimal', uncompressedBytes: 1.8 * GiB, compressedBytes: { zstd: 600 * MiB, gzip: 720 * MiB }, files: 312, layers: 2 },
        { name: 'full', uncompressedBytes: 13 * GiB, compressedBytes: { zstd: 2.3 * GiB, gzip: 2.9 * GiB }, files: 41_234, layers: 2 },
      ],
    });
    const lines = md.trim().split('\n');
    expect(lines[0]).toBe('## Image sizes');
    expect(lines[2]).toBe('| image | files | layers | uncompressed | zstd | gzip |');
    expect(lines[3]).toBe('|---|---:|---:|---:|---:|---:|');
    expect(lines[4]).toBe('| minimal | 312 | 2 | 1.80 GiB | 600 MiB (33%) | 720 MiB (39%) |');
    expect(lines[5]).toBe('| full | 41,234 | 2 | 13.0 GiB | 2.30 GiB (18%) | 2.90 GiB (22%) |');
    // 13 / 1.8 = 7.2x; 2.3 GiB / 600 MiB = 3.9x
    expect(lines[7]).toBe('- **minimal** vs **full**: 7.2× smaller (14%) uncompressed, 3.9× smaller (25%) zstd, 4.1× smaller (24%) gzip, 312 of 41,234 files.');
  });

  it('takes a single compressed number as zstd, and leaves formats out that nobody produced', () => {
    const md = sizeReport({ images: [{ name: 'a|b', uncompressedBytes: 2048, compressedBytes: 1024, files: 1, layers: 1 }], title: 'Sizes' });
    expect(md).toContain('| image | files | layers | uncompressed | zstd |\n');
    expect(md).toContain('| a\\|b | 1 | 1 | 2.00 KiB | 1.00 KiB (50%) |');
    expect(md).not.toContain('vs');
  });

  it('marks a missing format and a larger image', () => {
    const md = sizeReport({
      images: [
        { name: 'full', uncompressedBytes: 1000, compressedBytes: { zstd: 500 }, files: 2, layers: 1 },
        { name: 'fat', uncompressedBytes: 2000, compressedBytes: { gzip: 900 }, files: 3, layers: 1 },
      ],
    });
    expect(md).toContain('| full | 2 | 1 | 1000 B | 500 B (50%) | — |');
    expect(md).toContain('**fat** vs **full**: 2.0× larger (200%) uncompressed');
  });

  it('humanBytes', () => {
    expect([0, 1023, 1536, 10 * MiB + 1, 123.4 * GiB].map(humanBytes)).toEqual(['0 B', '1023 B', '1.50 KiB', '10.0 MiB', '123 GiB']);
  });
});
