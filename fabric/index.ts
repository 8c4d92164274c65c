/** fabric: the pure core of sub0. Plain data in, plain data out; no I/O anywhere below. */
export * from './errors.js';
export * from './issues.js';
export * from './schema.js';
export * from './node-config.js';
export * from './parse-snapshot.js';
export * from './address.js';
export * from './compile.js';
export * from './encoding.js';
export * from './signing.js';
export * from './dataplane-state.js';
export * from './plan.js';
export * from './envelope.js';
export * from './node-status.js';
export * from './topics.js';
export * from './broker-login.js';
