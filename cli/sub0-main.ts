#!/usr/bin/env node
/** sub0: the mesh admin CLI. Each command group lives in its own module and registers itself here. */
import { Command } from 'commander';
import { registerCompile } from './compile-command.js';
import { registerAgent } from './agent-command.js';
import { registerChain } from './chain-command.js';
import { registerNode } from './node-command.js';
import { registerSlot } from './slot-command.js';
import { registerAcl } from './acl-command.js';
import { registerController } from './controller-command.js';
import { registerLab } from './lab-command.js';
import { registerMesh } from './mesh-command.js';
import { registerAudit } from './audit-command.js';
import { registerGatekeeper } from './gatekeeper-command.js';
import { registerImage } from './image-command.js';

// `sub0 … | head` closes the pipe early: that is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

const program = new Command('sub0')
  .description('sub0: community hardware as hypervisor nodes of a chain-governed cloud')
  .version('0.1.0')
  .showHelpAfterError();

registerLab(program);
registerMesh(program);
registerAudit(program);
registerCompile(program);
registerAgent(program);
registerChain(program);
registerNode(program);
registerSlot(program);
registerAcl(program);
registerController(program);
registerGatekeeper(program);
registerImage(program);

await program.parseAsync(process.argv);
