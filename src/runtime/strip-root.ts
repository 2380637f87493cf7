/**
 * Strip the ELF files of an assembled root (`strip --strip-unneeded`: symbol
 * tables and debug sections go, the dynamic symbols stay), then bring its
 * manifest up to date. Run before verification, so the stripped root is the
 * one proven to work. ELF interpreters, hard-linked files and ELF files of
 * other machines (GPU code objects) are left alone.
 */
import { execFile } from 'node:child_process';
import { open, stat, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { posix } from 'node:path';
import { missingTool, RocmflowError } from '../errors.js';
import type { ManifestEntry, RootManifest } from './assemble.js';
import { sha256File } from '../util/sha256-file.js';
import { eachLimited } from '../util/limiter.js';

/** e_machine of this host's own ELF files (x86-64 62, AArch64 183). */
const HOST_MACHINE: number | null = ({ x64: 62, arm64: 183, ppc64: 21, s390x: 22, riscv64: 243 } as Record<string, number>)[process.arch] ?? null;

/**
 * Is `file` an ELF file of the host's machine? GPU code objects are ELF
 * too (AMDGPU e_machine 224: rocBLAS's `.hsaco` kernel files; CUDA cubins
 * 190): the host's strip cannot read them, and the HIP runtime finds
 * kernels by their symbols, so they are never stripped.
 */
async function isHostElf(file: string): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(20);
    const { bytesRead } = await fh.read(buf, 0, 20, 0);
    if (bytesRead < 20 || !buf.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) return false;
    const machine = buf[5] === 2 ? buf.readUInt16BE(18) : buf.readUInt16LE(18);
    return HOST_MACHINE === null || machine === HOST_MACHINE;
  } finally {
    await fh.close();
  }
}

function strip(file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('strip', ['--strip-unneeded', '-p', file], (err, _out, stderr) => {
      if ((err as NodeJS.ErrnoException | null)?.code === 'ENOENT') reject(missingTool('strip', 'apt install binutils'));
      else if (err) reject(new RocmflowError('E_STRIP', `strip ${file}: ${stderr.trim() || err.message}`));
      else resolve();
    });
  });
}

/** Strip in place and return the updated manifest (also written to `manifestPath`); bytes saved in `saved`. */
export async function stripRoot(
  rootfs: string, manifest: RootManifest, manifestPath: string, opts: { onProgress?(bytesDone: number, bytesTotal: number): void } = {},
): Promise<{ manifest: RootManifest; saved: number; stripped: number }> {
  const linked = new Set(manifest.entries.flatMap((e) => (e.hardlinkOf ? [e.path, e.hardlinkOf] : [])));
  let saved = 0;
  let stripped = 0;
  const total = manifest.entries.reduce((n, e) => n + (e.type === 'file' ? e.size : 0), 0);
  let done = 0;
  // strip is a process per file: as many at a time as there are cores, the manifest kept in order
  const entries: ManifestEntry[] = [...manifest.entries];
  const todo = manifest.entries.map((e, i) => [e, i] as const).filter(([e]) => e.type === 'file');
  await eachLimited(todo, availableParallelism(), async ([e, i]) => {
    if (e.reason !== 'interpreter' && !linked.has(e.path)) {
      const file = posix.join(rootfs, e.path);
      if (await isHostElf(file)) {
        await strip(file);
        const size = (await stat(file)).size;
        saved += e.size - size;
        stripped++;
        entries[i] = { ...e, size, sha256: await sha256File(file) };
      }
    }
    opts.onProgress?.((done += e.size), total);
  });
  const files = entries.filter((e) => e.type === 'file' && !e.hardlinkOf);
  const updated: RootManifest = { entries, files: files.length, bytes: files.reduce((n, e) => n + e.size, 0) };
  await writeFile(manifestPath, JSON.stringify(updated, null, 2) + '\n');
  return { manifest: updated, saved, stripped };
}
