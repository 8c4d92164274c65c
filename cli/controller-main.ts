#!/usr/bin/env node
/** dist/controller.js: the controller as a program of its own (the same as `sub0 controller`). */
import { Command } from 'commander';
import { exitOnError } from './output.js';
import { controllerFlagOptions } from './controller-command.js';
import { controllerConfig } from '../controller/config.js';
import { runController } from '../controller/run-controller.js';

const program = controllerFlagOptions(new Command('sub0-controller').description('follow the chain, compile, publish signed node configs'));
program.parse(process.argv);
await runController(controllerConfig(program.opts())).catch(exitOnError);
process.exit(0);
