// Thread entry point for every role (a piscina task): decode the task, run
// the role's loop over the shared buffer, return its result. All logic is in
// src/sim/roles.ts.
import { runRole, type RoleTask, type RoleResult } from '../src/sim/roles.js';

export default function role(task: RoleTask): RoleResult {
  return runRole(task);
}
