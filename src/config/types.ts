import type { ResolvedConfigView } from '../plugin/types.js';

/** Where to share the cache with a team (Bazel HTTP cache protocol or a shared directory). */
export interface RemoteCacheConfig {
  /** `http(s)://host/base` (Bazel HTTP cache protocol) or `file:///mnt/shared/rocmflow` (shared directory). Env: ROCMFLOW_REMOTE_CACHE. */
  url: string;
  /**
   * `read` (never upload), `read-write`, or `auto`: write only when the CI
   * environment variable is set.
   * @default "auto"
   */
  mode?: 'read' | 'read-write' | 'auto';
  /** Instance prefix inserted after the base URL (`<base>/<instance>/ac/...`). */
  instance?: string;
  /** Per-request timeout. @default 30000 */
  timeoutMs?: number;
  /** Parallel blob transfers. @default 4 */
  concurrency?: number;
  /** Require HMAC-signed action entries (key from ROCMFLOW_REMOTE_CACHE_KEY). @default true when the key is set */
  requireSignature?: boolean;
}

/** The user's config (`rocmflow.config.ts`); everything is optional. */
export interface UserConfig {
  /** Target plugin name, or `auto` to pick the detected GPU (cpu when none). @default "auto" */
  target?: string;
  /** Local cache directory. Env: ROCMFLOW_CACHE_DIR. @default "<project>/cache" */
  cacheDir?: string;
  /** Where task outputs live. @default "<project>/.rocmflow" */
  stateDir?: string;
  /** Tasks `rocmflow run` runs when none are named. @default ["package-image"] */
  default?: string[];
  /** Parallel tasks. @default number of CPUs */
  jobs?: number;
  /** Extra task/target plugins: local files (relative to the config) or npm package names. */
  plugins?: string[];
  /** Directory of GGUF models mounted at run time. Env: MODEL_BASE_PATH. */
  modelsDir?: string;
  cache?: {
    remote?: RemoteCacheConfig;
  };
  /** Options per task, validated by each task's own schema (e.g. `tasks['build-llama'].cmakeFlags`). */
  tasks?: Record<string, Record<string, unknown>>;
  /** Options per target (e.g. `targets.cuda.computeCapability`). */
  targets?: Record<string, Record<string, unknown>>;
}

/** The config after defaults; every field filled in. */
export interface ResolvedConfig extends ResolvedConfigView {
  readonly target: string;
  readonly default: readonly string[];
  readonly stateDir: string;
  readonly jobs: number;
  readonly plugins: readonly string[];
  readonly remote: Readonly<Required<Omit<RemoteCacheConfig, 'instance'>>> & { readonly instance: string | null } | null;
}
