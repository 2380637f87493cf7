/**
 * What every task needs (the contracts, the define helpers, the error type,
 * the schema helpers), apart from the target helpers: built-in tasks import
 * this, so their keys do not cover the AMD target code.
 */
export * from './types.js';
export { defineTask, defineTarget } from './define.js';
export { RocmflowError, usageError, missingTool } from '../errors.js';
export * as s from '../util/schema.js';
