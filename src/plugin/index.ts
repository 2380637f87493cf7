export * from './types.js';
export { defineTask, defineTarget } from './define.js';
export { RocmflowError, usageError, missingTool } from '../errors.js';
export * as s from '../util/schema.js';
