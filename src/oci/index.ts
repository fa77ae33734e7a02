export * from './digest.js';
export * from './media-types.js';
export * from './descriptor.js';
export * from './platform.js';
export * from './manifest.js';
