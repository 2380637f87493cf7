/**
 * Targets validate their own `targets.<name>` options: the plugin API has no
 * schema slot for targets, so each hook parses the options it is given and
 * turns a schema mismatch into a config error naming the key path.
 */
import { SchemaError, type Schema } from '../util/schema.js';
import { usageError } from '../errors.js';

/** Parse `options` for target `name`; a bad value is an E_CONFIG error naming `targets.<name>.<key>`. */
export function parseTargetOptions<T>(name: string, schema: Schema<T>, options: unknown): T {
  try {
    return schema.parse(options ?? {}, `targets.${name}`);
  } catch (e) {
    if (e instanceof SchemaError) throw usageError('E_CONFIG', `config: ${e.message}`);
    throw e;
  }
}
