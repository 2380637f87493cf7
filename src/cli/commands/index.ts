import type { Command } from '../command.js';
import { runCommand } from './run.js';
import { graphCommand } from './graph.js';
import { explainCommand } from './explain.js';
import { cacheCommand } from './cache.js';

/** Every CLI command, in the order `rocmflow --help` lists them. */
export const COMMANDS: readonly Command[] = [runCommand, explainCommand, graphCommand, cacheCommand];
