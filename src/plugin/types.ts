/**
 * The public plugin API: what a task (tasks/*.ts) and a GPU target
 * (plugins/*.ts) are. Tasks and targets use the engine only through these
 * types; see DESIGN.md "The task and plugin contracts".
 */
import type { Shell } from 'zx';
import type { Schema } from '../util/schema.js';

/** A JSON value, as stored in fingerprints and action records. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** Everything a task's fingerprint covers besides its dependencies' outputs. */
export interface TaskInputs {
  /**
   * Files, directories (hashed recursively) or globs whose contents matter.
   * Relative paths are against the project root; absolute paths are allowed
   * (e.g. an existing ROCm install hashed in place).
   */
  files?: string[];
  /** Plain values that matter: versions, URLs, cmake flags, prompts. */
  params?: Record<string, Json>;
  /** Names of environment variables whose values matter. */
  env?: string[];
  /** Commands whose output matters, e.g. `cmake --version`. A missing tool hashes as "missing". */
  tools?: string[];
  /**
   * Set when the task cannot declare everything it reads; it then always
   * reruns and is never cached. The string says why (shown by `explain`).
   */
  uncacheable?: string;
}

/** What `inputs()` and `outputs()` see. */
export interface TaskContext<Options = unknown> {
  /** The task's own name. */
  readonly task: string;
  /** The resolved target this run builds for. */
  readonly target: ResolvedTarget;
  /** This task's validated options from `tasks.<name>` in the config. */
  readonly options: Options;
  /** The whole resolved config. */
  readonly config: ResolvedConfigView;
  /** The project root (where rocmflow.config.ts lives). */
  readonly projectRoot: string;
  /** Messages while computing inputs (e.g. "index unreachable, reusing the last answer"). */
  readonly log: Logger;
}

/** A dependency's result, as a dependent task sees it. */
export interface DepResult {
  /** Absolute path of the dependency's output directory. */
  readonly outDir: string;
  /** The output paths it declared, relative to `outDir`. */
  readonly outputs: readonly string[];
}

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  debug(message: string): void;
}

/** One unit of long work (a download, hashing, a build). */
export interface ProgressHandle {
  /** Set how much is done (same unit as `total`). */
  update(done: number, total?: number): void;
  /** Mark it finished. */
  done(): void;
}

export interface Progress {
  /** Start reporting progress for `label`; `total` may be unknown. `unit` is e.g. "bytes", "files", "steps". */
  start(label: string, opts?: { total?: number; unit?: string }): ProgressHandle;
}

/** What `run()` gets. */
export interface RunContext<Options = unknown> extends TaskContext<Options> {
  /** This task's output directory, empty when `run` starts. Outputs are paths under it. */
  readonly outDir: string;
  /** A scratch directory, removed after the task ends. */
  readonly workDir: string;
  /** The outputs of the tasks this one depends on, by task name. */
  readonly deps: Readonly<Record<string, DepResult>>;
  /**
   * zx's `$`, bound to the run's AbortSignal (child process groups are
   * killed on cancel), with stdout/stderr going to the task's log file.
   */
  readonly $: Shell;
  /** Aborted when the run is cancelled (Ctrl-C, another task failed). */
  readonly signal: AbortSignal;
  /** Path of this task's log file for this run. */
  readonly logFile: string;
  readonly log: Logger;
  readonly progress: Progress;
  /** The cache directory (for tasks that keep their own large side data, e.g. downloads). */
  readonly cacheDir: string;
  /**
   * Is the file at `path` the content store's own blob of `sha256` (hex, or
   * `sha256:`hex): the same inode, unmodified? A dependency's output is,
   * unless it was copied, so its digest is known without reading it (a
   * cached snapshot linked into an image). False for anything else.
   */
  isStoredBlob(path: string, sha256: string): boolean;
  /**
   * The content store's own blob of `sha256` (hex) and `size`, unmodified,
   * or null: for a task that finds what it made on an earlier run (by a key
   * of its own, under `cacheDir`) and links it in instead of making it
   * again. Link it, never write to it.
   */
  storedBlob(sha256: string, size: number): string | null;
}

/** What `run()` may return: lines for the run's closing summary, kept with the cached result. */
export interface TaskResult {
  summary?: string[];
  /**
   * Facts for machines: shown in `--json` (on the task's event and, by task,
   * on the summary event) and kept with the cached result, e.g.
   * `{ coverage: [...] }`.
   */
  facts?: Record<string, Json>;
}

/** A task: see `defineTask`. */
export interface TaskDefinition<Options = unknown> {
  /** Unique name, kebab-case, e.g. `build-llama`. */
  name: string;
  /** One line shown by `rocmflow graph` and `rocmflow run --dry-run`. */
  description?: string;
  /** Names of tasks whose outputs this one needs. */
  deps?: string[];
  /**
   * Set when this task replaces a built-in task of the same name on purpose
   * (a warning says so); without it, a name already taken is refused.
   */
  override?: boolean;
  /** Validates `tasks.<name>` in the config; errors name the key path. */
  options?: Schema<Options>;
  /**
   * Files this task's behaviour depends on that it does not import (a script
   * it runs, a data file), relative to the task's module file. The module and
   * every local module it imports are always covered by its key.
   */
  code?: string[];
  /** What the fingerprint covers. */
  inputs?(ctx: TaskContext<Options>): TaskInputs | Promise<TaskInputs>;
  /** Output paths relative to the task's output directory (files or directories). */
  outputs: string[] | ((ctx: TaskContext<Options>) => string[]);
  /** Does the work. Throw a RocmflowError for a clear failure message. */
  run(ctx: RunContext<Options>): Promise<TaskResult | void>;
}

/** A read-only view of the resolved config that tasks may consult. */
export interface ResolvedConfigView {
  readonly configFile: string | null;
  readonly projectRoot: string;
  readonly cacheDir: string;
  readonly modelsDir: string | null;
  readonly tasks: Readonly<Record<string, unknown>>;
  readonly targets: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
}

// ---------------------------------------------------------------- targets

/** Where a target's GPU runtime (ROCm, CUDA) comes from by default. */
export type RuntimeSource =
  | { kind: 'none' }
  /** AMD TheRock nightly/release tarballs for a family such as `gfx1151` or `gfx110X-all`. */
  | { kind: 'therock'; family: string; version?: string; index?: string }
  /** Any tarball, checked against its sha256. */
  | { kind: 'url'; url: string; sha256: string }
  /** An existing install, hashed in place (e.g. /opt/rocm-7.1.1, /usr/local/cuda). */
  | { kind: 'dir'; path: string }
  /** Debian/Ubuntu packages unpacked into a prefix without installing them. */
  | { kind: 'apt'; packages: string[]; sources?: string[] };

/** What `detect()` found. */
export interface Detection {
  /** The GPU is present and usable here. */
  found: boolean;
  /** Human-readable: "gfx1151 (integrated) at KFD node 1", or why not. */
  description: string;
  /** Device index to pin (HIP/ROCR/CUDA_VISIBLE_DEVICES), when found. */
  deviceIndex?: number;
  /** Extra facts (compute capability, VRAM bytes, ...). */
  facts?: Record<string, Json>;
}

/** A target's options (`targets.<name>` in the config) when it declares no schema. */
export type TargetOptions = Readonly<Record<string, unknown>>;

/** Where detection looks; tests point these at fake sysfs trees. */
export interface DetectContext<Options = TargetOptions> {
  /** Root for /sys and /dev lookups (default "/"). */
  readonly root: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** This target's options from `targets.<name>` in the config, as its `options` schema parsed them. */
  readonly options: Options;
}

/**
 * A keep rule: a glob of paths to keep, optionally only when a library
 * matching `ifLoaded` was part of the traced runtime (rocBLAS loads its
 * per-arch kernel files lazily, so a trace never sees them all).
 */
export type KeepRule = string | { ifLoaded: string; paths: string[] };

/** A GPU (or CPU) target: see `defineTarget`. */
export interface TargetDefinition<Options = TargetOptions> {
  /** e.g. `gfx1151`, `gfx1100`, `cuda`, `cpu`. */
  name: string;
  family: 'rocm' | 'cuda' | 'cpu';
  /** One line for `rocmflow targets`. */
  description: string;
  /** The architecture string (`gfx1151`, `sm_90`), if any. */
  arch?: string;
  /**
   * Validates `targets.<name>` in the config once, when the config and
   * plugins load; an error names the config file and the key path. The
   * hooks get what it returns. Without a schema, any options are refused.
   */
  options?: Schema<Options>;
  /**
   * Set when this target replaces a built-in target of the same name on
   * purpose; without it, a name already taken is refused.
   */
  override?: boolean;
  /** Is this GPU here? */
  detect(ctx: DetectContext<Options>): Promise<Detection>;
  /** Default source of the GPU runtime; `tasks.fetch-rocm.source` overrides it. */
  runtime: RuntimeSource;
  /** cmake flags for llama.cpp. */
  cmakeFlags(ctx: TargetContext<Options>): string[];
  /** Environment for running the workload (device pinning etc.). */
  env(ctx: TargetContext<Options>): Record<string, string>;
  /** Device nodes to pass through (globs, e.g. `/dev/dri/renderD*`). */
  devices: string[];
  /** Paths to keep beyond what the trace saw. Globs match absolute paths in the full runtime root. */
  keep: KeepRule[];
  /** Paths to drop even if traced or kept (other arches, headers, static libs). */
  drop: string[];
  /** Files the host provides at run time, never bundled (basename or path globs). */
  hostProvided: string[];
  /** Tools the workload or build needs, checked by `doctor`: command → how to install. */
  tools?: Record<string, string>;
}

/** What a target's hooks see. */
export interface TargetContext<Options = TargetOptions> {
  readonly detection: Detection | null;
  readonly options: Options;
  /** Root of the fetched GPU runtime (ROCm/CUDA prefix), when known. */
  readonly runtimeRoot?: string;
}

/** A target after selection (`--target`, config `target`, or auto-detection). */
export interface ResolvedTarget {
  readonly name: string;
  readonly definition: TargetDefinition<any>;
  /** Filled when detection ran (auto, or tasks that need the device). */
  readonly detection: Detection | null;
  /** `targets.<name>` from the config, as the target's schema parsed it. */
  readonly options: any;
}

/** What a plugin module may export as default: one task or target, or several. */
export type PluginExport =
  | TaskDefinition<any>
  | TargetDefinition<any>
  | { tasks?: TaskDefinition<any>[]; targets?: TargetDefinition<any>[] };
