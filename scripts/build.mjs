#!/usr/bin/env node
// Bundles each program into one ESM file under dist/ with esbuild. The agent bundle is what the
// boot image carries. Native addons (koffi, netlink, sqlite3) stay external: they ship beside it.
import { build } from 'esbuild';
import { chmodSync, copyFileSync, existsSync, mkdirSync } from 'node:fs';

const programs = [
  { entry: 'cli/sub0-main.ts', out: 'dist/sub0.js' },
  { entry: 'cli/agent-main.ts', out: 'dist/agent.js' },
  { entry: 'cli/controller-main.ts', out: 'dist/controller.js' },
  // The embedded broker's thread, started by dist/sub0.js and dist/controller.js from beside them.
  { entry: 'controller/broker/broker-worker.ts', out: 'dist/broker-worker.js' },
  // The boot image's node program: keys, registration line, then the agent (bootimage/node).
  { entry: 'bootimage/node/main.ts', out: 'dist/image-node.js' },
];

const external = ['koffi', 'netlink', 'sqlite3', '@acala-network/chopsticks', '@acala-network/chopsticks-core', '@acala-network/chopsticks-db'];

for (const p of programs) {
  await build({
    entryPoints: [p.entry],
    outfile: p.out,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    sourcemap: 'linked',
    external,
    // Bundled CommonJS dependencies still call require(): give them one.
    banner: { js: "import { createRequire as __sub0Require } from 'node:module'; const require = __sub0Require(import.meta.url);" },
    logLevel: 'warning',
  });
  chmodSync(p.out, 0o755);
  console.log(`built ${p.out}`);
}

// The ACL's eBPF object is loaded from beside the bundle (overlay/acl resolves it from import.meta.url).
if (existsSync('overlay/acl/bpf/acl.bpf.o')) {
  mkdirSync('dist/bpf', { recursive: true });
  copyFileSync('overlay/acl/bpf/acl.bpf.o', 'dist/bpf/acl.bpf.o');
}
