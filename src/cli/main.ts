#!/usr/bin/env node
// `sim`: the command-line contract of docs/DESIGN.md §10.
//   exit 0 ok, 1 an oracle found a violation (or an --inject never acted),
//   2 bad usage, 3 the simulator failed, 130 / 143 interrupted (SIGINT / SIGTERM).
import { hideBin } from 'yargs/helpers';
import { buildCli } from './commands.js';

await buildCli(hideBin(process.argv)).parseAsync();
