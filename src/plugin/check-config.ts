/**
 * The config's `tasks` and `targets` sections held against the loaded
 * registry, once, when a command opens its session: a name that is not a
 * task or target (with the nearest names), options for a task or target
 * that takes none, and options its schema refuses are errors naming the
 * config file and the key. Targets' options come back parsed (defaults
 * filled in), so their hooks never parse.
 */
import { RocmflowError } from '../errors.js';
import { SchemaError, didYouMean } from '../util/schema.js';
import type { Registry } from './load.js';

function configError(file: string | null, message: string): RocmflowError {
  return new RocmflowError('E_CONFIG', `${file ?? 'config'}: ${message}`, { exitCode: 2 });
}

function parseWith(file: string | null, parse: () => unknown): unknown {
  try {
    return parse();
  } catch (e) {
    // by name too: a plugin bundled with its own copy of the schema module throws that copy's class
    if (e instanceof SchemaError || (e instanceof Error && e.name === 'SchemaError')) throw configError(file, e.message);
    throw e;
  }
}

/** Check `tasks.<name>` against the registry: known names, and options only for tasks with a schema (which must accept them). */
export function checkTaskOptions(registry: Registry, tasks: Readonly<Record<string, unknown>>, file: string | null): void {
  const names = [...registry.tasks.keys()].sort();
  for (const [name, raw] of Object.entries(tasks)) {
    const t = registry.tasks.get(name);
    if (!t) throw configError(file, `tasks.${name}: no such task${didYouMean(name, names)}; tasks: ${names.join(', ')}`);
    if (!t.def.options) {
      if (raw !== undefined && (typeof raw !== 'object' || raw === null || Object.keys(raw).length > 0))
        throw configError(file, `tasks.${name}: task "${name}" takes no options`);
      continue;
    }
    parseWith(file, () => t.def.options!.parse(raw ?? {}, `tasks.${name}`));
  }
}

/** Every registered target's options, parsed by its schema; `targets.<name>` for an unknown target is an error. */
export function parseTargetOptionsMap(
  registry: Registry,
  targets: Readonly<Record<string, unknown>>,
  file: string | null,
): Record<string, Readonly<Record<string, unknown>>> {
  const names = [...registry.targets.keys()].sort();
  for (const name of Object.keys(targets))
    if (!registry.targets.has(name)) throw configError(file, `targets.${name}: no such target${didYouMean(name, names)}; targets: ${names.join(', ')}`);
  const out: Record<string, Readonly<Record<string, unknown>>> = {};
  for (const [name, t] of registry.targets) {
    const raw = targets[name];
    if (!t.def.options) {
      if (raw !== undefined && (typeof raw !== 'object' || raw === null || Object.keys(raw).length > 0))
        throw configError(file, `targets.${name}: target "${name}" takes no options`);
      out[name] = {};
      continue;
    }
    out[name] = parseWith(file, () => t.def.options!.parse(raw ?? {}, `targets.${name}`)) as Readonly<Record<string, unknown>>;
  }
  return out;
}
