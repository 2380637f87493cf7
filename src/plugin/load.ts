/**
 * Loads tasks and targets: the built-in ones under tasks/ and plugins/, then
 * the config's `plugins: [...]` (local files or npm package names). A wrongly
 * shaped plugin gets an error naming the plugin and the field.
 */
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { usageError } from '../errors.js';
import type { TargetDefinition, TaskDefinition } from './types.js';
import { defaultExport, importFile } from '../util/typescript-loader.js';
import { isLongLived } from '../util/long-lived.js';

/** The rocmflow package root (holds tasks/, plugins/, src/). */
export const PACKAGE_ROOT = resolve(import.meta.dirname, '../..');

export interface LoadedTask {
  def: TaskDefinition<any>;
  /** The module file, hashed into the task's key. */
  file: string;
  /** `builtin <file>` for the package's own, else the plugin spec it came from. */
  origin: string;
}

export interface LoadedTarget {
  def: TargetDefinition<any>;
  file: string;
  origin: string;
}

export interface Registry {
  tasks: Map<string, LoadedTask>;
  targets: Map<string, LoadedTarget>;
  /** Said once when the registry loads (a plugin replacing a built-in on purpose). */
  warnings: string[];
}

const KEBAB = /^[a-z0-9][a-z0-9-]*$/;

function fail(origin: string, field: string, expected: string): never {
  throw usageError('E_PLUGIN', `plugin ${origin}: ${field}: ${expected}`);
}

function isTarget(x: Record<string, unknown>): boolean {
  return 'family' in x || 'detect' in x;
}

export function validateTask(x: unknown, origin: string): TaskDefinition<any> {
  if (typeof x !== 'object' || x === null) fail(origin, 'default export', 'expected a task or target object');
  const t = x as Record<string, unknown>;
  const label = typeof t.name === 'string' ? `task "${t.name}"` : 'task';
  if (typeof t.name !== 'string' || !KEBAB.test(t.name)) fail(origin, `${label}.name`, 'expected a kebab-case string');
  if (t.deps !== undefined && (!Array.isArray(t.deps) || t.deps.some((d) => typeof d !== 'string')))
    fail(origin, `${label}.deps`, 'expected an array of task names');
  if (!Array.isArray(t.outputs) && typeof t.outputs !== 'function') fail(origin, `${label}.outputs`, 'expected an array of paths or a function');
  if (Array.isArray(t.outputs) && t.outputs.some((o) => typeof o !== 'string' || isAbsolute(o) || o.split('/').includes('..')))
    fail(origin, `${label}.outputs`, 'expected relative paths inside the output directory');
  if (typeof t.run !== 'function') fail(origin, `${label}.run`, 'expected a function');
  if (t.inputs !== undefined && typeof t.inputs !== 'function') fail(origin, `${label}.inputs`, 'expected a function');
  if (t.options !== undefined && typeof (t.options as { parse?: unknown }).parse !== 'function')
    fail(origin, `${label}.options`, 'expected a schema (from `s` in rocmflow/plugin)');
  if (t.code !== undefined && (!Array.isArray(t.code) || t.code.some((c) => typeof c !== 'string'))) fail(origin, `${label}.code`, 'expected an array of paths');
  if (t.override !== undefined && typeof t.override !== 'boolean') fail(origin, `${label}.override`, 'expected true or false');
  return t as unknown as TaskDefinition<any>;
}

export function validateTarget(x: unknown, origin: string): TargetDefinition<any> {
  const t = x as Record<string, unknown>;
  const label = typeof t.name === 'string' ? `target "${t.name}"` : 'target';
  if (typeof t.name !== 'string' || !KEBAB.test(t.name)) fail(origin, `${label}.name`, 'expected a kebab-case string');
  if (!['rocm', 'cuda', 'cpu'].includes(t.family as string)) fail(origin, `${label}.family`, 'expected "rocm", "cuda" or "cpu"');
  if (typeof t.description !== 'string') fail(origin, `${label}.description`, 'expected a string');
  for (const f of ['detect', 'cmakeFlags', 'env'] as const) if (typeof t[f] !== 'function') fail(origin, `${label}.${f}`, 'expected a function');
  const rt = t.runtime as { kind?: unknown } | undefined;
  if (typeof rt !== 'object' || rt === null || !['none', 'therock', 'url', 'dir', 'apt'].includes(rt.kind as string))
    fail(origin, `${label}.runtime.kind`, 'expected one of "none", "therock", "url", "dir", "apt"');
  for (const f of ['devices', 'drop', 'hostProvided'] as const)
    if (!Array.isArray(t[f]) || (t[f] as unknown[]).some((g) => typeof g !== 'string')) fail(origin, `${label}.${f}`, 'expected an array of globs');
  if (!Array.isArray(t.keep)) fail(origin, `${label}.keep`, 'expected an array of keep rules');
  (t.keep as unknown[]).forEach((k, i) => {
    const ok = typeof k === 'string' || (typeof k === 'object' && k !== null && typeof (k as { ifLoaded?: unknown }).ifLoaded === 'string' && Array.isArray((k as { paths?: unknown }).paths));
    if (!ok) fail(origin, `${label}.keep[${i}]`, 'expected a glob or { ifLoaded, paths }');
  });
  if (t.options !== undefined && typeof (t.options as { parse?: unknown }).parse !== 'function')
    fail(origin, `${label}.options`, 'expected a schema (from `s` in rocmflow/plugin)');
  if (t.override !== undefined && typeof t.override !== 'boolean') fail(origin, `${label}.override`, 'expected true or false');
  return t as unknown as TargetDefinition<any>;
}

function add(reg: Registry, x: unknown, file: string, origin: string, builtin: boolean): void {
  if (typeof x !== 'object' || x === null) fail(origin, 'default export', 'expected a task, a target, or { tasks, targets }');
  const o = x as Record<string, unknown>;
  if ('tasks' in o || 'targets' in o) {
    if (o.tasks !== undefined && !Array.isArray(o.tasks)) fail(origin, 'tasks', 'expected an array of tasks');
    if (o.targets !== undefined && !Array.isArray(o.targets)) fail(origin, 'targets', 'expected an array of targets');
    for (const t of (o.tasks as unknown[]) ?? []) add(reg, t, file, origin, builtin);
    for (const t of (o.targets as unknown[]) ?? []) add(reg, t, file, origin, builtin);
    return;
  }
  if (isTarget(o)) {
    const def = validateTarget(o, origin);
    register(reg, reg.targets, 'target', { def, file, origin }, builtin);
  } else {
    const def = validateTask(o, origin);
    register(reg, reg.tasks, 'task', { def, file, origin }, builtin);
  }
}

/**
 * One name, one task (or target). A plugin may replace a built-in only when
 * it says so (`override: true`), and then a warning names both; any other
 * clash (two built-ins, two plugins, one plugin twice) is refused.
 */
function register<T extends LoadedTask | LoadedTarget>(reg: Registry, map: Map<string, T>, kind: string, entry: T, builtin: boolean): void {
  const name = entry.def.name;
  const prev = map.get(name);
  if (prev) {
    const prevBuiltin = prev.origin === BUILTIN || prev.origin.startsWith(`${BUILTIN} `);
    if (!builtin && prevBuiltin && entry.def.override === true) {
      reg.warnings.push(`plugin ${entry.origin}: ${kind} "${name}" replaces the built-in one (${prev.origin.slice(BUILTIN.length + 1)}), as its override: true says`);
    } else if (!builtin && prevBuiltin) {
      fail(entry.origin, `${kind} "${name}"`, `a built-in ${kind} has this name (${prev.origin.slice(BUILTIN.length + 1)}); rename it, or set override: true to replace the built-in on purpose`);
    } else {
      fail(entry.origin, `${kind} "${name}"`, `the name is taken already by ${prevBuiltin ? prev.origin.slice(BUILTIN.length + 1) : `plugin ${prev.origin}`}; two ${kind}s cannot share a name`);
    }
  }
  map.set(name, entry);
}

/** Origin of the modules under the package's tasks/ and plugins/ (followed by the file). */
const BUILTIN = 'builtin';

async function importDefault(file: string, origin: string): Promise<unknown> {
  let mod: Record<string, unknown>;
  try {
    mod = await importFile(file);
  } catch (e) {
    const msg = e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw usageError('E_PLUGIN', `plugin ${origin}: cannot load: ${msg}`);
  }
  return defaultExport(mod);
}

function moduleFiles(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((f) => /\.(ts|mts|js|mjs)$/.test(f) && !f.endsWith('.d.ts') && !f.endsWith('.map') && !f.startsWith('_') && !f.startsWith('.'))
      .sort()
      .map((f) => join(dir, f));
  } catch {
    return [];
  }
}

/** Load built-in tasks/targets, then the config's plugins (which replace a built-in only with `override: true`). */
export async function loadRegistry(opts: { plugins: readonly string[]; configDir: string }): Promise<Registry> {
  const reg: Registry = { tasks: new Map(), targets: new Map(), warnings: [] };
  const builtin = [...moduleFiles(join(PACKAGE_ROOT, 'tasks')), ...moduleFiles(join(PACKAGE_ROOT, 'plugins'))];
  const mods = await Promise.all(builtin.map(async (f) => [f, await importDefault(f, f.slice(PACKAGE_ROOT.length + 1))] as const));
  // modules without a default export are helpers (e.g. a target factory)
  for (const [f, m] of mods) if (m !== undefined) add(reg, m, f, `${BUILTIN} ${f.slice(PACKAGE_ROOT.length + 1)}`, true);
  for (const spec of opts.plugins) {
    const file = resolvePlugin(spec, opts.configDir);
    const m = await importDefault(file, spec);
    if (m === undefined) fail(spec, 'default export', 'missing (export default defineTask(...) or defineTarget(...))');
    add(reg, m, file, spec, false);
  }
  return reg;
}

function resolvePlugin(spec: string, configDir: string): string {
  if (spec.startsWith('.') || isAbsolute(spec)) return resolve(configDir, spec);
  // Node's resolution caches (package.json, paths) last as long as the process: a long-lived
  // one (the server) would go on finding a package's old entry after an upgrade
  if (isLongLived()) throw usageError('E_PLUGIN', `plugin ${spec}: a package plugin is resolved by Node, whose caches a long-lived process cannot refresh`);
  try {
    return createRequire(join(configDir, 'noop.js')).resolve(spec);
  } catch {
    throw usageError('E_PLUGIN', `plugin ${spec}: package not found (npm install ${spec})`);
  }
}
