/**
 * Debian's librocblas4 (sid) as a real multi-arch ROCm layout: the .deb is
 * downloaded once with apt-get through a private sid source list (the
 * host's apt state is untouched) and cached under .work/, and its file
 * listing (`dpkg-deb -c`, no need to unpack 3 GB) is cached next to it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WORK, once } from '../helpers/llama.js';

/** One entry of a package listing. */
export interface ListedFile {
  /** Absolute path as installed, e.g. /usr/lib/x86_64-linux-gnu/librocblas.so.4.4. */
  path: string;
  size: number;
  type: 'file' | 'dir' | 'link';
}

const DIR = join(WORK, 'debian-sid');
const PACKAGE = 'librocblas4';

/** The Debian mirror this machine's apt uses (deb.debian.org when none is found). */
function debianMirror(): string {
  const files = ['/etc/apt/sources.list', ...(existsSync('/etc/apt/sources.list.d') ? readdirSync('/etc/apt/sources.list.d').map((f) => join('/etc/apt/sources.list.d', f)) : [])];
  for (const f of files) {
    const text = existsSync(f) ? readFileSync(f, 'utf8') : '';
    const m = /(https?:\/\/\S+\/debian)\/?(\s|$)/.exec(text);
    if (m) return m[1]!;
  }
  return 'http://deb.debian.org/debian';
}

function aptOptions(): string[] {
  return [
    '-o', `Dir::Etc::SourceList=${join(DIR, 'sources.list')}`,
    '-o', `Dir::Etc::SourceParts=${join(DIR, 'parts')}`,
    '-o', `Dir::State::Lists=${join(DIR, 'lists')}`,
    '-o', `Dir::Cache=${join(DIR, 'cache')}`,
    // the mirror's sid Release file can be past its Valid-Until
    '-o', 'Acquire::Check-Valid-Until=false',
    '-o', 'Acquire::Languages=none',
  ];
}

/** Path of the cached librocblas4 .deb, downloading it the first time. */
export async function rocblasDeb(): Promise<string> {
  const find = () => (existsSync(DIR) ? readdirSync(DIR).find((f) => f.startsWith(`${PACKAGE}_`) && f.endsWith('.deb')) : undefined);
  await once('debian-rocblas', join(DIR, '.deb-ready'), () => {
    if (!find()) {
      for (const d of ['lists/partial', 'cache/archives/partial', 'parts']) mkdirSync(join(DIR, d), { recursive: true });
      writeFileSync(join(DIR, 'sources.list'), `deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${debianMirror()} sid main\n`);
      execFileSync('apt-get', ['update', '-qq', ...aptOptions()], { stdio: 'ignore' });
      execFileSync('apt-get', ['download', '-qq', ...aptOptions(), PACKAGE], { cwd: DIR, stdio: 'ignore' });
    }
    writeFileSync(join(DIR, '.deb-ready'), find()!);
  });
  return join(DIR, find()!);
}

/** Parse `dpkg-deb -c` (tar -tv style) output. */
export function parseDebListing(text: string): ListedFile[] {
  const out: ListedFile[] = [];
  for (const line of text.split('\n')) {
    const m = /^([dl-])\S+\s+\S+\s+(\d+)\s+\S+\s+\S+\s+\.(\/.*?)(?: -> .*)?$/.exec(line);
    if (!m) continue;
    const path = m[3]!.replace(/\/$/, '') || '/';
    out.push({ path, size: Number(m[2]), type: m[1] === 'd' ? 'dir' : m[1] === 'l' ? 'link' : 'file' });
  }
  return out;
}

/** The real file list of librocblas4 (cached after the first listing). */
export async function rocblasListing(): Promise<{ deb: string; files: ListedFile[] }> {
  const deb = await rocblasDeb();
  const cached = `${deb}.list`;
  await once('debian-rocblas-list', cached, () => {
    const text = execFileSync('dpkg-deb', ['-c', deb], { encoding: 'utf8', maxBuffer: 64 << 20 });
    writeFileSync(`${cached}.tmp`, text);
    renameSync(`${cached}.tmp`, cached);
  });
  return { deb, files: parseDebListing(readFileSync(cached, 'utf8')) };
}
