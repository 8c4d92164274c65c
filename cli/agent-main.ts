#!/usr/bin/env node
/**
 * dist/agent.js: the node agent as a program of its own (what the boot image runs). Same flags and
 * behaviour as `sub0 agent`.
 */
import { Command } from 'commander';
import { registerAgent } from './agent-command.js';

const program = new Command('sub0-agent').description('sub0 node agent').showHelpAfterError();
registerAgent(program);
// `sub0-agent [flags]` and `sub0-agent plan …` mean `sub0 agent …`.
await program.parseAsync([process.argv[0]!, process.argv[1]!, 'agent', ...process.argv.slice(2)]);
