/**
 * Helpers for the fat-binary tests: the committed fixtures and what the
 * vendors' tools recorded about them, temp directories, binutils' view of a
 * file's sections, and decompression of a compressed bundle with the zstd
 * command (not rocmflow's reader).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const FIX = resolve(import.meta.dirname, '../fixtures/fatbin');
export const fixture = (name: string) => join(FIX, name);

/** What clang-offload-bundler reported for each HIP fixture (see the fixtures' README). */
export interface HipOracle {
  bundles: Array<{ sectionOffset: number; compressed: boolean; targets: string[]; objects: Record<string, { size: number; sha256: string }> }>;
}
export const hipOracle = JSON.parse(readFileSync(fixture('expected-hip.json'), 'utf8')) as Record<string, HipOracle>;
/** What nvcc -cubin wrote for each arch of tiny.cu. */
export const cudaOracle = JSON.parse(readFileSync(fixture('expected-cuda.json'), 'utf8')).cubins as Record<string, { size: number; sha256: string }>;

const made: string[] = [];
export function temp(): string {
  const d = mkdtempSync(join(tmpdir(), 'rocmflow-fatbin-'));
  made.push(d);
  return d;
}
export function cleanTemps(): void {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
}

export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** `readelf -SW`: name → { offset, size } of every section. */
export function readelfSections(file: string): Map<string, { offset: number; size: number }> {
  const text = execFileSync('readelf', ['-SW', file], { encoding: 'utf8' });
  const out = new Map<string, { offset: number; size: number }>();
  for (const m of text.matchAll(/^\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+[0-9a-f]+\s+([0-9a-f]+)\s+([0-9a-f]+)/gm)) out.set(m[1]!, { offset: parseInt(m[2]!, 16), size: parseInt(m[3]!, 16) });
  return out;
}

/** The bundle inside a compressed (CCOB v2/v3) bundle, decompressed by the zstd command. */
export function zstdDecompressCcob(ccob: Buffer): Buffer {
  const version = ccob.readUInt16LE(4);
  const headerSize = version === 2 ? 24 : 32;
  const total = version === 2 ? ccob.readUInt32LE(8) : Number(ccob.readBigUInt64LE(8));
  return execFileSync('zstd', ['-dc', '-q'], { input: ccob.subarray(headerSize, total), maxBuffer: 64 << 20 });
}
