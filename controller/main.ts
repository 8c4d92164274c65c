#!/usr/bin/env node
/** dist/controller.js: the controller as a program of its own (the same as `sub0 controller`). */
import { Command } from 'commander';
import { exitOnError } from './cli/output.js';
import { controllerFlagOptions } from './cli/controller-command.js';
import { controllerConfig } from './config.js';
import { runController } from './run-controller.js';

const program = controllerFlagOptions(new Command('sub0-controller').description('follow the chain, compile, publish signed node configs'));
program.parse(process.argv);
await runController(controllerConfig(program.opts())).catch(exitOnError);
process.exit(0);
