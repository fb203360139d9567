/**
 * edgeraft: a lean Raft consensus library for Node, Bun and Deno.
 *
 * @module
 */
export * from './lib/core/messages.ts';
export * from './lib/core/errors.ts';
export type { LogReader } from './lib/core/log-reader.ts';
export type { Storage, WriteBatch } from './lib/storage/storage.ts';
