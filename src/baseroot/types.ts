/**
 * Base roots: the directory builds, traces and images use as `/`. The host's
 * own `/` (the default for cpu and cuda), a Debian/Ubuntu root made with
 * debootstrap, an existing directory, or an OCI image unpacked with umoci.
 */
import * as s from '../util/schema.js';

/** A debootstrapped root: `debootstrap --variant=V --components=C SUITE DIR MIRROR`, then `apt-get install PACKAGES` inside it. */
export interface DebootstrapSpec {
  /** e.g. `sid`, `trixie`, `noble`. */
  suite: string;
  /** @default "http://deb.debian.org/debian" */
  mirror?: string;
  /** @default "minbase" */
  variant?: string;
  /** @default ["main"] */
  components?: string[];
  /** Installed with the root's own apt-get (no recommends). @default [] */
  packages?: string[];
}

/** Where a base root comes from (`tasks.base-root.source`). */
export type BaseRootSource =
  | 'host'
  | { debootstrap: DebootstrapSpec }
  /** An existing root directory (relative to the project root), used in place. */
  | { dir: string }
  /** An OCI image: an `oci-archive` file or an OCI layout directory; `image` is the tag in it (default: the only one). */
  | { oci: string; image?: string };

const debootstrapSchema = s.object({
  suite: s.string(),
  mirror: s.optional(s.string()),
  variant: s.optional(s.literal('minbase', 'buildd', 'fakechroot')),
  components: s.optional(s.array(s.string())),
  packages: s.optional(s.array(s.string())),
});

const NAME = /^[A-Za-z0-9][A-Za-z0-9.+:~=_-]*$/;

/** Validates `tasks.base-root.source`. */
export const baseRootSourceSchema: s.Schema<BaseRootSource> = {
  describe: '"host", { debootstrap: {...} }, { dir: PATH } or { oci: PATH, image? }',
  parse(v, p) {
    if (v === 'host') return 'host';
    if (!s.isPlainObject(v)) throw new s.SchemaError(p, `expected ${this.describe}`);
    const keys = Object.keys(v);
    const at = (k: string) => (p ? `${p}.${k}` : k);
    if (keys.length === 1 && keys[0] === 'debootstrap') {
      const d = debootstrapSchema.parse(v.debootstrap, at('debootstrap'));
      for (const [i, n] of [...(d.packages ?? []), d.suite, ...(d.components ?? [])].entries())
        if (!NAME.test(n)) throw new s.SchemaError(at('debootstrap'), `${JSON.stringify(n)} (item ${i}) is not a package, suite or component name`);
      if (d.mirror !== undefined && !/^(https?|file):\/\/\S+$/.test(d.mirror)) throw new s.SchemaError(at('debootstrap.mirror'), 'expected an http(s) or file URL');
      return { debootstrap: d };
    }
    if (keys.length === 1 && keys[0] === 'dir') return { dir: s.string().parse(v.dir, at('dir')) };
    if (keys.includes('oci') && keys.every((k) => k === 'oci' || k === 'image')) {
      const o = s.object({ oci: s.string(), image: s.optional(s.string()) }).parse(v, p);
      return o.image !== undefined ? { oci: o.oci, image: o.image } : { oci: o.oci };
    }
    throw new s.SchemaError(p, `expected ${this.describe}`);
  },
};

/** One installed package, from the root's dpkg status. */
export interface RootPackage {
  name: string;
  version: string;
  architecture: string;
}

/** `root.json`, base-root's record: what the root is. Part of every dependent's key. */
export interface BaseRootRecord {
  kind: 'host' | 'debootstrap' | 'dir' | 'oci';
  /** The source as configured (debootstrap spec, dir path, oci path and image). */
  source: BaseRootSource;
  /**
   * Where the root is: `/` for the host, the absolute directory for `dir`,
   * else relative to the cache directory (`roots/<id>`), so the record is
   * the same on every machine.
   */
  location: { host: true } | { path: string } | { cache: string };
  /** From the root's os-release. */
  os: { id: string | null; versionId: string | null; prettyName: string | null };
  /** Installed packages with versions (dpkg status); empty for the host (not recorded) and for roots without dpkg. */
  packages: RootPackage[];
  /** Bytes and files in the root (not for the host). */
  size: { bytes: number; files: number } | null;
}
