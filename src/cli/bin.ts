#!/usr/bin/env node
// The installed package's CLI: the compiled modules, no build step at start.
import { main } from './main.js';

process.exitCode = await main(process.argv.slice(2));
