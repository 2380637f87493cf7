/**
 * Copy an OCI archive or image layout to a registry with skopeo. skopeo asks the registry
 * for every blob by digest first (`HEAD /v2/<repo>/blobs/<digest>`) and
 * sends only the missing ones; its debug log says which, and that is what
 * the result reports. The manifest goes up byte for byte, so the digest in
 * the registry is the one rocmflow wrote.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { missingTool, RocmflowError } from '../errors.js';

export interface PushOptions {
  /** An `oci-archive` tar, or an OCI image layout directory (`oci:`) holding one image. */
  archive: string;
  /** The destination reference: `registry[:port]/repository:tag`. */
  dest: string;
  /** Verify the registry's TLS certificate (false for a plain-HTTP registry). @default true */
  tlsVerify?: boolean;
  /** A containers-auth.json (`podman login` writes one; skopeo reads it by default). */
  authfile?: string;
  signal?: AbortSignal;
  /** Each blob as skopeo decides about it. */
  onBlob?(digest: string, sent: boolean): void;
}

export interface PushResult {
  dest: string;
  /** The manifest digest in the registry. */
  digest: string;
  /** Blobs (layers and config) uploaded. */
  sent: string[];
  /** Blobs the registry already had. */
  skipped: string[];
}

/** A registry reference for `docker://`: lowercase host[:port] and path, a tag. */
const DEST_RE = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)+:[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

export function checkDest(dest: string): void {
  if (!DEST_RE.test(dest)) throw new RocmflowError('E_BAD_REF', `${JSON.stringify(dest)} is not a registry reference (host[:port]/repository:tag, lowercase)`, { exitCode: 2 });
}

export async function pushImage(o: PushOptions): Promise<PushResult> {
  checkDest(o.dest);
  const scratch = await mkdtemp(join(tmpdir(), 'rocmflow-push-'));
  const digestFile = join(scratch, 'digest');
  const args = ['--debug', 'copy', '--digestfile', digestFile, '--retry-times', '2'];
  if (o.tlsVerify === false) args.push('--dest-tls-verify=false');
  if (o.authfile) args.push('--dest-authfile', o.authfile);
  const layout = await stat(o.archive).then((st) => st.isDirectory(), () => false);
  args.push(`${layout ? 'oci' : 'oci-archive'}:${o.archive}`, `docker://${o.dest}`);
  const copying: string[] = [];
  const skipped = new Set<string>();
  let checking: string | null = null;
  let tail: string[] = [];
  const skip = (d: string) => {
    if (skipped.has(d)) return;
    skipped.add(d);
    o.onBlob?.(d, false);
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn('skopeo', args, { stdio: ['ignore', 'pipe', 'pipe'], signal: o.signal });
      let partial = '';
      const feed = (chunk: Buffer) => {
        const lines = (partial + chunk.toString('utf8')).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) {
          tail = [...tail.slice(-30), line];
          let m = /^Copying (?:blob|config) (sha256:[0-9a-f]{64})/.exec(line);
          if (m) copying.push(m[1]!);
          // layers: "Skipping blob X (already present)"; the config: "Checking .../blobs/X" then "... already exists"
          m = /Skipping blob (sha256:[0-9a-f]{64}) \(already present\)/.exec(line);
          if (m) skip(m[1]!);
          m = /msg="Checking \/v2\/\S+\/blobs\/(sha256:[0-9a-f]{64})"/.exec(line);
          if (m) checking = m[1]!;
          else if (checking && /msg="\.\.\. already exists"/.test(line)) skip(checking);
          else if (/msg="\.\.\. not present"/.test(line)) checking = null;
        }
      };
      child.stdout.on('data', feed);
      child.stderr.on('data', feed);
      child.on('error', (e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') reject(missingTool('skopeo', 'apt install skopeo'));
        else if (e.name !== 'AbortError') reject(e);
      });
      child.on('close', (code) => {
        if (o.signal?.aborted) return reject(o.signal.reason);
        if (code === 0) return resolve();
        const why = tail.map((l) => /level=fatal msg="(.*)"$/.exec(l)?.[1]).filter(Boolean).pop() ?? tail.filter((l) => !/level=debug/.test(l)).pop() ?? `exit ${code}`;
        reject(new RocmflowError('E_PUSH', `skopeo copy to ${o.dest} failed: ${why.replace(/\\"/g, '"')}`));
      });
    });
    const sent = [...new Set(copying)].filter((d) => !skipped.has(d));
    for (const d of sent) o.onBlob?.(d, true);
    return { dest: o.dest, digest: (await readFile(digestFile, 'utf8')).trim(), sent, skipped: [...skipped] };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
